"""Kafka to ClickHouse: schema, batched idempotent writes, queries."""
