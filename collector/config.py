"""The agent's settings: one TOML file, environment overrides, validated at start.

Every problem is reported with the file and the key (``agent.toml: [kafka] security_protocol:
must be one of ...``), all at once, so an operator fixes the file in one pass.
A sample with every key documented is ``deploy/agent.toml``.

Environment overrides, applied after the file: ``FLEETPULSE_<SECTION>_<KEY>`` for the
scalar keys of ``[agent]``, ``[kafka]`` and ``[spool]`` (e.g. ``FLEETPULSE_AGENT_REGION``,
``FLEETPULSE_KAFKA_SASL_PASSWORD``), and ``KAFKA_BOOTSTRAP_SERVERS`` like every process.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.connection import SASL_MECHANISMS, SECURITY_PROTOCOLS, KafkaConnection
from collector.contract import DEFAULT_TOPIC_PREFIX
from collector.log_paths import pseudo_path_reason, split_pattern
from collector.log_tail import LogRule, LogSource
from collector.problems import ProblemsError
from collector.processes import GroupSelector
from collector.witness import Peer, parse_address

# Keys whose values are never shown: not in an error, not in a repr.
SECRET_KEYS = frozenset({"sasl_password"})
REDACTED = "***"


class ConfigError(ProblemsError):
    """Invalid agent configuration; ``problems`` lists ``file: [section] key: message`` lines."""


@dataclass(frozen=True)
class KafkaSettings(KafkaConnection):
    """How the agent reaches Kafka (the shared connection settings) and names its topics."""

    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    request_timeout_s: float = 10.0

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (TLS context and SASL when configured)."""
        return {**super().client_options(), "request_timeout_ms": int(self.request_timeout_s * 1000)}


@dataclass(frozen=True)
class SpoolSettings:
    """The on-disk spool used while Kafka is unreachable."""

    max_bytes: int = 64 * 1024 * 1024
    segment_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class WitnessSettings:
    """TCP probes of peer hosts, reported for the down-checker (no peers = off)."""

    peers: list[Peer] = field(default_factory=list)
    timeout_s: float = 2.0
    refresh_s: float = 30.0
    interval_s: float | None = None  # None: the agent's interval_s

    def every_s(self, agent_interval_s: float) -> float:
        """Seconds between probe rounds (resolved late, so a ``--interval`` flag applies too)."""
        return self.interval_s if self.interval_s is not None else agent_interval_s


@dataclass(frozen=True)
class AgentConfig:
    """Everything one agent process needs."""

    host_id: str = field(default_factory=socket.gethostname)
    region: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    interval_s: float = 10.0
    state_dir: Path = Path("/var/lib/fleetpulse")
    per_core_cpu: bool = False
    tcp_states: bool = False
    top_n: int = 5
    groups: list[GroupSelector] = field(default_factory=list)
    logs: list[LogSource] = field(default_factory=list)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    witness: WitnessSettings = field(default_factory=WitnessSettings)
    source: str = "<defaults>"


_AGENT_KEYS = {
    "host_id": str,
    "region": str,
    "interval_s": float,
    "state_dir": str,
    "per_core_cpu": bool,
    "tcp_states": bool,
}
_KAFKA_KEYS = {
    "bootstrap_servers": str,
    "topic_prefix": str,
    "security_protocol": str,
    "ssl_cafile": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "sasl_mechanism": str,
    "sasl_username": str,
    "sasl_password": str,
    "sasl_password_file": str,
    "request_timeout_s": float,
}
_SPOOL_KEYS = {"max_bytes": int, "segment_bytes": int}
_GROUP_KEYS = {"name", "process_name", "exe", "cmdline_regex", "user", "pidfile", "systemd_unit"}
_RULE_KEYS = {"name", "pattern", "regex", "ignore_case", "severity"}
_LOG_KEYS = ("allowed_roots", "follow_symlinks", "paths", "rules")
_WITNESS_KEYS = {"timeout_s": float, "refresh_s": float, "interval_s": float}
_WITNESS_LIMITS_S = {"timeout_s": (0.01, 60.0), "refresh_s": (1.0, 3600.0), "interval_s": (0.1, 3600.0)}
_KAFKA_LIMITS_S = {"request_timeout_s": (0.1, 3600.0)}
_PEER_KEYS = {"host_id", "address"}


def load_agent_config(path: str | Path | None, env: dict[str, str] | None = None) -> AgentConfig:
    """Read ``path`` (None = defaults only), apply environment overrides, validate."""
    env = dict(os.environ) if env is None else env
    origin = str(path) if path is not None else "<defaults>"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{origin}: cannot read: {exc.strerror or exc}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{origin}: invalid TOML: {exc}"]) from None
    return _Validator(origin, raw, env).build()


class _Validator:
    def __init__(self, origin: str, raw: dict[str, Any], env: dict[str, str]) -> None:
        self.origin, self.raw, self.env = origin, raw, env
        self.problems: list[str] = []
        self.read_secrets: list[str] = []  # from secret files

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.origin}: {where}: {message}")

    def redacted(self) -> list[str]:
        """The problems with every secret value given replaced, whichever key it was put under."""
        secrets = self.secrets()
        out = []
        for problem in self.problems:
            for secret in secrets:
                problem = problem.replace(secret, REDACTED)
            out.append(problem)
        return out

    def secrets(self) -> list[str]:
        """The secret values given (file and environment), longest first; short ones would garble text."""
        found: list[Any] = list(self.read_secrets)
        for key in SECRET_KEYS:
            table = self.raw.get("kafka")
            if isinstance(table, dict):
                found.append(table.get(key))
            found.append(self.env.get(f"FLEETPULSE_KAFKA_{key.upper()}"))
        texts = {str(v) for v in found if v is not None and not isinstance(v, bool) and len(str(v)) >= 4}
        return sorted(texts, key=len, reverse=True)

    def section(self, name: str, keys: Mapping[str, type]) -> dict[str, Any]:
        """Typed scalar keys of one section, with environment overrides applied."""
        table = self.raw.get(name, {})
        if not isinstance(table, dict):
            self.problem(f"[{name}]", "must be a table")
            return {}
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key == "labels" and name == "agent":
                continue
            if key not in keys:
                self.problem(f"[{name}] {key}", f"unknown key (allowed: {', '.join(sorted(keys))})")
                continue
            out[key] = self.typed(f"[{name}] {key}", value, keys[key], secret=key in SECRET_KEYS)
        for key, typ in keys.items():
            env_name = f"FLEETPULSE_{name.upper()}_{key.upper()}"
            if env_name in self.env:
                out[key] = self.typed(env_name, self.env[env_name], typ, from_env=True, secret=key in SECRET_KEYS)
        return {k: v for k, v in out.items() if v is not None}

    def entry_ok(self, where: str, raw: Any, allowed: set[str]) -> bool:
        """An array-of-tables entry: a table whose keys are all known (else one problem, False)."""
        if not isinstance(raw, dict):
            self.problem(where, "must be a table")
            return False
        unknown = sorted(set(raw) - allowed)
        if unknown:
            self.problem(f"{where} {unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
            return False
        return True

    def typed(self, where: str, value: Any, typ: type, from_env: bool = False, secret: bool = False) -> Any:
        """``value`` as ``typ``, else a problem quoting it (``***`` for a secret key's value)."""
        if from_env and typ is not str:
            text = str(value).strip()
            shown = REDACTED if secret else repr(text)
            if typ is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                self.problem(where, f"expected true/false, got {shown}")
                return None
            try:
                return typ(text)
            except ValueError:
                self.problem(where, f"expected {typ.__name__}, got {shown}")
                return None
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            shown = REDACTED if secret else repr(value)
            self.problem(where, f"expected {typ.__name__}, got {type(value).__name__} {shown}")
            return None
        return value

    def build(self) -> AgentConfig:
        known = {"agent", "kafka", "spool", "processes", "logs", "witness"}
        for key in self.raw:
            if key not in known:
                self.problem(f"[{key}]", f"unknown section (allowed: {', '.join(sorted(known))})")
        agent = self.section("agent", _AGENT_KEYS)
        kafka = self.section("kafka", _KAFKA_KEYS)
        spool = self.section("spool", _SPOOL_KEYS)
        if "KAFKA_BOOTSTRAP_SERVERS" in self.env and "FLEETPULSE_KAFKA_BOOTSTRAP_SERVERS" not in self.env:
            kafka["bootstrap_servers"] = self.env["KAFKA_BOOTSTRAP_SERVERS"]
        labels = self.labels()
        self.check_agent(agent)
        self.check_kafka(kafka)
        self.check_spool(spool)
        top_n, groups = self.processes()
        logs = self.logs()
        witness = self.witness(agent)
        if self.problems:
            raise ConfigError(self.redacted())
        if "state_dir" in agent:
            agent["state_dir"] = Path(agent["state_dir"])
        return AgentConfig(
            **agent,
            labels=labels,
            top_n=top_n,
            groups=groups,
            logs=logs,
            kafka=KafkaSettings(**kafka),
            spool=SpoolSettings(**spool),
            witness=witness,
            source=self.origin,
        )

    def labels(self) -> dict[str, str]:
        labels = self.raw.get("agent", {}).get("labels", {}) if isinstance(self.raw.get("agent"), dict) else {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            self.problem("[agent] labels", 'must be a table of strings, e.g. labels = { role = "web" }')
            return {}
        return dict(labels)

    def check_agent(self, agent: dict[str, Any]) -> None:
        if "interval_s" in agent and not 0.1 <= agent["interval_s"] <= 3600:
            self.problem("[agent] interval_s", f"must be between 0.1 and 3600 seconds, got {agent['interval_s']:g}")
        for key in ("host_id", "region"):
            if key in agent and not agent[key].strip():
                self.problem(f"[agent] {key}", "must not be empty")

    def check_kafka(self, kafka: dict[str, Any]) -> None:
        protocol = kafka.get("security_protocol", "PLAINTEXT")
        if protocol not in SECURITY_PROTOCOLS:
            self.problem(
                "[kafka] security_protocol", f"must be one of {', '.join(SECURITY_PROTOCOLS)}, got {protocol!r}"
            )
        mechanism = kafka.get("sasl_mechanism", "PLAIN")
        if mechanism not in SASL_MECHANISMS:
            self.problem("[kafka] sasl_mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r}")
        password_file = kafka.pop("sasl_password_file", None)
        if password_file:
            try:
                kafka["sasl_password"] = Path(password_file).read_text(encoding="utf-8").strip()
                self.read_secrets.append(kafka["sasl_password"])
            except OSError as exc:
                self.problem("[kafka] sasl_password_file", f"cannot read {password_file}: {exc.strerror or exc}")
        if str(protocol).startswith("SASL") and not kafka.get("sasl_username"):
            self.problem("[kafka] sasl_username", f"required with security_protocol = {protocol}")
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if kafka.get(key) and not Path(kafka[key]).is_file():
                self.problem(f"[kafka] {key}", f"no such file: {kafka[key]}")
        if "bootstrap_servers" in kafka and not kafka["bootstrap_servers"].strip():
            self.problem("[kafka] bootstrap_servers", "must not be empty")
        for key, (lo, hi) in _KAFKA_LIMITS_S.items():
            if key in kafka and not lo <= kafka[key] <= hi:  # NaN fails this too
                self.problem(f"[kafka] {key}", f"must be between {lo:g} and {hi:g} seconds, got {kafka[key]:g}")

    def check_spool(self, spool: dict[str, Any]) -> None:
        max_bytes = spool.get("max_bytes", SpoolSettings.max_bytes)
        segment = spool.get("segment_bytes", SpoolSettings.segment_bytes)
        if segment < 4096:
            self.problem("[spool] segment_bytes", f"must be at least 4096, got {segment}")
        if max_bytes < segment * 2:
            self.problem("[spool] max_bytes", f"must be at least two segments ({segment * 2}), got {max_bytes}")

    def processes(self) -> tuple[int, list[GroupSelector]]:
        table = self.raw.get("processes", {})
        if not isinstance(table, dict):
            self.problem("[processes]", "must be a table")
            return 5, []
        top_n = table.get("top_n", 5)
        if isinstance(top_n, bool) or not isinstance(top_n, int) or not 0 <= top_n <= 100:
            self.problem("[processes] top_n", f"must be an integer 0..100, got {top_n!r}")
            top_n = 5
        for key in table:
            if key not in ("top_n", "groups"):
                self.problem(f"[processes] {key}", "unknown key (allowed: groups, top_n)")
        groups: list[GroupSelector] = []
        names: set[str] = set()
        entries = table.get("groups", [])
        if not isinstance(entries, list):
            self.problem("[[processes.groups]]", "must be an array of tables ([[processes.groups]])")
            entries = []
        for i, raw in enumerate(entries):
            where = f"[[processes.groups]] #{i + 1}"
            if not self.entry_ok(where, raw, _GROUP_KEYS):
                continue
            if not all(isinstance(v, str) for v in raw.values()):
                self.problem(where, "every value must be a string")
                continue
            if raw.get("name") in names:
                self.problem(f"{where} name", f"group {raw.get('name')!r} is defined twice")
                continue
            try:
                groups.append(GroupSelector(**raw))
                names.add(raw["name"])
            except (TypeError, ValueError) as exc:
                self.problem(where, str(exc))
        return top_n, groups

    def logs(self) -> list[LogSource]:
        entries = self.raw.get("logs", [])
        if not isinstance(entries, list):
            self.problem("[[logs]]", "must be an array of tables ([[logs]])")
            return []
        sources: list[LogSource] = []
        for i, raw in enumerate(entries):
            where = f"[[logs]] #{i + 1}"
            if not isinstance(raw, dict):
                self.problem(where, "must be a table")
                continue
            unknown = sorted(set(raw) - set(_LOG_KEYS))
            if unknown:
                self.problem(f"{where} {unknown[0]}", f"unknown key (allowed: {', '.join(_LOG_KEYS)})")
            paths = raw.get("paths")
            if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
                self.problem(f"{where} paths", "must be a non-empty list of file paths or globs")
                continue
            links = self.log_links(where, raw)
            if not self.log_paths_ok(where, paths) or links is None:
                continue
            rules: list[LogRule] = []
            raw_rules = raw.get("rules", [])
            if not isinstance(raw_rules, list) or not raw_rules:
                self.problem(f"{where} rules", "at least one rule is needed ([[logs.rules]])")
                continue
            for j, rule in enumerate(raw_rules):
                if not self.entry_ok(f"{where} rules #{j + 1}", rule, _RULE_KEYS):
                    continue
                try:
                    rules.append(LogRule(**rule))
                except (TypeError, ValueError) as exc:
                    self.problem(f"{where} rules #{j + 1}", str(exc))
            if len(rules) < len(raw_rules):
                continue  # each bad rule was reported above
            try:
                follow, roots = links
                sources.append(LogSource(list(paths), rules, follow_symlinks=follow, allowed_roots=roots))
            except (TypeError, ValueError) as exc:
                self.problem(where, str(exc))
        return sources

    def log_paths_ok(self, where: str, paths: list[str]) -> bool:
        problems = len(self.problems)
        for j, path in enumerate(paths):
            reason = pseudo_path_reason(path)
            if reason is not None:
                self.problem(f"{where} paths #{j + 1}", f"refused: {reason}")
            elif ".." in split_pattern(path)[1]:
                message = f"'..' after a wildcard would leave the source directory: {path}"
                self.problem(f"{where} paths #{j + 1}", message)
        return len(self.problems) == problems

    def log_links(self, where: str, raw: dict[str, Any]) -> tuple[bool, tuple[str, ...]] | None:
        """``(follow_symlinks, allowed_roots)`` of one source, or None after reporting a problem."""
        follow = raw.get("follow_symlinks", False)
        if not isinstance(follow, bool):
            self.problem(f"{where} follow_symlinks", f"expected true or false, got {type(follow).__name__} {follow!r}")
            return None
        roots = raw.get("allowed_roots", [])
        if not isinstance(roots, list) or not all(isinstance(r, str) and os.path.isabs(r) for r in roots):
            self.problem(f"{where} allowed_roots", 'must be a list of absolute directories, e.g. ["/srv/app/logs"]')
            return None
        if roots and not follow:
            self.problem(f"{where} allowed_roots", "has no effect unless follow_symlinks = true")
            return None
        for j, root in enumerate(roots):
            reason = pseudo_path_reason(os.path.join(root, "x"))
            if reason is not None or os.path.normpath(root) == "/":
                why = "the whole file system" if reason is None else f"{root} is a kernel pseudo file system"
                self.problem(f"{where} allowed_roots #{j + 1}", f"refused: {why}; name the directory the logs live in")
                return None
        return follow, tuple(roots)

    def witness(self, agent: dict[str, Any]) -> WitnessSettings:
        table = self.raw.get("witness", {})
        if not isinstance(table, dict):
            self.problem("[witness]", "must be a table")
            return WitnessSettings()
        allowed = ", ".join(sorted({*_WITNESS_KEYS, "peers"}))
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "peers":
                continue
            if key not in _WITNESS_KEYS:
                self.problem(f"[witness] {key}", f"unknown key (allowed: {allowed})")
                continue
            lo, hi = _WITNESS_LIMITS_S[key]
            number = self.typed(f"[witness] {key}", value, _WITNESS_KEYS[key])
            if number is not None and not lo <= number <= hi:
                self.problem(f"[witness] {key}", f"must be between {lo:g} and {hi:g} seconds, got {number:g}")
            elif number is not None:
                values[key] = number
        peers = self.peers(table.get("peers", []), agent.get("host_id") or socket.gethostname())
        settings = WitnessSettings(peers, **values)
        interval_s = settings.every_s(agent.get("interval_s", AgentConfig.interval_s))
        if peers and 0.1 <= interval_s <= 3600 and settings.timeout_s >= interval_s:  # else reported above
            self.problem(
                "[witness] timeout_s",
                f"must be below the probe interval ({interval_s:g} s) so a round ends before the next,"
                f" got {settings.timeout_s:g}",
            )
        return settings

    def peers(self, entries: Any, me: str) -> list[Peer]:
        if not isinstance(entries, list):
            example = 'peers = [{ host_id = "web-2", address = "10.0.2.5:22" }]'
            self.problem("[witness] peers", f"must be a list of tables, e.g. {example}")
            return []
        peers: list[Peer] = []
        for i, raw in enumerate(entries):
            where = f"[witness] peers #{i + 1}"
            if not self.entry_ok(where, raw, _PEER_KEYS):
                continue
            host_id, address = raw.get("host_id"), raw.get("address")
            problems = len(self.problems)
            if not isinstance(host_id, str) or not host_id.strip():
                self.problem(f"{where} host_id", "required: the peer's host id, as its own agent reports it")
            elif any(p.host_id == host_id for p in peers):
                self.problem(f"{where} host_id", f"peer {host_id!r} is listed twice")
            elif host_id == me:
                self.problem(f"{where} host_id", f"{host_id!r} is this agent's own host_id: it cannot witness itself")
            if not isinstance(address, str):
                self.problem(f"{where} address", 'required: "host:port" to connect to, e.g. "10.0.2.5:22"')
            else:
                try:
                    parse_address(address)
                except ValueError as exc:
                    self.problem(f"{where} address", str(exc))
            if len(self.problems) == problems:
                peers.append(Peer(str(host_id), str(address)))
        return peers
