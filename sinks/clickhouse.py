"""ClickHouse target: the embedded chDB engine or a server URL, its credentials, and connecting.

A server is ``http://[user@]host:8123[/database]`` or ``https://...``; the password comes from
a file (``--clickhouse-password-file`` or ``$CLICKHOUSE_PASSWORD_FILE``), then
``$CLICKHOUSE_PASSWORD``, and only then from the URL itself (``http://user:pw@host``, which
still works but puts the password wherever the URL is written: a shell history, ``ps``). A
password is never logged or shown: every URL on its way to a log line or an error goes
through :func:`redacted`, and messages of the client library through :meth:`ClickHouseTarget.scrub`.

HTTPS: an ``https://`` URL is TLS whatever its port (clickhouse-connect alone infers TLS from
ports 443/8443 only); ``--clickhouse-ca-cert`` (``$CLICKHOUSE_CA_CERT``) names the CA bundle
for a private CA; URL query options such as ``?verify=false`` pass through to clickhouse-connect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from collector.contract import capped_reason
from sinks.schema import SchemaSettings, apply_migrations

DEFAULT_DATABASE = "fleetpulse"
SCHEMES = ("chdb", "http", "https")
REDACTED = "***"
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
_REASON_CHARS = 300
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):[^\s@]*@")


class TargetError(Exception):
    """The ClickHouse target cannot be used; ``str(err)`` is one line naming it (never its password)."""


def _split(url: str) -> tuple[str, str, str | None, str]:
    """``(scheme, user, password or None, host and the rest)`` of a URL.

    The credentials end at the *last* ``@`` of the URL, so a password holding ``#``, ``/`` or
    ``?`` (which a URL parser takes for the start of a fragment, path or query, and would then
    print) is still recognised as the password.
    """
    match = _URL.match(url.strip())
    if not match:
        return "", "", None, url
    scheme, rest = match["scheme"].lower(), match["rest"]
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return scheme, "", None, rest
    user, colon, password = userinfo.partition(":")
    return scheme, user, password if colon else None, hostpart


def redacted(text: str) -> str:
    """``text`` (a target URL) fit for a log line: a password in it is replaced by ``***``."""
    scheme, user, password, hostpart = _split(text)
    if password is None:
        return text
    return f"{scheme}://{user}:{REDACTED}@{hostpart}"


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where the sink and queries store and read: a URL without its password, and the password."""

    url: str
    password: str = field(default="", repr=False)
    ca_cert: str = ""

    @property
    def scheme(self) -> str:
        return _split(self.url)[0]

    @property
    def user(self) -> str:
        return unquote(_split(self.url)[1])

    def describe(self) -> str:
        """``http://host:8123 (user fleet, password ***)``: what errors name it by."""
        scheme, user, _, hostpart = _split(self.url)
        if scheme == "chdb":
            return self.url
        who = f"user {unquote(user) or 'default'}" + (f", password {REDACTED}" if self.password else "")
        return f"{scheme}://{hostpart} ({who})"

    def shown(self) -> str:
        """The URL as a log line shows it (``user:***@`` when there is a password)."""
        scheme, user, _, hostpart = _split(self.url)
        if not self.password:
            return self.url
        return f"{scheme}://{user}:{REDACTED}@{hostpart}"

    def scrub(self, text: str) -> str:
        """``text`` (a message) with the password, as given or URL-quoted, and the password of any
        URL in it replaced by ``***``."""
        if self.password:
            from urllib.parse import quote

            for form in sorted({self.password, quote(self.password, safe="")}, key=len, reverse=True):
                text = text.replace(form, REDACTED)
        return _URL_CREDENTIALS.sub(rf"\1:{REDACTED}@", text)

    def environment(self) -> dict[str, str]:
        """How a child process is told this target: by environment, never by argument (``ps``)."""
        env = {"CLICKHOUSE_URL": self.url}
        if self.password:
            env["CLICKHOUSE_PASSWORD"] = self.password
        if self.ca_cert:
            env["CLICKHOUSE_CA_CERT"] = self.ca_cert
        return env

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of ``clickhouse_connect.get_client`` for this target."""
        if self.scheme == "chdb":
            return {"dsn": self.url}
        options: dict[str, Any] = {"dsn": self.url, "interface": self.scheme}
        if self.password:
            options["password"] = self.password
        if self.ca_cert:
            options["ca_cert"] = self.ca_cert
        return options


def default_target(home: Path) -> str:
    """``CLICKHOUSE_URL`` if set, else the embedded engine under the data directory."""
    return os.environ.get("CLICKHOUSE_URL") or f"chdb://{(home / 'clickhouse').resolve()}"


def resolve_target(
    url: str | None,
    home: Path,
    password_file: str | None = None,
    ca_cert: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ClickHouseTarget:
    """The target of ``--clickhouse-url`` (else ``$CLICKHOUSE_URL``, else chDB under ``home``) and its
    password: file, then ``$CLICKHOUSE_PASSWORD``, then the URL's own. Raises :class:`TargetError`."""
    env = os.environ if env is None else env
    given = url or env.get("CLICKHOUSE_URL") or f"chdb://{(home / 'clickhouse').resolve()}"
    scheme, user, in_url, hostpart = _split(given)
    if scheme not in SCHEMES:
        raise TargetError(f"ClickHouse at {redacted(given)}: use chdb:///path, http://host:8123 or https://host:8443")
    clean = f"{scheme}://{user + '@' if user else ''}{hostpart}"
    password = unquote(in_url) if in_url else ""
    password_file = password_file or env.get("CLICKHOUSE_PASSWORD_FILE")
    if password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise TargetError(f"ClickHouse password file {password_file}: cannot read: {exc}") from None
    elif env.get("CLICKHOUSE_PASSWORD"):
        password = env["CLICKHOUSE_PASSWORD"]
    if scheme == "chdb" and password:
        raise TargetError(f"ClickHouse at {clean}: the embedded engine takes no password")
    ca = ca_cert or env.get("CLICKHOUSE_CA_CERT") or ""
    if ca and not Path(ca).is_file():
        raise TargetError(f"ClickHouse CA certificate {ca}: no such file")
    return ClickHouseTarget(clean, password, ca)


def connect(target: ClickHouseTarget | str) -> Any:
    """A clickhouse-connect client for a target (or a target URL, password and all).

    The same client API drives the embedded engine and a server, so everything above this
    line is engine-agnostic. The embedded engine allows one data path per process; a second
    path raises.
    """
    import clickhouse_connect

    if isinstance(target, str):
        target = resolve_target(target, Path("."), env={})
    return clickhouse_connect.get_client(**target.client_options())


def one_line_reason(exc: BaseException, target: ClickHouseTarget) -> str:
    """Why a ClickHouse call failed, in one short line without the password.

    Connection failures keep their OS reason (``Connection refused``); server errors their
    first line (``Code: 164. ... (READONLY)``), not the engine's stack trace.
    """
    text = str(exc) or type(exc).__name__
    errno = re.search(r"\[Errno -?\d+\] ([^\"'()\]]+)", text)
    if errno:
        text = errno[1]
    text = text.split("Stack trace", 1)[0].strip().splitlines()[0] if text.strip() else type(exc).__name__
    return capped_reason(" ".join(target.scrub(text).split()).rstrip(",:;"), _REASON_CHARS)


def open_client(target: ClickHouseTarget) -> Any:
    """:func:`connect`, any failure (unreachable, refused credentials) a one-line :class:`TargetError`."""
    try:
        return connect(target)
    except Exception as exc:  # any client, connection or server error: one line, no traceback
        raise _unusable(target, exc) from None


def open_store(target: ClickHouseTarget, database: str, settings: SchemaSettings | None = None) -> Any:
    """Connect and create or upgrade the schema; any failure (unreachable, refused credentials,
    read-only) is a :class:`TargetError` of one line naming the target."""
    client = open_client(target)
    try:
        apply_schema(client, database, settings)
    except Exception as exc:
        raise _unusable(target, exc) from None
    return client


def _unusable(target: ClickHouseTarget, exc: BaseException) -> TargetError:
    return TargetError(f"ClickHouse at {target.describe()}: {one_line_reason(exc, target)}")


def apply_schema(client: Any, database: str, settings: SchemaSettings | None = None) -> list[int]:
    """Create or upgrade the schema (see :mod:`sinks.schema`); returns the versions applied."""
    return apply_migrations(client, database, settings)
