"""Bad input, the agent config: whatever the TOML file and the environment hold, loading raises
nothing but ConfigError, every problem names the file (or variable) and key, and a secret's
value never appears in one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.config import ConfigError, load_agent_config
from tests.bad_input import hostile_text, mutations

SECRET = "S3cr3t-never-shown"
VALID: dict[str, Any] = {
    "agent": {"region": "eu", "interval_s": 10, "host_id": "web-1", "labels": {"role": "web"}, "tcp_states": True},
    "kafka": {
        "bootstrap_servers": "k:9092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": "agent",
        "sasl_password": SECRET,
        "request_timeout_s": 10.0,
    },
    "spool": {"max_bytes": 67108864, "segment_bytes": 4194304},
    "processes": {"top_n": 5, "groups": [{"name": "nginx", "process_name": "nginx", "cmdline_regex": "^nginx"}]},
    "logs": [{"paths": ["/var/log/*.log"], "rules": [{"name": "oom", "pattern": "Out of memory"}]}],
    "witness": {"timeout_s": 1.0, "peers": [{"host_id": "web-2", "address": "10.0.0.2:22"}]},
}
# TOML holds 64-bit integers, floats (nan and inf too), strings, booleans, arrays and tables
_toml_scalar = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
    hostile_text.filter(lambda t: "\ud800" not in t),
    st.just(SECRET),
)
_toml_value = st.recursive(
    _toml_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), inner, max_size=3)
    ),
    max_leaves=6,
)


def _toml(value: Any) -> str:
    """``value`` as TOML inline text (the subset the strategies produce)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _document(doc: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(section)} = {_toml(table)}" for section, table in doc.items()) + "\n"


def _load(path: Path, env: dict[str, str], secret_given: bool) -> None:
    """Load; with ``secret_given`` (SECRET is the configured password) it must appear in no problem."""
    try:
        config = load_agent_config(path, env=env)
    except ConfigError as exc:
        for problem in exc.problems:
            assert problem.startswith(f"{path}: "), problem
            assert not secret_given or SECRET not in problem, problem
    except Exception as exc:  # the finding
        raise AssertionError(f"{type(exc).__name__} escaped the config loader: {exc!r}"[:500]) from exc
    else:
        assert 0.1 <= config.interval_s <= 3600 and 0.1 <= config.kafka.request_timeout_s <= 3600
        assert "sasl_password" not in repr(config)  # the field is out of the repr, whatever it holds


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(sorted(VALID)).flatmap(
        lambda section: st.tuples(
            st.just(section),
            mutations(VALID[section], _toml_value) if isinstance(VALID[section], dict) else _toml_value,
        )
    )
)
def test_any_section_with_keys_replaced_by_anything_is_a_config_error_naming_the_file(
    tmp_path: Path, change: tuple[str, Any]
) -> None:
    section, table = change
    path = tmp_path / "agent.toml"
    doc = {**VALID, section: table}
    path.write_text(_document(doc))
    kafka = doc["kafka"]
    _load(path, {}, isinstance(kafka, dict) and kafka.get("sasl_password") == SECRET)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "FLEETPULSE_AGENT_INTERVAL_S",
                "FLEETPULSE_AGENT_REGION",
                "FLEETPULSE_AGENT_TCP_STATES",
                "FLEETPULSE_KAFKA_REQUEST_TIMEOUT_S",
                "FLEETPULSE_KAFKA_SASL_PASSWORD",
                "FLEETPULSE_KAFKA_SECURITY_PROTOCOL",
                "FLEETPULSE_SPOOL_MAX_BYTES",
                "FLEETPULSE_WITNESS_TIMEOUT_S",
                "KAFKA_BOOTSTRAP_SERVERS",
            ]
        ),
        st.one_of(
            st.text(max_size=30).filter(lambda t: "\x00" not in t), st.sampled_from(["nan", "inf", "-5", SECRET])
        ),
        max_size=4,
    )
)
def test_any_environment_override_is_a_config_error_naming_the_variable(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(_document(VALID))
    _load(path, env, env.get("FLEETPULSE_KAFKA_SASL_PASSWORD", SECRET) == SECRET)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="[]=.\"'#{}, \nabc_0123456789-+eEinfa", max_size=200))
def test_arbitrary_toml_ish_text_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    _load(path, {}, False)
