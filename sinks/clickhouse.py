"""ClickHouse target: connecting to the embedded chDB engine or a server URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sinks.schema import SchemaSettings, apply_migrations

DEFAULT_DATABASE = "fleetpulse"


def default_target(home: Path) -> str:
    """``CLICKHOUSE_URL`` if set, else the embedded engine under the data directory."""
    return os.environ.get("CLICKHOUSE_URL") or f"chdb://{(home / 'clickhouse').resolve()}"


def redacted(target: str) -> str:
    """``target`` fit for a log line: a password in the URL is replaced by ``***``."""
    parts = urlsplit(target)
    if parts.password is None:
        return target
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def connect(target: str) -> Any:
    """A clickhouse-connect client for ``chdb:///path`` or ``http(s)://user:pw@host:port``.

    The same client API drives both, so everything above this line is engine-agnostic.
    The embedded engine allows one data path per process; a second path raises.
    """
    import clickhouse_connect

    return clickhouse_connect.get_client(dsn=target)


def apply_schema(client: Any, database: str, settings: SchemaSettings | None = None) -> list[int]:
    """Create or upgrade the schema (see :mod:`sinks.schema`); returns the versions applied."""
    return apply_migrations(client, database, settings)
