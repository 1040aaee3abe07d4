"""Reading and writing the control topics from the command line (policy apply/list, silences)."""

from __future__ import annotations

import getpass
import logging
import socket
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from collector.connection import Bootstrap, as_connection, start_client
from collector.contract import Topics
from collector.kafka_io import ensure_all_topics, partitions_from_env
from policies.control import POLICY_KEY, ControlError, PublishedPolicy, decode_silence, encode_silence
from policies.model import Silence
from policies.signing import Signer
from streams.control_feed import ControlFeed

log = logging.getLogger(__name__)


def operator() -> str:
    """Who is applying a change, for the record (``user@host``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def _produce(bootstrap: Bootstrap, topic: str, key: bytes, value: bytes | None, signer: Signer | None) -> None:
    producer = AIOKafkaProducer(**as_connection(bootstrap).client_options(), acks="all", enable_idempotence=True)
    await start_client(producer, bootstrap)
    headers = signer.headers(topic, key, value) if signer is not None else None
    try:
        await producer.send_and_wait(topic, key=key, value=value, headers=headers)
    finally:
        await producer.stop()


async def read_latest(bootstrap: Bootstrap, topic: str) -> dict[bytes, bytes | None]:
    """The latest value per key of a compacted topic (None for a deleted key)."""
    latest: dict[bytes, bytes | None] = {}

    def keep(record: ConsumerRecord) -> None:
        latest[record.key or b""] = record.value

    feed = ControlFeed(bootstrap, {topic: keep})
    await feed.start()
    try:
        await feed.catch_up()
    finally:
        await feed.stop()
    return latest


async def publish_policy(
    bootstrap: Bootstrap, topics: Topics, files: dict[str, str], version: str, signer: Signer | None = None
) -> PublishedPolicy:
    """Publish a (validated) policy set, signed when ``signer`` is given; running workers apply it
    within a second or so (workers with trusted keys only if a trusted key signed it)."""
    await ensure_all_topics(bootstrap, topics, partitions_from_env())
    published = PublishedPolicy(files, version, time.time(), operator())
    await _produce(bootstrap, topics.policies, POLICY_KEY, published.encode(), signer)
    return published


async def current_policy(bootstrap: Bootstrap, topics: Topics) -> PublishedPolicy | None:
    await ensure_all_topics(bootstrap, topics, partitions_from_env())
    raw = (await read_latest(bootstrap, topics.policies)).get(POLICY_KEY)
    return None if raw is None else PublishedPolicy.decode(raw)


async def put_silence(bootstrap: Bootstrap, topics: Topics, silence: Silence, signer: Signer | None = None) -> None:
    await ensure_all_topics(bootstrap, topics, partitions_from_env())
    await _produce(bootstrap, topics.silences, silence.id.encode(), encode_silence(silence), signer)


async def delete_silence(bootstrap: Bootstrap, topics: Topics, key: str, signer: Signer | None = None) -> None:
    """Remove a silence record outright (a tombstone: workers drop it, compaction deletes it)."""
    await ensure_all_topics(bootstrap, topics, partitions_from_env())
    await _produce(bootstrap, topics.silences, key.encode(), None, signer)


@dataclass
class SilenceRecords:
    """The silence topic as read: the silences, and the records that do not decode (key -> why)."""

    silences: list[Silence] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)


async def silences(bootstrap: Bootstrap, topics: Topics) -> SilenceRecords:
    """Every silence on record (active, future and ended but not yet compacted away).

    A record that does not decode (written by a broken or older client) is logged and left
    out: one bad record never hides the others.
    """
    await ensure_all_topics(bootstrap, topics, partitions_from_env())
    records = SilenceRecords()
    for key, raw in (await read_latest(bootstrap, topics.silences)).items():
        if raw is None:
            continue
        try:
            records.silences.append(decode_silence(raw))
        except ControlError as exc:
            sid = key.decode(errors="replace")
            records.unreadable[sid] = str(exc)
            log.warning(
                "event=silence_unreadable id=%s reason=%r (skipped; 'silence expire %s' removes it)", sid, str(exc), sid
            )
    records.silences.sort(key=lambda s: s.starts_at)
    return records
