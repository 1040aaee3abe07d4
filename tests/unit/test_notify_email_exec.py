"""E-mail to a real local SMTP server (aiosmtpd: plain, AUTH, STARTTLS) and exec receivers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from fleetpulse.ports import free_port
from sinks.notify.config import NotifyConfig, load_notify_text
from sinks.notify.deliver import NOTIFICATION_ID_HEADER, Deliverer, DeliveryResult
from sinks.notify.groups import Flush
from sinks.notify.limits import RetryPolicy
from sinks.notify.payloads import json_body, webhook_payload
from tests.notify_alerts import alert
from tests.unit.test_clickhouse_target import _tls_files

T0 = 1_796_644_800.0  # 2026-12-07 12:00 UTC
FIRING = alert("fa", severity="critical", started_at=T0, summary="disk <full> on web-1")
FLUSH = Flush("n-mail-1", "{}:{}", "{}", "rx", (), (FIRING,), T0 + 30, 1)


@dataclass
class Mail:
    """A mail the local server accepted, and how it came."""

    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    tls: bool
    authenticated: bool


class Inbox:
    """An aiosmtpd handler: refuses ``nobody@`` (550) and ``later@`` (451), keeps the rest."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, _: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        tls, authenticated = session.ssl is not None, session.authenticated
        self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message, tls, authenticated))
        return "250 accepted"


def _authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"fp", b"mail-pw")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """A local SMTP server offering STARTTLS and AUTH (AUTH allowed without TLS for the plain tests):
    (inbox, port, the CA file its certificate is signed by)."""
    ca_path, server_tls = _tls_files(tmp_path)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
        tls_context=server_tls,
    )
    controller.start()
    try:
        yield inbox, port, ca_path
    finally:
        controller.stop()


def config(body: str) -> NotifyConfig:
    return load_notify_text(f"route: {{receiver: rx}}\nreceivers:\n  - name: rx\n{body}")


def deliver(cfg: NotifyConfig, flush: Flush = FLUSH, **kwargs: Any) -> DeliveryResult:
    kwargs.setdefault("environ", {"MAIL_PW": "mail-pw", "PATH": os.environ.get("PATH", "")})
    kwargs.setdefault("retry", RetryPolicy(max_attempts=1))

    async def main() -> DeliveryResult:
        async with Deliverer(cfg, **kwargs) as deliverer:
            return await deliverer.deliver(flush)

    return asyncio.run(main())


def mail_config(port: int, *, to: str = "[ops@example.org, dba@example.org]", extra: str = "") -> NotifyConfig:
    return config(
        f"    email:\n      to: {to}\n      from: fleetpulse@example.org\n"
        f"      smarthost: 127.0.0.1:{port}\n      timeout: 5s\n{extra}"
    )


def test_email_arrives_with_subject_both_bodies_and_the_notification_id(smtp: tuple[Inbox, int, Path]) -> None:
    inbox, port, _ = smtp
    result = deliver(mail_config(port, extra="      starttls: false\n"))
    assert result.status == "sent" and result.attempts == 1
    [mail] = inbox.mails
    assert mail.mail_from == "fleetpulse@example.org"
    assert mail.rcpt_tos == ["ops@example.org", "dba@example.org"]
    message = mail.message
    assert message["Subject"].startswith("[FIRING:1]")
    assert message["From"] == "fleetpulse@example.org"
    assert message["To"] == "ops@example.org, dba@example.org"
    assert message["Message-ID"] == "<n-mail-1@example.org>"
    assert message[NOTIFICATION_ID_HEADER] == "n-mail-1"
    assert message["Date"].datetime.timestamp() == T0 + 30
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "disk <full> on web-1" in text.get_content()
    assert "disk &lt;full&gt; on web-1" in html.get_content()
    assert not mail.tls and not mail.authenticated


def test_email_upgrades_with_starttls_then_logs_in(smtp: tuple[Inbox, int, Path]) -> None:
    import ssl

    inbox, port, ca_path = smtp
    trust = ssl.create_default_context(cafile=str(ca_path))
    extra = "      auth_username: fp\n      auth_password_env: MAIL_PW\n"
    result = deliver(mail_config(port, extra=extra), ssl_context=trust)
    assert result.sent, result.reason
    [mail] = inbox.mails
    assert mail.tls and mail.authenticated


def test_email_to_a_server_whose_certificate_is_not_trusted_fails_before_sending(
    smtp: tuple[Inbox, int, Path],
) -> None:
    inbox, port, _ = smtp
    result = deliver(mail_config(port))  # the system's CAs do not know the test CA
    assert result.status == "failed"
    assert "certificate is not trusted" in result.reason
    assert inbox.mails == []


def test_a_refused_login_fails_permanently_without_showing_the_password(smtp: tuple[Inbox, int, Path]) -> None:
    inbox, port, _ = smtp
    extra = "      starttls: false\n      auth_username: fp\n      auth_password_env: MAIL_PW\n"
    result = deliver(mail_config(port, extra=extra), environ={"MAIL_PW": "wrong-pw"})
    assert result.status == "failed"
    assert result.reason == f"SMTP 127.0.0.1:{port} refused the login of 'fp': 535"
    assert inbox.mails == []


def test_a_550_recipient_is_permanent_and_a_451_is_retried(smtp: tuple[Inbox, int, Path]) -> None:
    inbox, port, _ = smtp
    refused = deliver(mail_config(port, to="nobody@example.org", extra="      starttls: false\n"))
    assert refused.status == "failed" and "nobody@example.org (550 5.1.1 no such user)" in refused.reason
    later = deliver(mail_config(port, to="later@example.org", extra="      starttls: false\n"))
    assert later.status == "retry" and "451" in later.reason
    partly = deliver(mail_config(port, to="[ops@example.org, nobody@example.org]", extra="      starttls: false\n"))
    assert partly.status == "sent" and "nobody@example.org" in partly.reason
    assert [m.rcpt_tos for m in inbox.mails] == [["ops@example.org"]]


def test_email_to_a_closed_port_is_retried() -> None:
    result = deliver(mail_config(free_port(), extra="      starttls: false\n"))
    assert result.status == "retry" and "ConnectionRefusedError" in result.reason


SCRIPT = """\
import json, os, subprocess, sys, time
out, code, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open(out, "w").write(str(child.pid))
    time.sleep(60)
body = sys.stdin.read()
open(out, "w").write(json.dumps({"payload": json.loads(body), "raw": body, "env": dict(os.environ)}))
if code:
    print("first line", file=sys.stderr)
    print("the reason it failed", file=sys.stderr)
sys.exit(code)
"""


def exec_config(tmp_path: Path, code: int, mode: str = "run", timeout: str = "10s") -> tuple[NotifyConfig, Path]:
    script, out = tmp_path / "receiver.py", tmp_path / "out.json"
    script.write_text(SCRIPT)
    command = json.dumps([sys.executable, str(script), str(out), str(code), mode])
    return config(f"    exec: {{command: {command}, timeout: {timeout}}}\n"), out


def test_exec_gets_the_webhook_payload_on_stdin_and_only_a_minimal_environment(tmp_path: Path) -> None:
    cfg, out = exec_config(tmp_path, 0)
    result = deliver(cfg, environ={"PATH": os.environ.get("PATH", ""), "PD_KEY": "secret-key", "HOME": "/tmp"})
    assert result.status == "sent", result.reason
    seen = json.loads(out.read_text())
    assert seen["raw"].encode() == json_body(webhook_payload(FLUSH))
    assert seen["payload"]["version"] == "4" and seen["payload"]["alerts"][0]["fingerprint"] == "fa"
    env = seen["env"]
    assert env["FLEETPULSE_NOTIFICATION_ID"] == "n-mail-1"
    assert env["FLEETPULSE_RECEIVER"] == "rx" and env["FLEETPULSE_GROUP_KEY"] == "{}:{}"
    assert env["HOME"] == "/tmp"
    assert "PD_KEY" not in env  # the notifier's secrets stay with the notifier


def test_exec_exit_codes_decide_failed_or_retry(tmp_path: Path) -> None:
    failed = deliver(exec_config(tmp_path, 1)[0])
    assert failed.status == "failed"
    assert failed.reason == f"{sys.executable} exited with 1: the reason it failed"
    tempfail = deliver(exec_config(tmp_path, 75)[0])
    assert tempfail.status == "retry" and "exited with 75" in tempfail.reason


def test_exec_that_cannot_start_fails_permanently(tmp_path: Path) -> None:
    result = deliver(config(f"    exec: {{command: ['{tmp_path}/no-such-command']}}\n"))
    assert result.status == "failed"
    assert result.reason == f"cannot run {tmp_path}/no-such-command: No such file or directory"


def test_exec_past_its_timeout_is_killed_with_its_children_and_retried(tmp_path: Path) -> None:
    cfg, out = exec_config(tmp_path, 0, mode="hang", timeout="2s")
    started = time.monotonic()
    result = deliver(cfg)
    assert time.monotonic() - started < 10
    assert result.status == "retry"
    assert result.reason == f"{sys.executable} did not finish within 2s (killed)"
    grandchild = int(out.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    """Is ``pid`` a running process (a zombie waiting for its reaper counts as gone)?"""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
