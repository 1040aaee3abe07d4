"""A ClickHouse target: as it may appear in a log line, its credentials, HTTPS, and errors at start."""

from __future__ import annotations

import base64
import datetime as dt
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import ClickHouseTarget, TargetError, redacted, resolve_target


def test_a_password_in_the_url_is_replaced() -> None:
    shown = redacted("http://fleet:s3cr3t@db.example:8123/?database=fp")
    assert "s3cr3t" not in shown
    assert shown == "http://fleet:***@db.example:8123/?database=fp"


def test_a_url_without_a_password_is_shown_as_it_is() -> None:
    for target in ("chdb:///var/lib/fleetpulse/clickhouse", "http://db.example:8123", "https://fleet@db:8443"):
        assert redacted(target) == target


# --- credentials, HTTPS and start errors (security review) -----------------------------------


PASSWORD = "Pa#ss/wo?rd@42"  # every character a URL parser trips on


def test_a_password_holding_url_delimiters_is_still_redacted() -> None:
    """``urlsplit`` takes ``#``, ``/`` and ``?`` in a password for the start of a fragment, path or
    query, and the old redaction printed the URL as it was."""
    for password in (PASSWORD, "p#1", "a/b", "q?x", "p@ss"):
        shown = redacted(f"http://fleet:{password}@db:8123/fp")
        assert password not in shown and shown == "http://fleet:***@db:8123/fp"


def test_the_password_comes_from_a_file_then_the_environment_then_the_url(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(f"{PASSWORD}\n")
    url = "http://fleet:from-url@db:8123"
    assert resolve_target(url, tmp_path, env={}).password == "from-url"
    assert resolve_target(url, tmp_path, env={"CLICKHOUSE_PASSWORD": "from-env"}).password == "from-env"
    from_file = resolve_target(url, tmp_path, str(secret), env={"CLICKHOUSE_PASSWORD": "from-env"})
    assert from_file == ClickHouseTarget("http://fleet@db:8123", PASSWORD)
    env_file = resolve_target(
        None, tmp_path, env={"CLICKHOUSE_URL": "http://fleet@db", "CLICKHOUSE_PASSWORD_FILE": str(secret)}
    )
    assert env_file.password == PASSWORD and env_file.url == "http://fleet@db"
    assert resolve_target("http://fleet:p%40ss@db", tmp_path, env={}).password == "p@ss"  # URL-quoted
    assert resolve_target(None, tmp_path, env={}).url == f"chdb://{(tmp_path / 'clickhouse').resolve()}"


def test_a_target_never_shows_its_password() -> None:
    target = ClickHouseTarget("http://fleet@db:8123/fp", PASSWORD)
    assert PASSWORD not in repr(target) and PASSWORD not in target.shown() and PASSWORD not in target.describe()
    assert target.shown() == "http://fleet:***@db:8123/fp"
    assert target.describe() == "http://db:8123/fp (user fleet, password ***)"
    quoted = "Pa%23ss%2Fwo%3Frd%4042"
    assert (
        target.scrub(f"refused {PASSWORD} {quoted} at http://x:{PASSWORD}@db") == "refused *** *** at http://x:***@db"
    )
    assert target.environment() == {"CLICKHOUSE_URL": "http://fleet@db:8123/fp", "CLICKHOUSE_PASSWORD": PASSWORD}


def test_https_urls_are_tls_whatever_the_port_and_take_a_ca_bundle(tmp_path: Path) -> None:
    """clickhouse-connect alone infers TLS from ports 443/8443 only: https://db:9440 was plain HTTP."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    target = resolve_target("https://fleet@db:9440/?verify=true", tmp_path, ca_cert=str(ca), env={})
    assert target.client_options() == {
        "dsn": "https://fleet@db:9440/?verify=true",
        "interface": "https",
        "ca_cert": str(ca),
    }
    assert resolve_target("http://db:8443", tmp_path, env={}).client_options()["interface"] == "http"
    with pytest.raises(TargetError, match="no such file"):
        resolve_target("https://db", tmp_path, ca_cert=str(tmp_path / "missing.pem"), env={})
    with pytest.raises(TargetError, match="use chdb:///path, http://host:8123 or https://host:8443"):
        resolve_target(f"clickhouse://fleet:{PASSWORD}@db:9000", tmp_path, env={})
    with pytest.raises(TargetError) as info:
        resolve_target("http://db", tmp_path, str(tmp_path / "no-such-file"), env={})
    assert "password file" in str(info.value)


class FakeClickHouse:
    """An HTTP(S) endpoint answering like a ClickHouse server that refuses the credentials.

    No password-protected ClickHouse server can run here (the embedded engine has no users, and
    Debian's clickhouse-server is 18.16, far older than the schema needs), so this stands in for
    one: it records the credentials each request carried and holds the first request until the
    test has read the client's process arguments.
    """

    REFUSAL = (
        b"Code: 516. DB::Exception: fleet: Authentication failed: password is incorrect, or there is no user "
        b"with such name. (AUTHENTICATION_FAILED) (version 25.8.1.1)\n"
    )

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.credentials: list[tuple[str, str]] = []
        self.arrived, self.release = threading.Event(), threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self) -> None:
                user, password = self.headers.get("X-ClickHouse-User", ""), self.headers.get("X-ClickHouse-Key", "")
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                fake.credentials.append((user, password))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.arrived.set()
                fake.release.wait(60)
                self.send_response(516)
                self.send_header("X-ClickHouse-Exception-Code", "516")
                self.send_header("Content-Length", str(len(fake.REFUSAL)))
                self.end_headers()
                self.wfile.write(fake.REFUSAL)

            do_GET = do_POST = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_clickhouse() -> Iterator[FakeClickHouse]:
    fake = FakeClickHouse()
    yield fake
    fake.close()


def _tls_files(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (CA bundle, the server's TLS context)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetpulse test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return ca_path, context


def _run_against(fake: FakeClickHouse, args: list[str], env: dict[str, str]) -> tuple[int, str, bytes]:
    """Run ``fleetpulse ARGS`` at the fake server: (exit code, everything it printed, its argv as /proc shows it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetpulse.cli", "--log-level", "debug", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert fake.arrived.wait(120), "the client never reached the server"
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        fake.release.set()
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out.decode(errors="replace"), cmdline


@pytest.mark.parametrize("how", ["environment", "password file", "environment file"])
def test_the_sink_takes_its_password_from_env_or_file_and_it_appears_in_no_log_error_or_argv(
    fake_clickhouse: FakeClickHouse, tmp_path: Path, how: str
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    args = ["sink", "--home", str(tmp_path), "--bootstrap", "127.0.0.1:1"]
    args += ["--clickhouse-url", f"http://fleet@127.0.0.1:{fake_clickhouse.port}"]
    env = {"CLICKHOUSE_PASSWORD": "", "CLICKHOUSE_PASSWORD_FILE": "", "CLICKHOUSE_URL": ""}
    if how == "environment":
        env["CLICKHOUSE_PASSWORD"] = PASSWORD
    elif how == "password file":
        args += ["--clickhouse-password-file", str(secret)]
    else:
        env["CLICKHOUSE_PASSWORD_FILE"] = str(secret)
    code, printed, cmdline = _run_against(fake_clickhouse, args, env)
    assert fake_clickhouse.credentials[0] == ("fleet", PASSWORD), "the password reached the server"
    assert code == 2, printed
    assert PASSWORD.encode() not in cmdline and PASSWORD not in printed, printed
    assert "Traceback" not in printed
    (line,) = [x for x in printed.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: ClickHouse at http://127.0.0.1:{fake_clickhouse.port} (user fleet, password ***):")
    assert "Authentication failed" in line


def test_a_password_in_the_url_still_works_and_is_redacted_in_every_line(fake_clickhouse: FakeClickHouse) -> None:
    url = f"http://fleet:{PASSWORD}@127.0.0.1:{fake_clickhouse.port}"
    code, printed, _ = _run_against(fake_clickhouse, ["query", "--clickhouse-url", url, "SELECT 1"], {})
    assert fake_clickhouse.credentials[0] == ("fleet", PASSWORD)
    assert code == 2 and PASSWORD not in printed and "Traceback" not in printed, printed
    assert f"error: ClickHouse at http://127.0.0.1:{fake_clickhouse.port} (user fleet, password ***):" in printed


def test_the_sink_speaks_https_to_a_server_signed_by_the_given_ca(tmp_path: Path) -> None:
    ca, context = _tls_files(tmp_path)
    fake = FakeClickHouse(tls=context)
    try:
        args = ["sink", "--home", str(tmp_path), "--bootstrap", "127.0.0.1:1", "--clickhouse-ca-cert", str(ca)]
        args += ["--clickhouse-url", f"https://fleet@127.0.0.1:{fake.port}"]  # not 8443: TLS from the scheme
        code, printed, cmdline = _run_against(fake, args, {"CLICKHOUSE_PASSWORD": PASSWORD})
    finally:
        fake.close()
    assert fake.credentials[0] == ("fleet", PASSWORD), "the request came over TLS, verified against the CA"
    assert code == 2 and PASSWORD not in printed and PASSWORD.encode() not in cmdline, printed
    assert f"error: ClickHouse at https://127.0.0.1:{fake.port} (user fleet, password ***):" in printed


def test_the_demo_gives_its_sink_the_password_by_environment_not_by_argument(
    fake_clickhouse: FakeClickHouse, tmp_path: Path
) -> None:
    from fleetpulse.demo import start_sink

    store = ClickHouseTarget(f"http://fleet@127.0.0.1:{fake_clickhouse.port}", PASSWORD)
    proc = start_sink(store, ["--home", str(tmp_path), "--bootstrap", "127.0.0.1:1"], tmp_path)
    try:
        assert fake_clickhouse.arrived.wait(120), (tmp_path / "sink.log").read_text()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        fake_clickhouse.release.set()
        proc.wait(120)
    assert fake_clickhouse.credentials[0] == ("fleet", PASSWORD)
    assert PASSWORD.encode() not in cmdline and b"--clickhouse-url" not in cmdline
    log = (tmp_path / "sink.log").read_text()
    assert proc.returncode == 2 and PASSWORD not in log and "password ***" in log, log


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://fleet@127.0.0.1:1", "Connection refused"),
        ("chdb:///proc/fleetpulse-cannot-create", "Unable to open the chdb engine"),
        ("chdb:///{tmp}/ro?ch_readonly=1", "Cannot execute query in readonly mode"),
    ],
    ids=["unreachable", "uncreatable", "read-only"],
)
def test_a_clickhouse_the_sink_cannot_use_at_start_is_one_line_and_exit_2(
    tmp_path: Path, target: str, reason: str
) -> None:
    from tests.cli import fleetpulse

    url = target.replace("/{tmp}", str(tmp_path))
    done = fleetpulse(
        "sink", "--home", str(tmp_path), "--bootstrap", "127.0.0.1:1", "--clickhouse-url", url, timeout_s=120
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ClickHouse at ") and reason in line and len(line) < 400, line


def test_the_sink_logs_its_target_with_the_password_redacted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The sink logged ``event=sink_target target=http://user:PASSWORD@...``."""
    import sinks.clickhouse
    from fleetpulse.cli import build_parser
    from fleetpulse.cli import sink as sink_cli

    opened: list[ClickHouseTarget] = []

    async def no_topics(*args: object) -> None:
        return None

    monkeypatch.setattr(sinks.clickhouse, "open_store", lambda target, *a: opened.append(target) or object())
    monkeypatch.setattr("collector.kafka_io.ensure_topics", no_topics)
    monkeypatch.setattr(sink_cli, "run_until_signal", lambda run: None)
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "")
    args = build_parser().parse_args(
        ["sink", "--home", str(tmp_path), "--clickhouse-url", f"http://fleet:{PASSWORD}@db.example:8123"]
    )
    caplog.set_level("INFO")
    assert sink_cli.run(args) == 0
    assert opened[0].password == PASSWORD
    assert "event=sink_target target=http://fleet:***@db.example:8123" in caplog.text
    assert PASSWORD not in caplog.text
