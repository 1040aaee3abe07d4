"""The agent's sender on a stand-in producer: what it does when the broker refuses a batch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiokafka.errors import LeaderNotAvailableError, OutOfOrderSequenceNumber

from collector.agent import Sender
from collector.outbox import Outbox


class _Producer:
    """Confirms every record into ``log``, or, when ``broken``, refuses the first with no
    leader and every later one as out of sequence (an idempotent producer after a hole)."""

    def __init__(self, log: list[bytes], broken: bool) -> None:
        self.log, self.broken, self.sends = log, broken, 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.broken:
            fut.set_exception(LeaderNotAvailableError() if self.sends == 0 else OutOfOrderSequenceNumber())
        else:
            self.log.append(value)
            fut.set_result(None)
        self.sends += 1
        return fut


def test_a_refused_batch_is_sent_again_in_order_by_a_new_producer(tmp_path: Path) -> None:
    spool = Outbox(tmp_path / "spool")
    records = [f"r{i}".encode() for i in range(5)]
    spool.put([("t", b"k", r) for r in records[:-1]], ("t", b"k", records[-1]))
    delivered: list[bytes] = []
    made: list[_Producer] = []

    def make() -> Any:
        made.append(_Producer(delivered, broken=not made))  # the first one is broken
        return made[-1]

    async def run() -> None:
        sender = Sender(spool, make)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        for _ in range(100):
            if len(spool) == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        sender.wakeup.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(run())
    assert delivered == records and len(spool) == 0
    assert len(made) == 2 and made[0].sends == len(records)  # the broken one is not used again
