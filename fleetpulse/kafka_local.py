"""A local single-node Apache Kafka (KRaft) from the official jars on Maven Central.

The jars are resolved with ``mvn`` from ``deploy/kafka/pom.xml`` into a cache keyed by the
POM's content, storage is formatted once, and ``java`` runs ``kafka.Kafka`` detached so the
broker outlives the command that started it (``stop`` ends it). Files live under
``<home>/kafka/``: ``libs-<hash>/``, ``data-<port>/``, ``broker-<port>.log|.pid|.properties``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from collector.kafka_io import broker_ready, wait_for_broker

log = logging.getLogger(__name__)

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "kafka"
DEFAULT_PORT = 9092


class KafkaLocalError(RuntimeError):
    """The local broker could not be prepared or started; the message says what to do."""


def default_home() -> Path:
    """``FLEETPULSE_HOME`` or ``./.fleetpulse``: where the broker, worker and ClickHouse keep data."""
    return Path(os.environ.get("FLEETPULSE_HOME", ".fleetpulse")).resolve()


@dataclass
class LocalKafka:
    """One local broker identified by its port."""

    home: Path
    port: int = DEFAULT_PORT
    heap: str = "512m"
    jar_cache: Path | None = None  # where libs-<hash>/ go; default <home>/kafka (tests share one)

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> Path:
        return self.home / "kafka"

    @property
    def log_path(self) -> Path:
        return self.base / f"broker-{self.port}.log"

    @property
    def pid_path(self) -> Path:
        return self.base / f"broker-{self.port}.pid"

    @property
    def data_dir(self) -> Path:
        return self.base / f"data-{self.port}"

    def pid(self) -> int | None:
        """The broker's pid if our pid file names a live process."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by someone else
        return pid

    def is_ready(self) -> bool:
        """A metadata round-trip to the broker succeeds."""
        return asyncio.run(broker_ready(self.bootstrap, timeout_s=3.0))

    def resolve_jars(self) -> Path:
        """Copy Kafka and its runtime dependencies from Maven into the cache (once per POM)."""
        pom = DEPLOY_DIR / "pom.xml"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
        libs = (self.jar_cache or self.base) / f"libs-{digest}"
        if (libs / ".complete").exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaLocalError(
                "Maven ('mvn') is not on PATH; install Maven 3.8+ or set "
                "KAFKA_BOOTSTRAP_SERVERS to use an existing broker"
            )
        libs.mkdir(parents=True, exist_ok=True)
        log.info("event=kafka_resolve pom=%s into=%s", pom, libs)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={libs}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaLocalError(
                f"mvn could not resolve Kafka (exit {result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        (libs / ".complete").touch()
        return libs

    def _write_config(self) -> Path:
        template = (DEPLOY_DIR / "server.properties.template").read_text()
        config = self.base / f"broker-{self.port}.properties"
        config.write_text(template.format(port=self.port, controller_port=self.controller_port, data_dir=self.data_dir))
        return config

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise KafkaLocalError(
                "Java 17+ ('java') is not on PATH; install a JDK or set "
                "KAFKA_BOOTSTRAP_SERVERS to use an existing broker"
            )
        return java

    def start(self, timeout_s: float = 120.0) -> bool:
        """Start the broker unless it already answers; returns True if this call started it."""
        if self.is_ready():
            return False
        running = self.pid()
        if running is not None:
            log.info("event=kafka_starting pid=%d (waiting for it)", running)
            asyncio.run(wait_for_broker(self.bootstrap, timeout_s))
            return False
        self.base.mkdir(parents=True, exist_ok=True)
        libs = self.resolve_jars()
        config = self._write_config()
        java = self._java()
        classpath = f"{libs}/*"
        if not (self.data_dir / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            fmt = subprocess.run(
                [
                    java,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    # One argument: a base64 id may start with "-", which argparse takes for an option.
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(config),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise KafkaLocalError(f"formatting {self.data_dir} failed:\n{fmt.stdout}{fmt.stderr}")
        with open(self.log_path, "ab") as out:
            proc = subprocess.Popen(
                [
                    java,
                    "-Xms256m",
                    f"-Xmx{self.heap}",
                    "-XX:+UseG1GC",
                    f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(config),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI; `stop` ends it
            )
        self.pid_path.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise KafkaLocalError(f"Kafka exited with code {proc.returncode}; see {self.log_path}")
            if self.is_ready():
                return True
            time.sleep(0.5)
        self.stop()
        raise KafkaLocalError(f"Kafka did not become ready in {timeout_s:.0f}s; see {self.log_path}")

    def stop(self, grace_s: float = 20.0) -> bool:
        """SIGTERM, then SIGKILL after ``grace_s``; returns True if a broker was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.2)
        else:
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_path.unlink(missing_ok=True)
        return True


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child (the test fixture's broker), else just probe.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
