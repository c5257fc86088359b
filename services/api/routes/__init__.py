"""The API's routers, one module per resource; each exposes ``build_router(ctx) -> APIRouter``."""
