"""Witness probes: this agent tries a TCP connect to its peers and reports what it saw.

The down-checker uses these reports to tell a host that is silent to the backend but
reachable by its peers (*alive, path broken*) from one that is down. A report
(:class:`~collector.contract.PeerProbe`) is sent only when a peer's ok / not-ok result
changes, plus a refresh of every peer's state every ``refresh_s``: the backend trusts an
unchanged witness state only for a while (60 s by default), so a peer is refreshed at the
latest ``refresh_s + interval_s`` after its last report, which must stay below that.

Configured in the agent file's ``[witness]`` section (see ``deploy/agent.toml``):

* ``peers``: ``[{host_id = "web-2", address = "10.0.2.5:22"}, ...]``; none = witness off;
* ``timeout_s``: per connect (2.0), which bounds a round (peers are probed concurrently,
  at most :data:`MAX_CONCURRENT_PROBES` at a time);
* ``refresh_s``: re-send an unchanged state after this long (30.0);
* ``interval_s``: seconds between rounds (default: the agent's ``interval_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from collector.contract import PeerProbe

log = logging.getLogger(__name__)

MAX_CONCURRENT_PROBES = 32
_MAX_ERROR_CHARS = 200


def parse_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (IPv6 in brackets: ``"[fd00::1]:22"``) as ``(host, port)``; ValueError if not."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host.strip():
        raise ValueError(f'must be "host:port", got {address!r}')
    if host.startswith("[") and host.endswith("]") and len(host) > 2:
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets, e.g. [fd00::1]:22, got {address!r}")
    elif "[" in host or "]" in host:
        raise ValueError(f"brackets hold an IPv6 address, e.g. [fd00::1]:22, got {address!r}")
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be 1..65535, got {address!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class Peer:
    """A host this agent witnesses: its host id (as the backend knows it) and a TCP ``host:port``."""

    host_id: str
    address: str

    def __post_init__(self) -> None:
        if not self.host_id.strip():
            raise ValueError("host_id must not be empty")
        parse_address(self.address)

    @property
    def host(self) -> str:
        return parse_address(self.address)[0]

    @property
    def port(self) -> int:
        return parse_address(self.address)[1]


class ProbeResult(NamedTuple):
    """One connect attempt: reachable or not, how long it took, and why not."""

    ok: bool
    latency_ms: float
    error: str = ""


async def probe(peer: Peer, timeout_s: float) -> ProbeResult:
    """Try a TCP connect to ``peer`` within ``timeout_s``; never raises for network failures."""
    started = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(peer.host, peer.port), timeout_s)
    except TimeoutError:
        return ProbeResult(False, _ms_since(started), "timeout")
    # OSError: refused, unreachable, no route, name resolution (gaierror). ValueError: a name
    # the resolver cannot even encode (UnicodeError for an empty or 64+ character label).
    except (OSError, ValueError) as exc:
        return ProbeResult(False, _ms_since(started), f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS])
    latency_ms = _ms_since(started)
    writer.close()
    # The peer may reset a bare connect; the answer (reachable) is already known.
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout_s)
    return ProbeResult(True, latency_ms)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


class WitnessReporter:
    """Decides which probe results become reports: changes, and refreshes when due. No I/O."""

    def __init__(self, host_id: str, region: str, refresh_s: float = 30.0) -> None:
        self.host_id = host_id
        self.region = region
        self.refresh_s = refresh_s
        self.reported: dict[str, tuple[bool, float]] = {}  # target -> (ok, at) of the last report

    def report(self, results: Mapping[Peer, ProbeResult], now: float) -> list[PeerProbe]:
        """The reports to send for the latest ``results`` at ``now`` (at most one per peer)."""
        out = []
        for peer, result in results.items():
            last = self.reported.get(peer.host_id)
            # A clock stepped backwards counts as due: otherwise refreshes would stop until it caught up.
            if last is not None and last[0] == result.ok and 0 <= now - last[1] < self.refresh_s:
                continue
            self.reported[peer.host_id] = (result.ok, now)
            out.append(
                PeerProbe(
                    host_id=self.host_id,
                    region=self.region,
                    target=peer.host_id,
                    address=peer.address,
                    ok=result.ok,
                    at=now,
                    latency_ms=result.latency_ms,
                    error=result.error,
                )
            )
        return out


class Witness:
    """Probes the peers in rounds and keeps the reports until the collector takes them.

    In the agent, :meth:`start` probes in the background every ``interval_s`` and
    :meth:`take` only drains, so collection never waits on the network. Without
    :meth:`start` (``fleetpulse agent --stdout``), :meth:`take` runs one round itself.
    """

    def __init__(
        self,
        peers: Iterable[Peer],
        host_id: str,
        region: str,
        *,
        timeout_s: float = 2.0,
        refresh_s: float = 30.0,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.peers = list(peers)
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.clock = clock
        self.reporter = WitnessReporter(host_id, region, refresh_s)
        # Rounds add at most one report per peer; this only fills if nobody drains for many rounds,
        # and dropping the oldest keeps every peer's latest state (the refresh re-sends it anyway).
        self.pending: deque[PeerProbe] = deque(maxlen=16 * max(1, len(self.peers)))
        self.background = False

    async def round(self) -> None:
        """Probe every peer once, concurrently (bounded); each result is reported as it arrives."""
        slots = asyncio.Semaphore(MAX_CONCURRENT_PROBES)

        async def one(peer: Peer) -> None:
            async with slots:
                at = self.clock()
                result = await probe(peer, self.timeout_s)
            self.pending.extend(self.reporter.report({peer: result}, at))

        await asyncio.gather(*(one(peer) for peer in self.peers))

    async def run(self) -> None:
        """Probe every ``interval_s`` until cancelled."""
        next_at = time.monotonic()
        while True:
            try:
                await self.round()
            except Exception:  # a witness bug must not stop the agent's own reporting
                log.exception("event=witness_round_failed peers=%d", len(self.peers))
            next_at += self.interval_s
            now = time.monotonic()
            if next_at < now:  # a round overran (many slow peers): skip, don't burst
                next_at = now + self.interval_s
            await asyncio.sleep(next_at - now)

    def start(self) -> asyncio.Task[None]:
        """Probe in the background from now on (needs a running loop); cancel the task to stop."""
        self.background = True
        return asyncio.create_task(self.run(), name="witness")

    def take(self) -> list[PeerProbe]:
        """The reports since the last call; without :meth:`start`, after a round run here (blocking)."""
        if not self.background:
            asyncio.run(self.round())
        out = list(self.pending)
        self.pending.clear()
        return out
