"""The embedded stack: real servers (Redis, a Kafka-protocol broker, a pgstac STAC API) started as
child processes on 127.0.0.1, on free ports, with data in a temporary folder, stopped by PID.

Used by ``lookout up`` (the embedded default), by the test suite's session fixtures and by the
benchmarks. Production points the same code at external services through settings instead.
"""

from services.embedded.kafka_broker import TansuBroker
from services.embedded.process import ManagedProcess, ServiceStartError
from services.embedded.redis_server import RedisServer
from services.embedded.stac_api import PgStacApi
from services.embedded.stack import LocalStack

__all__ = ["LocalStack", "ManagedProcess", "PgStacApi", "RedisServer", "ServiceStartError", "TansuBroker"]
