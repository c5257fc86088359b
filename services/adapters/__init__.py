"""Thin, typed clients for the external systems the services talk to (Kafka, Redis, STAC APIs)."""
