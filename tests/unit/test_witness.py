"""Witness probes: TCP connects to peers, reports on change and on refresh, the ``[witness]`` settings."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector import witness
from collector.config import ConfigError, load_agent_config
from collector.contract import DecodeError, PeerProbe, decode, encode
from collector.witness import Peer, ProbeResult, Witness, WitnessReporter, parse_address, probe

# -- probing --------------------------------------------------------------------------------


@contextmanager
def listening() -> Iterator[int]:
    """A local TCP port that accepts connects (the kernel completes them from the backlog)."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        yield server.getsockname()[1]


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_listening_peer_is_reachable_and_timed() -> None:
    async def main() -> ProbeResult:
        server = await asyncio.start_server(lambda _reader, writer: writer.close(), "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await probe(Peer("web-2", f"127.0.0.1:{port}"), timeout_s=2.0)

    result = asyncio.run(main())
    assert result.ok is True and result.error == ""
    assert 0 < result.latency_ms < 2000


def test_a_closed_port_is_unreachable_with_the_reason() -> None:
    result = asyncio.run(probe(Peer("web-2", f"127.0.0.1:{closed_port()}"), timeout_s=2.0))
    assert result.ok is False
    assert result.error.startswith("ConnectionRefusedError:")


def test_a_connect_that_hangs_gives_up_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hang(*_args: Any, **_kwargs: Any) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(witness.asyncio, "open_connection", hang)
    started = time.perf_counter()
    result = asyncio.run(probe(Peer("web-2", "10.0.2.5:22"), timeout_s=0.05))
    elapsed = time.perf_counter() - started
    assert result == ProbeResult(False, result.latency_ms, "timeout")
    assert 0.05 <= elapsed < 1.0 and 50 <= result.latency_ms < 1000


def test_an_unroutable_address_fails_within_the_timeout() -> None:
    # TEST-NET-1 is never routed: the connect hangs (timeout) or, without a route, fails at once.
    started = time.perf_counter()
    result = asyncio.run(probe(Peer("web-2", "192.0.2.1:9"), timeout_s=0.1))
    assert result.ok is False and result.error
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("address", ["a..b:22", "x" * 64 + ".example:22"])
def test_a_name_the_resolver_cannot_encode_is_a_failed_probe_not_an_exception(address: str) -> None:
    result = asyncio.run(probe(Peer("web-2", address), timeout_s=0.5))
    assert result.ok is False and result.error.startswith("UnicodeError:")


# -- what becomes a report ------------------------------------------------------------------

UP, DOWN = ProbeResult(True, 1.5), ProbeResult(False, 2000.0, "timeout")
WEB2, DB1 = Peer("web-2", "10.0.2.5:22"), Peer("db-1", "10.0.3.7:5432")


def test_the_first_result_is_reported_with_what_was_seen() -> None:
    reporter = WitnessReporter("web-1", "eu-west", refresh_s=30.0)
    assert reporter.report({WEB2: UP, DB1: DOWN}, now=100.0) == [
        PeerProbe("web-1", "eu-west", "web-2", "10.0.2.5:22", True, 100.0, 1.5, ""),
        PeerProbe("web-1", "eu-west", "db-1", "10.0.3.7:5432", False, 100.0, 2000.0, "timeout"),
    ]


def test_reports_are_sent_on_change_and_on_refresh_only() -> None:
    reporter = WitnessReporter("web-1", "eu-west", refresh_s=30.0)
    reporter.report({WEB2: UP, DB1: UP}, now=100.0)
    assert reporter.report({WEB2: UP, DB1: UP}, now=110.0) == []  # unchanged
    changed = reporter.report({WEB2: DOWN, DB1: UP}, now=120.0)
    assert [(p.target, p.ok) for p in changed] == [("web-2", False)]
    assert reporter.report({WEB2: DOWN, DB1: UP}, now=129.9) == []
    # db-1 was last reported at 100: refreshed at 130; web-2 (reported at 120) at 150.
    assert [(p.target, p.at) for p in reporter.report({WEB2: DOWN, DB1: UP}, now=130.0)] == [("db-1", 130.0)]
    assert [(p.target, p.ok) for p in reporter.report({WEB2: DOWN, DB1: UP}, now=150.0)] == [("web-2", False)]


def test_a_clock_stepped_back_counts_as_a_refresh() -> None:
    reporter = WitnessReporter("web-1", "eu-west", refresh_s=30.0)
    reporter.report({WEB2: UP}, now=100.0)
    assert [p.at for p in reporter.report({WEB2: UP}, now=40.0)] == [40.0]
    assert reporter.report({WEB2: UP}, now=41.0) == []


def test_take_without_start_probes_a_round_itself() -> None:
    now = [100.0]
    with listening() as port:
        peers = [Peer("web-2", f"127.0.0.1:{port}"), Peer("db-1", f"127.0.0.1:{closed_port()}")]
        w = Witness(peers, "web-1", "eu-west", timeout_s=1.0, refresh_s=30.0, clock=lambda: now[0])
        first = w.take()
        assert {(p.target, p.ok) for p in first} == {("web-2", True), ("db-1", False)}
        assert w.take() == []  # same results, refresh not due
        now[0] += 30.0
        assert {p.target for p in w.take()} == {"web-2", "db-1"}


def test_started_in_the_background_take_only_drains() -> None:
    async def main() -> list[PeerProbe]:
        with listening() as port:
            w = Witness([Peer("web-2", f"127.0.0.1:{port}")], "web-1", "eu-west", timeout_s=0.5, interval_s=0.05)
            task = w.start()
            try:
                deadline = time.monotonic() + 5.0
                while not w.pending and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                return w.take()  # inside a running loop: it must not try to run a round of its own
            finally:
                task.cancel()

    reports = asyncio.run(main())
    assert [(p.host_id, p.target, p.ok) for p in reports] == [("web-1", "web-2", True)]


# -- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.2.5:22", ("10.0.2.5", 22)),
        ("web-2.example.com:8080", ("web-2.example.com", 8080)),
        ("localhost:1", ("localhost", 1)),
        ("[fd00::1]:22", ("fd00::1", 22)),
        ("[::1]:65535", ("::1", 65535)),
    ],
)
def test_addresses_are_host_colon_port(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected
    assert (Peer("web-2", address).host, Peer("web-2", address).port) == expected


@pytest.mark.parametrize(
    ("address", "needle"),
    [
        ("10.0.2.5", 'must be "host:port"'),
        (":22", 'must be "host:port"'),
        ("  :22", 'must be "host:port"'),
        ("web:", "port must be 1..65535"),
        ("web:0", "port must be 1..65535"),
        ("web:65536", "port must be 1..65535"),
        ("web:ssh", "port must be 1..65535"),
        ("web:+22", "port must be 1..65535"),
        ("web:\u0662\u0662", "port must be 1..65535"),  # Arabic-Indic digits are digits, not a port
        ("fd00::1:22", "needs brackets"),
        ("[fd00::1:22", "needs brackets"),
        ("[]:22", "brackets hold an IPv6 address"),
        ("[:22", "brackets hold an IPv6 address"),
        ("web]:22", "brackets hold an IPv6 address"),
    ],
)
def test_bad_addresses_are_refused_with_the_reason(address: str, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        parse_address(address)


def test_a_peer_needs_a_host_id_and_a_valid_address() -> None:
    with pytest.raises(ValueError, match="host_id must not be empty"):
        Peer(" ", "10.0.2.5:22")
    with pytest.raises(ValueError, match="port must be"):
        Peer("web-2", "10.0.2.5:0")


@given(st.text(max_size=40))
def test_the_address_parser_only_ever_raises_value_error(address: str) -> None:
    try:
        host, port = parse_address(address)
    except ValueError:
        return
    assert host.strip() and 1 <= port <= 65535 and "[" not in host and "]" not in host


@given(
    st.one_of(
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
        st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True),
    ),
    st.integers(1, 65535),
)
def test_every_host_and_port_round_trips(host: str, port: int) -> None:
    assert parse_address(f"{host}:{port}") == (host.strip("[]"), port)


# -- the [witness] section ------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text('[agent]\nhost_id = "web-1"\ninterval_s = 10\n' + text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path, env={})
    return caught.value.problems


def test_a_witness_section_loads(tmp_path: Path) -> None:
    config = load_agent_config(
        write(
            tmp_path,
            """
[witness]
timeout_s = 1.5
refresh_s = 20
interval_s = 5
peers = [
    { host_id = "web-2", address = "10.0.2.5:22" },
    { host_id = "db-1", address = "[fd00::1]:5432" },
]
""",
        ),
        env={},
    )
    w = config.witness
    assert w.peers == [Peer("web-2", "10.0.2.5:22"), Peer("db-1", "[fd00::1]:5432")]
    assert (w.timeout_s, w.refresh_s, w.every_s(config.interval_s)) == (1.5, 20.0, 5.0)


def test_without_a_witness_section_witnessing_is_off(tmp_path: Path) -> None:
    config = load_agent_config(write(tmp_path, ""), env={})
    assert config.witness.peers == [] and (config.witness.timeout_s, config.witness.refresh_s) == (2.0, 30.0)
    assert config.witness.every_s(config.interval_s) == 10.0  # rounds follow the agent's interval


PEER = '{ host_id = "web-2", address = "10.0.2.5:22" }'


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("timeout = 1", "[witness] timeout", "unknown key (allowed: interval_s, peers, refresh_s, timeout_s)"),
        ('timeout_s = "fast"', "[witness] timeout_s", "expected float, got str 'fast'"),
        ("timeout_s = 0", "[witness] timeout_s", "must be between 0.01 and 60 seconds, got 0"),
        ("refresh_s = 0.5", "[witness] refresh_s", "must be between 1 and 3600 seconds"),
        ("interval_s = true", "[witness] interval_s", "expected float, got bool"),
        (f"timeout_s = 10\npeers = [{PEER}]", "[witness] timeout_s", "must be below the probe interval (10 s)"),
        ('peers = "web-2"', "[witness] peers", "must be a list of tables"),
        ('peers = [{ host_id = "web-2" }]', "[witness] peers #1 address", 'required: "host:port"'),
        ('peers = [{ address = "10.0.2.5:22" }]', "[witness] peers #1 host_id", "required"),
        ('peers = [{ host_id = "web-2", address = "10.0.2.5" }]', "[witness] peers #1 address", "host:port"),
        ('peers = [{ host_id = "web-2", address = "[]:22" }]', "[witness] peers #1 address", "brackets"),
        (f"peers = [{PEER}, {PEER}]", "[witness] peers #2 host_id", "peer 'web-2' is listed twice"),
        ('peers = [{ host_id = "web-1", address = "10.0.2.5:22" }]', "[witness] peers #1 host_id", "cannot witness"),
        ('peers = [{ host_id = "web-2", address = "10.0.2.5:22", port = 22 }]', "[witness] peers #1 port", "unknown"),
    ],
)
def test_bad_witness_settings_name_the_file_and_key(tmp_path: Path, text: str, where: str, needle: str) -> None:
    path = write(tmp_path, f"[witness]\n{text}\n")
    found = problems(path)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}: {where}: "), found
    assert needle in found[0], found


def test_a_witness_key_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("witness = 3\n")
    assert problems(path) == [f"{path}: [witness]: must be a table"]


# -- on the wire ----------------------------------------------------------------------------


def test_a_peer_probe_round_trips_through_the_contract() -> None:
    (report,) = WitnessReporter("web-1", "eu-west").report({DB1: DOWN}, now=1_700_000_000.5)
    assert decode(encode(report)) == report
    ok = PeerProbe("web-1", "eu-west", "web-2", "[fd00::1]:22", True, 1_700_000_000.0, 0.75)
    assert decode(encode(ok)) == ok


def test_a_peer_probe_without_a_boolean_ok_is_rejected() -> None:
    body = encode(PeerProbe("web-1", "eu-west", "web-2", "10.0.2.5:22", True, 1_700_000_000.0))
    with pytest.raises(DecodeError, match="'ok' must be true or false"):
        decode(body.replace(b'"ok":true', b'"ok":"yes"'))
