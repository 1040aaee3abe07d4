"""Free local TCP ports, for the tests, the benches and the demo that start their own
brokers and receivers (a local broker listens on ``port`` and its controller on ``port + 1``)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A port ``p`` such that ``p`` and ``p + 1`` (a local broker's controller) are both free."""
    for _ in range(50):
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")
