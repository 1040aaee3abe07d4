"""Real local receivers for the notifier's delivery tests: aiohttp servers on 127.0.0.1.

``async with HttpReceiver([500, 200]) as rx:`` answers each request with the next status of the
list (the last one repeats) and records every request (method, path, headers, body), and the
most requests it ever held at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

from fleetpulse.ports import free_port


@dataclass(frozen=True)
class Request:
    """One request a receiver got."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class HttpReceiver:
    """A local HTTP server answering with ``statuses`` in turn (``body`` as the response text),
    after holding each request ``delay_s``."""

    def __init__(self, statuses: Sequence[int] = (200,), *, body: str = "ok", delay_s: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.body = body
        self.delay_s = delay_s
        self.requests: list[Request] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            body = await request.read()
            self.requests.append(Request(request.method, request.path, request.headers, body))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            status = self.statuses[min(len(self.requests), len(self.statuses)) - 1]
            return web.Response(status=status, text=self.body)
        finally:
            self.in_flight -= 1

    async def __aenter__(self) -> HttpReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
