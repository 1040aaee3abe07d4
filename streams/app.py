"""The Faust worker: agent events in, alerts (and scale signals) out, policies applied live.

The app is built from a :class:`~streams.context.WorkerContext` (settings, topics, tables,
publishing through ``fired``, the live policy, stats) handed to each stage's ``install(ctx)``:

* :mod:`streams.evaluation`: every host's events through the policy (table ``hosts``);
* :mod:`streams.group_rules`: group rules and their scale signals (table ``groups``);
* :mod:`streams.downcheck`: heartbeats in, host/region/ingest alerts out (``beats``, ``downcheck``).

Every alert is published through the ``fired`` table, whose changelog *is* the alert topic
(why that makes alerts never lost and never sent twice: :mod:`streams.context`). The policy
set, silences and the fleet's firing alerts come from the control topics
(:mod:`streams.policy_holder`, :mod:`streams.control_feed`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import faust

from collector.connection import Bootstrap, as_connection
from streams import downcheck, evaluation, group_rules
from streams.consumer import App as FleetApp
from streams.context import ReportStep, WorkerContext
from streams.control_feed import ControlFeed
from streams.settings import WorkerSettings

log = logging.getLogger(__name__)


def broker_urls(bootstrap: Bootstrap) -> list[str]:
    """``host:port,host:port`` -> Faust's ``kafka://`` URLs."""
    servers = as_connection(bootstrap).bootstrap_servers
    return [f"kafka://{server.strip()}" for server in servers.split(",") if server.strip()]


def broker_credentials(bootstrap: Bootstrap) -> faust.auth.Credentials | None:
    """The connection's TLS/SASL settings as Faust credentials (None: PLAINTEXT)."""
    kafka = as_connection(bootstrap)
    if kafka.sasl:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            ssl_context=kafka.ssl_context(),
            mechanism=kafka.sasl_mechanism,
        )
    if kafka.tls:
        return faust.SSLCredentials(kafka.ssl_context())
    return None


def new_app(settings: WorkerSettings) -> FleetApp:
    return FleetApp(
        settings.app_id,
        broker=broker_urls(settings.bootstrap),
        broker_credentials=broker_credentials(settings.bootstrap),
        store="memory://",
        datadir=str(settings.datadir / settings.app_id),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )


def create_app(settings: WorkerSettings) -> WorkerContext:
    """Build the Faust app with every stage's agents, tables and timers, the stats timer and
    the start-up line; the context returned holds the app, its stats and its policy holder."""
    ctx = WorkerContext(settings, new_app(settings))
    evaluation.install(ctx)
    group_rules.install(ctx)
    downcheck.install(ctx)
    ctx.app.timer(settings.stats_interval_s)(_reporter(ctx))
    ctx.app.task(_announcer(ctx))
    return ctx


def _reporter(ctx: WorkerContext) -> ReportStep:
    async def report() -> None:
        ctx.holder.suppressor.prune(time.time())  # ended silences are no longer matched against
        for step in ctx.report_steps:
            await step()
        log.info("event=worker_stats %s", ctx.stats.line())

    return report


def _announcer(ctx: WorkerContext) -> Callable[[], Awaitable[None]]:
    async def announce() -> None:
        policy = ctx.holder.evaluator.policy
        log.info(
            "event=worker_started app_id=%s policy=%s rules=%d topics=%s",
            ctx.settings.app_id,
            policy.version,
            len(policy),
            ",".join(evaluation.event_topics(ctx.settings.topics)),
        )
        if ctx.settings.verifier is None:
            log.warning(
                "event=control_unauthenticated detail=%r",
                "policy and silence records are obeyed unsigned: anyone who can write the control topics"
                " changes the policy; give the worker --trusted-key (see SECURITY.md)",
            )

    return announce


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> None:
    """Create the topics, read the control topics, then run the Faust worker until SIGTERM/SIGINT."""
    from faust.worker import Worker

    from collector.kafka_io import ensure_all_topics

    (settings.datadir / settings.app_id).mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_all_topics(settings.bootstrap, settings.topics, settings.partitions))
    ctx = create_app(settings)  # builds only: nothing is read or started before the worker runs
    holder, topics = ctx.holder, settings.topics
    feed = ControlFeed(
        settings.bootstrap,
        {topics.policies: holder.on_policy, topics.silences: holder.on_silence, topics.alerts: holder.on_alert},
    )
    loop.run_until_complete(feed.start())
    loop.run_until_complete(feed.catch_up())
    loop.run_until_complete(_ensure_changelogs(ctx))

    @ctx.app.task
    async def follow_control_topics() -> None:
        await feed.follow()  # cancelled (and closed) when the worker stops

    worker = Worker(ctx.app, loglevel=loglevel, loop=loop, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        log.info("event=worker_stopped %s", ctx.stats.line())


async def _ensure_changelogs(ctx: WorkerContext) -> None:
    """The tables' changelogs too: left to Faust, a changelog created while the worker starts
    can be in the consumer's metadata with 0 partitions, and the first write to that table
    then fails with PartitionsMismatch (the agent crashes until the worker restarts)."""
    from collector.kafka_io import ensure_topics

    settings = ctx.settings
    data_topics = set(settings.topics.all())
    changelogs = [t.changelog_topic.get_topic_name() for t in ctx.app.tables.values()]
    await ensure_topics(
        settings.bootstrap,
        [name for name in changelogs if name not in data_topics],
        settings.partitions,
        lambda name: {"cleanup.policy": "compact"},
    )
