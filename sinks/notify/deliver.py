"""Delivering one notification (a :class:`~sinks.notify.groups.Flush`) to one receiver.

``async with Deliverer(config) as deliverer: result = await deliverer.deliver(flush)`` sends the
flush to the receiver it names, retrying transient failures, and returns a
:class:`DeliveryResult`: ``sent``, ``retry`` (still failing transiently when the retry policy
ran out: the caller may queue it again) or ``failed`` (permanently: a dead letter, with its
reason).

Per kind:

* ``webhook`` — POSTs the Alertmanager webhook payload (v4), optionally signed
  (``X-FleetPulse-Signature: sha256=<HMAC of the body>``), with bearer or basic auth;
* ``alertmanager`` — POSTs the alerts to ``/api/v2/alerts`` of *every* Alertmanager of the set
  (as Prometheus does: they deduplicate among themselves); a retry goes only to those that have
  not accepted yet;
* ``slack`` — POSTs the message to the incoming-webhook URL (a secret);
* ``pagerduty`` — POSTs an Events API v2 event (the ``dedup_key`` is the group's);
* ``email`` — SMTP with ``smtplib`` in a thread: STARTTLS (unless turned off) then AUTH;
* ``exec`` — runs the command (no shell) with the webhook payload on stdin, in its own process
  group, killed with the group after ``timeout``; exit 0 is sent, 75 (``EX_TEMPFAIL``) or a
  timeout or a signal is a retry, any other exit a permanent failure. The command gets
  ``PATH``, ``HOME``, ``LANG``, ``LC_ALL`` and ``TZ`` from the notifier, and
  ``FLEETPULSE_NOTIFICATION_ID``, ``FLEETPULSE_RECEIVER``, ``FLEETPULSE_GROUP_KEY``: never the
  notifier's other variables (they hold its secrets).

Every HTTP request carries ``X-FleetPulse-Notification-Id: <notification_id>`` (a mail, its
``Message-ID`` and the same header), the key by which a receiver recognises a notification sent
twice (delivery is at least once). HTTP 2xx is sent; 429, 5xx, timeouts and connection errors
are retried; a redirect or another 4xx is permanent. Secrets are read at each delivery
(:func:`~sinks.notify.config.read_secret`; a rotated file is picked up) and never appear in a
reason or a log line: every reason passes :class:`Redactor` and is at most 200 characters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import random as random_module
import re
import signal
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

import aiohttp

from collector.contract import MAX_REASON_CHARS, Alert, capped_reason
from policies.alerts import alert_event_id
from policies.model import short_hash
from sinks.notify.config import (
    AlertmanagerReceiver,
    EmailReceiver,
    ExecReceiver,
    HttpAuth,
    Integration,
    NotifyConfig,
    PagerDutyReceiver,
    Receiver,
    Secret,
    SlackReceiver,
    WebhookReceiver,
    read_secret,
)
from sinks.notify.groups import Flush
from sinks.notify.limits import Limits, ReceiverLimiter, RetryPolicy, retry_delay_s
from sinks.notify.payloads import (
    SIGNATURE_HEADER,
    alertmanager_alerts,
    email_message,
    json_body,
    pagerduty_event,
    signature,
    slack_message,
    webhook_payload,
)

log = logging.getLogger(__name__)

Status = Literal["sent", "retry", "failed"]
NOTIFICATION_ID_HEADER = "X-FleetPulse-Notification-Id"
USER_AGENT = "FleetPulse-notifier"
EX_TEMPFAIL = 75  # sysexits.h: "try again later", as sendmail and MTAs use it
EXEC_ENV_KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
REDACTED = "***"
_BODY_SNIPPET_BYTES = 300
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery ended: its status, the attempts made, the seconds it took, and why (if not sent)."""

    status: Status
    attempts: int
    latency_s: float
    reason: str = ""

    @property
    def sent(self) -> bool:
        return self.status == "sent"


@dataclass(frozen=True)
class Outcome:
    """One attempt's result."""

    status: Status
    reason: str = ""


class SecretUnavailable(Exception):
    """A secret that cannot be read; the message names where it lives, never a value."""


def classify_http(status: int) -> Status:
    """2xx sent; 429 and 5xx retried; everything else (3xx redirects, 4xx) permanent."""
    if 200 <= status < 300:
        return "sent"
    if status == 429 or status >= 500:
        return "retry"
    return "failed"


class Redactor:
    """Scrubs secrets out of messages: every secret value read (as given and URL-quoted) and the
    user-info part of any URL become ``***``; the result is capped to 200 characters."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str) -> None:
        """Remember a secret value (very short ones too: a reason is better garbled than leaking)."""
        if value:
            self.values.update({value, quote(value, safe="")})

    def __call__(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
        return capped_reason(text, MAX_REASON_CHARS)


def shown_url(url: str) -> str:
    """A URL fit for a reason: scheme, host, port and path; no user info, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unreadable URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


def secrets_of(integration: Integration) -> list[Secret]:
    """Every secret a receiver's integration names."""
    found: list[Secret | None] = []
    auth = getattr(integration, "auth", None)
    if isinstance(auth, HttpAuth):
        found += [auth.bearer_token, auth.basic_password]
    if isinstance(integration, WebhookReceiver):
        found += [integration.url_secret, integration.hmac_secret]
    elif isinstance(integration, SlackReceiver):
        found.append(integration.url)
    elif isinstance(integration, PagerDutyReceiver):
        found.append(integration.routing_key)
    elif isinstance(integration, EmailReceiver):
        found.append(integration.auth_password)
    return [secret for secret in found if secret is not None]


def _read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


@dataclass
class _Delivery:
    """One flush on its way to one receiver, across attempts."""

    flush: Flush
    receiver: Receiver
    accepted_urls: set[str] = field(default_factory=set)  # Alertmanagers that took the alerts already


class Deliverer:
    """Sends flushes to the receivers of ``config``; use as ``async with Deliverer(config) as d``.

    ``limits`` is one :class:`~sinks.notify.limits.Limits` for every receiver or a mapping of
    receiver name to limits (others get the defaults). ``random``, ``clock`` (monotonic seconds)
    and ``sleep`` are injectable so tests drive jitter and time; ``ssl_context`` is what HTTPS
    and STARTTLS trust (default: the system's CAs). ``alertmanager_ends_after_s`` sets firing
    alerts' ``endsAt`` that far after the flush (unset: the Alertmanager's ``resolve_timeout``).
    """

    def __init__(
        self,
        config: NotifyConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        environ: Mapping[str, str] | None = None,
        read_text: Callable[[str], str] = _read_text,
        retry: RetryPolicy | None = None,
        limits: Limits | Mapping[str, Limits] | None = None,
        random: Callable[[], float] = random_module.random,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ssl_context: ssl.SSLContext | None = None,
        alertmanager_ends_after_s: float | None = None,
    ) -> None:
        self.config = config
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.read_text = read_text
        self.retry = retry or RetryPolicy()
        self.limits = limits if limits is not None else Limits()
        self.random, self.clock, self.sleep = random, clock, sleep
        self.ssl_context = ssl_context
        self.alertmanager_ends_after_s = alertmanager_ends_after_s
        self.redact = Redactor()
        self._session = session
        self._own_session = session is None
        self._limiters: dict[str, ReceiverLimiter] = {}
        self._primed = False

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session this deliverer opened (not one it was given)."""
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def limiter(self, receiver: str) -> ReceiverLimiter:
        """The concurrency and rate limit of ``receiver`` (made on first use)."""
        if receiver not in self._limiters:
            limits = self.limits if isinstance(self.limits, Limits) else self.limits.get(receiver, Limits())
            self._limiters[receiver] = ReceiverLimiter(limits, self.clock, self.sleep)
        return self._limiters[receiver]

    # --- the retry loop --------------------------------------------------------------------

    async def deliver(self, flush: Flush) -> DeliveryResult:
        """Send ``flush`` to its receiver, retrying transient failures under the retry policy."""
        started = self.clock()
        if not self._primed:
            self.prime_redaction()
        receiver = self.config.receivers.get(flush.receiver)
        if receiver is None:
            reason = self.redact(f"receiver {flush.receiver!r} is not defined in the config")
            return self._finish(flush, "", DeliveryResult("failed", 0, 0.0, reason))
        delivery = _Delivery(flush, receiver)
        attempts = 0
        while True:
            attempts += 1
            async with self.limiter(receiver.name).slot():
                outcome = await self._attempt(delivery)
            elapsed_s = self.clock() - started
            if outcome.status != "retry":
                result = DeliveryResult(outcome.status, attempts, elapsed_s, outcome.reason)
                return self._finish(flush, receiver.kind, result)
            delay_s = retry_delay_s(self.retry, attempts, elapsed_s, self.random)
            log.warning(
                "event=notify_attempt_failed receiver=%s kind=%s notification_id=%s attempt=%d next_in_s=%s reason=%r",
                receiver.name, receiver.kind, flush.notification_id, attempts,
                "-" if delay_s is None else f"{delay_s:.3f}", outcome.reason,
            )
            if delay_s is None:
                return self._finish(flush, receiver.kind, DeliveryResult("retry", attempts, elapsed_s, outcome.reason))
            await self.sleep(delay_s)

    def _finish(self, flush: Flush, kind: str, result: DeliveryResult) -> DeliveryResult:
        level = logging.INFO if result.sent else logging.WARNING
        log.log(
            level,
            "event=notify_delivery receiver=%s kind=%s group_key=%r notification_id=%s status=%s attempts=%d"
            " latency_s=%.3f reason=%r",
            flush.receiver, kind or "-", flush.group_key, flush.notification_id, result.status,
            result.attempts, result.latency_s, result.reason,
        )
        return result

    async def _attempt(self, delivery: _Delivery) -> Outcome:
        """One try, by kind; a secret that cannot be read is a permanent failure (fix the config)."""
        integration = delivery.receiver.integration
        try:
            if isinstance(integration, WebhookReceiver):
                return await self._webhook(integration, delivery.flush)
            if isinstance(integration, AlertmanagerReceiver):
                return await self._alertmanager(integration, delivery)
            if isinstance(integration, SlackReceiver):
                return await self._slack(integration, delivery.flush)
            if isinstance(integration, PagerDutyReceiver):
                return await self._pagerduty(integration, delivery.flush)
            if isinstance(integration, EmailReceiver):
                return await self._email(integration, delivery.flush)
            return await self._exec(integration, delivery.flush)
        except SecretUnavailable as exc:
            return Outcome("failed", self.redact(str(exc)))

    def prime_redaction(self) -> None:
        """Read every secret of the config that can be read, so that a receiver echoing another
        receiver's secret (a shared token, a misrouted key) is redacted too. Unreadable ones are
        skipped here: the delivery that needs one reports it."""
        self._primed = True
        for receiver in self.config.receivers.values():
            for secret in secrets_of(receiver.integration):
                with contextlib.suppress(SecretUnavailable):
                    self.secret(secret)

    def secret(self, secret: Secret) -> str:
        """The value of ``secret`` (remembered for redaction); :class:`SecretUnavailable` if unreadable."""
        try:
            value = read_secret(secret, self.environ, self.read_text)
        except KeyError:
            raise SecretUnavailable(f"secret {secret.shown()} is not set") from None
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or type(exc).__name__
            raise SecretUnavailable(f"cannot read secret {secret.shown()}: {why}") from None
        if not value:
            raise SecretUnavailable(f"secret {secret.shown()} is empty")
        self.redact.add(value)
        return value

    # --- HTTP ------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        return self._session

    def _auth_headers(self, auth: HttpAuth) -> dict[str, str]:
        if auth.bearer_token is not None:
            return {"Authorization": f"Bearer {self.secret(auth.bearer_token)}"}
        if auth.basic_password is not None:
            password = self.secret(auth.basic_password)
            token = base64.b64encode(f"{auth.basic_username}:{password}".encode()).decode("ascii")
            return {"Authorization": f"Basic {token}"}
        return {}

    async def post(
        self,
        url: str,
        body: bytes,
        flush: Flush,
        *,
        timeout_s: float,
        shown: str,
        headers: Mapping[str, str] | None = None,
    ) -> Outcome:
        """POST a JSON ``body`` with the notification id; the outcome by :func:`classify_http`.
        ``shown`` names the target in reasons (a URL that is a secret is never shown)."""
        sent_headers = {
            "Content-Type": "application/json",
            NOTIFICATION_ID_HEADER: flush.notification_id,
            **(headers or {}),
        }
        try:
            async with self._http().post(
                url,
                data=body,
                headers=sent_headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                ssl=self.ssl_context if self.ssl_context is not None else True,
                allow_redirects=False,  # a redirect would carry the credentials elsewhere
            ) as response:
                status = classify_http(response.status)
                if status == "sent":
                    return Outcome("sent")
                snippet = (await response.content.read(_BODY_SNIPPET_BYTES)).decode("utf-8", "replace")
                return Outcome(status, self.redact(f"HTTP {response.status} from {shown}: {' '.join(snippet.split())}"))
        except TimeoutError:
            return Outcome("retry", self.redact(f"{shown} did not answer within {timeout_s:g}s"))
        except aiohttp.ClientError as exc:
            return Outcome("retry", self.redact(f"cannot reach {shown}: {type(exc).__name__}: {exc}"))

    async def _webhook(self, r: WebhookReceiver, flush: Flush) -> Outcome:
        payload = webhook_payload(
            flush, external_url=self.config.external_url, generator=self.config.generator_url, max_alerts=r.max_alerts
        )
        body = json_body(payload)
        headers = self._auth_headers(r.auth)
        if r.hmac_secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.secret(r.hmac_secret).encode(), body)
        if r.url_secret is not None:
            url, shown = self.secret(r.url_secret), f"the webhook (URL in {r.url_secret.shown()})"
        else:
            url, shown = r.url, shown_url(r.url)
        return await self.post(url, body, flush, timeout_s=r.timeout_s, shown=shown, headers=headers)

    async def _alertmanager(self, r: AlertmanagerReceiver, delivery: _Delivery) -> Outcome:
        """Every Alertmanager of the set that has not accepted yet, at once; sent when all have."""
        flush = delivery.flush
        ends_at = None if self.alertmanager_ends_after_s is None else flush.at + self.alertmanager_ends_after_s
        body = json_body(alertmanager_alerts(flush, generator=self.config.generator_url, firing_ends_at=ends_at))
        headers = self._auth_headers(r.auth)
        pending = [url for url in r.urls if url not in delivery.accepted_urls]
        outcomes = await asyncio.gather(
            *(
                self.post(
                    url.rstrip("/") + "/api/v2/alerts", body, flush, timeout_s=r.timeout_s,
                    shown=shown_url(url), headers=headers,
                )
                for url in pending
            )
        )
        delivery.accepted_urls.update(url for url, o in zip(pending, outcomes, strict=True) if o.status == "sent")
        for status in ("failed", "retry"):
            reasons = [o.reason for o in outcomes if o.status == status]
            if reasons:
                left = len(r.urls) - len(delivery.accepted_urls)
                return Outcome(status, self.redact(f"{left} of {len(r.urls)} Alertmanagers: " + "; ".join(reasons)))
        return Outcome("sent")

    async def _slack(self, r: SlackReceiver, flush: Flush) -> Outcome:
        message = slack_message(
            flush,
            max_alerts=r.max_alerts,
            channel=r.channel,
            username=r.username,
            external_url=self.config.external_url,
        )
        url = self.secret(r.url)
        return await self.post(
            url, json_body(message), flush, timeout_s=r.timeout_s, shown=f"the Slack webhook ({r.url.shown()})"
        )

    async def _pagerduty(self, r: PagerDutyReceiver, flush: Flush) -> Outcome:
        event = pagerduty_event(
            flush,
            self.secret(r.routing_key),
            severity_map=r.severity,
            source=r.source,
            client=r.client,
            client_url=self.config.external_url,
        )
        return await self.post(r.url, json_body(event), flush, timeout_s=r.timeout_s, shown=shown_url(r.url))

    # --- e-mail ----------------------------------------------------------------------------

    async def _email(self, r: EmailReceiver, flush: Flush) -> Outcome:
        password = self.secret(r.auth_password) if r.auth_password is not None else ""
        message = mail_of(r, flush, self.config.external_url)
        # smtplib blocks: a thread keeps the event loop (other deliveries) running meanwhile.
        outcome = await asyncio.to_thread(self._smtp_send, r, message, password)
        return Outcome(outcome.status, self.redact(outcome.reason))

    def _smtp_send(self, r: EmailReceiver, message: EmailMessage, password: str) -> Outcome:
        host, _, port = r.smarthost.rpartition(":")
        where = f"SMTP {r.smarthost}"
        try:
            with smtplib.SMTP(host.strip("[]"), int(port), timeout=r.timeout_s) as smtp:
                smtp.ehlo()
                if r.starttls:
                    smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if r.auth_username:
                    smtp.login(r.auth_username, password)
                refused = smtp.send_message(message)
        except smtplib.SMTPNotSupportedError as exc:
            return Outcome("failed", f"{where} does not support what the receiver needs (STARTTLS or AUTH): {exc}")
        except smtplib.SMTPAuthenticationError as exc:
            return Outcome("failed", f"{where} refused the login of {r.auth_username!r}: {exc.smtp_code}")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            status: Status = "retry" if any(400 <= c < 500 for c in codes) else "failed"
            return Outcome(status, f"{where} refused every recipient: {_smtp_codes(exc.recipients)}")
        except smtplib.SMTPResponseException as exc:
            status = "retry" if 400 <= exc.smtp_code < 500 else "failed"
            return Outcome(status, f"{where} answered {exc.smtp_code}: {_smtp_text(exc.smtp_error)}")
        except ssl.SSLCertVerificationError as exc:
            return Outcome("failed", f"{where}: the server's certificate is not trusted ({exc.verify_message})")
        except (smtplib.SMTPException, OSError) as exc:  # connection refused or dropped, timeouts, TLS
            return Outcome("retry", f"{where}: {type(exc).__name__}: {exc}")
        if refused:  # some recipients took it: a retry would send the others a second copy
            return Outcome("sent", f"{where} refused {_smtp_codes(refused)}")
        return Outcome("sent")

    # --- exec ------------------------------------------------------------------------------

    async def _exec(self, r: ExecReceiver, flush: Flush) -> Outcome:
        """Run the command with the webhook payload on stdin; killed (with its children) on timeout."""
        payload = webhook_payload(
            flush, external_url=self.config.external_url, generator=self.config.generator_url, max_alerts=r.max_alerts
        )
        env = {k: self.environ[k] for k in EXEC_ENV_KEPT if k in self.environ}
        env.update(
            FLEETPULSE_NOTIFICATION_ID=flush.notification_id,
            FLEETPULSE_RECEIVER=flush.receiver,
            FLEETPULSE_GROUP_KEY=flush.group_key,
        )
        name = r.command[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *r.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group: a timeout kills what it started too
            )
        except OSError as exc:
            return Outcome("failed", self.redact(f"cannot run {name}: {exc.strerror or exc}"))
        try:
            _, stderr = await asyncio.wait_for(process.communicate(json_body(payload)), r.timeout_s)
        except TimeoutError:
            await _kill_group(process)
            return Outcome("retry", self.redact(f"{name} did not finish within {r.timeout_s:g}s (killed)"))
        return _exit_outcome(name, process.returncode, stderr, self.redact)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


def _exit_outcome(name: str, code: int | None, stderr: bytes, redact: Callable[[str], str]) -> Outcome:
    if code == 0:
        return Outcome("sent")
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    said = f": {lines[-1].strip()}" if lines else ""
    if code is not None and code < 0:
        return Outcome("retry", redact(f"{name} was killed by signal {-code}{said}"))
    status: Status = "retry" if code == EX_TEMPFAIL else "failed"
    return Outcome(status, redact(f"{name} exited with {code}{said}"))


def _smtp_text(error: bytes | str) -> str:
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    return " ".join(text.split())


def _smtp_codes(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{rcpt} ({code} {_smtp_text(text)})" for rcpt, (code, text) in sorted(refused.items()))


def mail_of(r: EmailReceiver, flush: Flush, external_url: str = "") -> EmailMessage:
    """The mail of ``flush``: text and HTML alternatives; ``Message-ID`` derived from the
    notification id, so a mail sent twice is recognisably the same one."""
    content = email_message(flush, external_url=external_url)
    message = EmailMessage()
    message["Subject"] = content.subject
    message["From"] = r.from_addr
    message["To"] = ", ".join(r.to)
    message["Date"] = formatdate(flush.at, usegmt=True)
    domain = r.from_addr.rpartition("@")[2]
    message["Message-ID"] = f"<{flush.notification_id}@{domain}>"
    message[NOTIFICATION_ID_HEADER] = flush.notification_id
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


def sample_flush(receiver: str, now: float, *, resolved: bool = False) -> Flush:
    """A made-up notification for ``fleetpulse notify test``: one ``fleetpulse_test`` alert,
    firing (or resolved, to close what the firing one opened in PagerDuty or an Alertmanager)."""
    fingerprint = short_hash("fleetpulse_test", receiver, size=8)
    state: Literal["firing", "resolved"] = "resolved" if resolved else "firing"
    alert = Alert(
        fingerprint=fingerprint, rule="fleetpulse_test", state=state, severity="info", host_id="", region="",
        metric="", value=0.0, threshold=0.0, started_at=now, at=now,
        summary="A test notification from 'fleetpulse notify test': nothing is wrong.",
        event_id=alert_event_id(fingerprint, state, "info", now, now),
        kind="test", transition=state,
    )
    key = f"{{}}:{{receiver={receiver!r}, test=\"fleetpulse\"}}"
    nid = "test-" + short_hash(receiver, state, repr(now), size=8)
    return Flush(nid, key, "{}", receiver, (("test", "fleetpulse"),), (alert,), now, 1)
