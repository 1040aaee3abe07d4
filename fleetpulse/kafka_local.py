"""A local single-node Apache Kafka (KRaft) from the official jars on Maven Central.

The jars are resolved with ``mvn`` from ``deploy/kafka/pom.xml`` into a cache keyed by the
POM's content, storage is formatted once, and ``java`` runs ``kafka.Kafka`` detached so the
broker outlives the command that started it (``stop`` ends it). Files live under
``<home>/kafka/``: ``libs-<hash>/``, ``data-<port>/``, ``broker-<port>.log|.pid|.properties``.

``secure=True`` runs it secured instead: SASL_SSL with SCRAM-SHA-512 for clients, mutual TLS
for the controller, the StandardAuthorizer with the ACLs of :mod:`fleetpulse.kafka_acls`; its
certificates, passwords and data are in ``secure-<port>/`` (see :mod:`fleetpulse.kafka_secure`).
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
from typing import Any

from collector.connection import Bootstrap
from collector.contract import Topics
from collector.kafka_io import broker_ready, quiet_client_logs, wait_for_broker
from fleetpulse.kafka_acls import Acl, acl_rules, apply_acls
from fleetpulse.kafka_secure import KafkaSecureError, SecureDir, java_argfile, write_private

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
    secure: bool = False  # SASL_SSL, SCRAM and ACLs; its files under secure-<port>/
    acls: list[Acl] | None = None  # what a secured start applies; None: the default deployment's

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
    def config_path(self) -> Path:
        return self.base / f"broker-{self.port}.properties"

    @property
    def data_dir(self) -> Path:
        return self.secure_dir.data_dir if self.secure else self.base / f"data-{self.port}"

    @property
    def secure_dir(self) -> SecureDir:
        return SecureDir(self.base / f"secure-{self.port}")

    @property
    def ca_file(self) -> Path:
        """The throwaway CA's certificate a client of the secured broker trusts."""
        return self.secure_dir.ca_file

    def password_file(self, principal: str) -> Path:
        """Where the secured broker's password of ``principal`` (admin, worker, agent, sink) is."""
        return self.secure_dir.password_file(principal)

    def client_kwargs(self, principal: str) -> dict[str, Any]:
        """aiokafka client keyword arguments (all but ``bootstrap_servers``) logging in as ``principal``."""
        if not self.secure:
            raise KafkaLocalError("the plaintext broker has no principals; use LocalKafka(..., secure=True)")
        return self.secure_dir.client_kwargs(principal)

    def connection(self, principal: str = "admin") -> Bootstrap:
        """How to reach this broker: as ``principal`` when secured, else its plain bootstrap."""
        return self.secure_dir.connection(self.bootstrap, principal) if self.secure else self.bootstrap

    def started_secure(self) -> bool:
        """Whether this port's broker was last started secured (its properties file says so)."""
        try:
            return "\nsasl.enabled.mechanisms=" in self.config_path.read_text()
        except OSError:
            return False

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
        if self.secure and not (self.ca_file.exists() and self.password_file("admin").exists()):
            return False  # never started secured: nothing to log in with
        with quiet_client_logs():  # it logs loading the CA and each login
            return asyncio.run(broker_ready(self.connection(), timeout_s=3.0))

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

    def apply_acls(self, rules: list[Acl] | None = None) -> None:
        """Add ``rules`` (default: this broker's ``acls``) to the running secured broker, as admin."""
        rules = rules if rules is not None else self.acls if self.acls is not None else acl_rules(Topics())
        with quiet_client_logs():
            asyncio.run(apply_acls(self.bootstrap, rules, self.client_kwargs("admin")))
        log.info("event=kafka_acls_applied rules=%d", len(rules))

    def _write_config(self) -> Path:
        """The common settings plus the listeners of this mode; 0600, as the secured one holds a password."""
        mode = "secure" if self.secure else "plaintext"
        template = (DEPLOY_DIR / "server.properties.template").read_text()
        template += (DEPLOY_DIR / f"server-{mode}.properties.template").read_text()
        values = {"port": self.port, "controller_port": self.controller_port, "data_dir": self.data_dir}
        if self.secure:
            values.update(self.secure_dir.template_values())
        write_private(self.config_path, template.format(**values))
        return self.config_path

    def _format(self, java: str, classpath: str, config: Path) -> None:
        """Format the data dir; with ``secure``, with every principal's SCRAM credential.

        The arguments go in a 0600 argument file (``java @file``), so the passwords never show in
        the process list; the file is deleted right after.
        """
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # One argument: a base64 id may start with "-", which argparse takes for an option.
        arguments = ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)]
        if self.secure:
            arguments += self.secure_dir.scram_arguments()
        argfile = self.base / f"format-{self.port}.args"
        write_private(argfile, java_argfile(arguments))
        try:
            fmt = subprocess.run([java, "-cp", classpath, f"@{argfile}"], capture_output=True, text=True, check=False)
        finally:
            argfile.unlink(missing_ok=True)
        if fmt.returncode != 0:
            output = fmt.stdout + fmt.stderr
            for password in self.secure_dir.passwords() if self.secure else []:
                output = output.replace(password, "***")
            raise KafkaLocalError(f"formatting {self.data_dir} failed:\n{output}")

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise KafkaLocalError(
                "Java 17+ ('java') is not on PATH; install a JDK or set "
                "KAFKA_BOOTSTRAP_SERVERS to use an existing broker"
            )
        return java

    def start(self, timeout_s: float = 120.0) -> bool:
        """Start the broker unless it already answers; returns True if this call started it.

        A secured broker gets its ACLs (again: adding an existing one changes nothing) before
        this returns, whoever started it.
        """
        started = self._start(timeout_s)
        if self.secure:
            self.apply_acls()
        return started

    def _start(self, timeout_s: float) -> bool:
        if self.is_ready():
            return False
        running = self.pid()
        if running is not None:
            if self.started_secure() != self.secure:
                raise KafkaLocalError(
                    f"a {'secured' if self.started_secure() else 'plaintext'} broker already runs on port "
                    f"{self.port} (pid {running}); stop it first: fleetpulse kafka stop --port {self.port}"
                )
            log.info("event=kafka_starting pid=%d (waiting for it)", running)
            asyncio.run(wait_for_broker(self.connection(), timeout_s))
            return False
        self.base.mkdir(parents=True, exist_ok=True)
        libs = self.resolve_jars()
        formatted = (self.data_dir / "meta.properties").exists()
        if self.secure:
            try:
                self.secure_dir.prepare(formatted)
            except KafkaSecureError as exc:
                raise KafkaLocalError(str(exc)) from exc
        config = self._write_config()
        java = self._java()
        classpath = f"{libs}/*"
        if not formatted:
            self._format(java, classpath, config)
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
