"""Agent configuration: defaults, the sample file, environment overrides, errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import ConfigError, load_agent_config

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agent.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_agent_config(path, env=env or {})
    return info.value.problems


def test_defaults_need_no_file() -> None:
    config = load_agent_config(None, env={})
    assert config.interval_s == 10.0 and config.region == "local" and config.host_id
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092" and config.kafka.security_protocol == "PLAINTEXT"


def test_the_sample_file_is_valid() -> None:
    config = load_agent_config(SAMPLE, env={})
    assert config.state_dir == Path("/var/lib/fleetpulse")
    assert config.spool.max_bytes == 64 * 1024 * 1024


def test_groups_and_log_sources_are_built(tmp_path: Path) -> None:
    config = load_agent_config(
        write(
            tmp_path,
            """
[agent]
region = "eu-west"
labels = { role = "web" }
[processes]
top_n = 3
[[processes.groups]]
name = "nginx"
process_name = "nginx"
[[logs]]
paths = ["/var/log/app/*.log"]
[[logs.rules]]
name = "oom"
pattern = "Out of memory"
severity = "critical"
""",
        ),
        env={},
    )
    assert config.region == "eu-west" and config.labels == {"role": "web"} and config.top_n == 3
    assert [g.name for g in config.groups] == ["nginx"]
    assert config.logs[0].paths == ["/var/log/app/*.log"] and config.logs[0].rules[0].name == "oom"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[agent]\nregion = "a"\ninterval_s = 10\n[kafka]\nbootstrap_servers = "k1:9092"\n')
    env = {"FLEETPULSE_AGENT_REGION": "b", "FLEETPULSE_AGENT_INTERVAL_S": "2.5", "KAFKA_BOOTSTRAP_SERVERS": "k2:9092"}
    config = load_agent_config(path, env=env)
    assert (config.region, config.interval_s, config.kafka.bootstrap_servers) == ("b", 2.5, "k2:9092")
    env["FLEETPULSE_KAFKA_BOOTSTRAP_SERVERS"] = "k3:9092"  # the specific variable wins
    assert load_agent_config(path, env=env).kafka.bootstrap_servers == "k3:9092"


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[agent]
interval_s = 0
colour = "blue"
[kafka]
security_protocol = "SASL_SSL"
ssl_cafile = "/nonexistent/ca.pem"
[spool]
max_bytes = 1000
[[processes.groups]]
name = "x"
[[logs]]
paths = []
[nonsense]
""",
    )
    found = problems(path)
    p = str(path)
    assert (
        f"{p}: [agent] colour: unknown key (allowed: host_id, interval_s, per_core_cpu, region, state_dir, tcp_states)"
        in found
    )
    assert f"{p}: [agent] interval_s: must be between 0.1 and 3600 seconds, got 0" in found
    assert f"{p}: [kafka] sasl_username: required with security_protocol = SASL_SSL" in found
    assert f"{p}: [kafka] ssl_cafile: no such file: /nonexistent/ca.pem" in found
    assert f"{p}: [spool] max_bytes: must be at least two segments (8388608), got 1000" in found
    assert any(x.startswith(f"{p}: [[processes.groups]] #1:") for x in found)
    assert f"{p}: [[logs]] #1 paths: must be a non-empty list of file paths or globs" in found
    assert any(x.startswith(f"{p}: [nonsense]: unknown section") for x in found)


def test_bad_environment_values_name_the_variable(tmp_path: Path) -> None:
    found = problems(
        write(tmp_path, ""), env={"FLEETPULSE_AGENT_INTERVAL_S": "soon", "FLEETPULSE_AGENT_TCP_STATES": "maybe"}
    )
    assert f"{tmp_path / 'agent.toml'}: FLEETPULSE_AGENT_INTERVAL_S: expected float, got 'soon'" in found
    assert f"{tmp_path / 'agent.toml'}: FLEETPULSE_AGENT_TCP_STATES: expected true/false, got 'maybe'" in found


def test_sasl_password_file_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = load_agent_config(
        write(
            tmp_path,
            f'[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "SCRAM-SHA-512"\n'
            f'sasl_username = "agent"\nsasl_password_file = "{secret}"\n',
        ),
        env={},
    )
    options = config.kafka.client_options()
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("agent", "s3cret")


def test_bad_log_regex_is_reported_for_its_rule(tmp_path: Path) -> None:
    found = problems(
        write(
            tmp_path,
            '[[logs]]\npaths = ["/tmp/x.log"]\n[[logs.rules]]\nname = "bad"\npattern = "(unclosed"\nregex = true\n',
        )
    )
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'agent.toml'}: [[logs]] #1 rules #1:")
    assert "bad" in found[0]


def test_unreadable_or_invalid_toml_is_one_clear_error(tmp_path: Path) -> None:
    assert problems(tmp_path / "missing.toml")[0].startswith(f"{tmp_path / 'missing.toml'}: cannot read")
    assert problems(write(tmp_path, "[agent\n"))[0].startswith(f"{tmp_path / 'agent.toml'}: invalid TOML")


# --- secrets and timeouts (security review) ---------------------------------------------------


def test_a_mistyped_sasl_password_is_not_echoed_in_the_error(tmp_path: Path) -> None:
    text = '[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_username = "a"\nsasl_password = 31337424242\n'
    path = write(tmp_path, text)
    found = problems(path)
    assert f"{path}: [kafka] sasl_password: expected str, got int ***" in found
    assert not any("31337424242" in p for p in found)
    env = {"FLEETPULSE_KAFKA_SASL_PASSWORD": "hunter2-secret", "FLEETPULSE_KAFKA_REQUEST_TIMEOUT_S": "hunter2-secret"}
    from_env = problems(write(tmp_path, ""), env=env)
    assert from_env and not any("hunter2-secret" in p for p in from_env), from_env


def test_a_secret_put_under_another_key_is_redacted_in_every_error(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t-from-file\n")
    path = write(
        tmp_path,
        f'[kafka]\nsasl_mechanism = "s3cr3t-from-file"\nsasl_password_file = "{secret}"\n'
        'security_protocol = "SASL_SSL"\nsasl_username = "agent"\n',
    )
    found = problems(path)
    assert any("sasl_mechanism" in p and "got '***'" in p for p in found), found
    assert not any("s3cr3t" in p for p in found)


def test_the_kafka_password_never_appears_in_a_repr() -> None:
    config = load_agent_config(None, env={"FLEETPULSE_KAFKA_SASL_PASSWORD": "hunter2-secret"})
    assert config.kafka.sasl_password == "hunter2-secret"
    assert "hunter2-secret" not in repr(config) and "hunter2-secret" not in repr(config.kafka)


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "1e9"])
def test_request_timeout_s_must_be_positive_and_bounded(tmp_path: Path, value: str) -> None:
    """``request_timeout_s = -5`` used to pass ``--check-config``."""
    in_file = problems(write(tmp_path, f"[kafka]\nrequest_timeout_s = {value}\n"))
    assert [p for p in in_file if "[kafka] request_timeout_s: must be between 0.1 and 3600 seconds" in p], in_file
    from_env = problems(write(tmp_path, ""), env={"FLEETPULSE_KAFKA_REQUEST_TIMEOUT_S": value})
    assert [p for p in from_env if "request_timeout_s: must be between" in p], from_env


def test_check_config_refuses_a_negative_request_timeout(tmp_path: Path) -> None:
    from tests.cli import fleetpulse

    path = write(tmp_path, "[kafka]\nrequest_timeout_s = -5\n")
    done = fleetpulse("agent", "--config", str(path), "--check-config")
    assert done.returncode == 2 and "[kafka] request_timeout_s: must be between 0.1 and 3600 seconds" in done.stderr


def test_process_groups_that_are_not_an_array_of_tables_are_a_config_error(tmp_path: Path) -> None:
    """Found by the bad-input suite: ``groups = 0`` raised TypeError out of the loader."""
    path = write(tmp_path, "[processes]\ngroups = 0\n")
    assert problems(path) == [f"{path}: [[processes.groups]]: must be an array of tables ([[processes.groups]])"]


def test_proc_and_sys_log_paths_are_refused_with_a_reason_naming_file_and_key(tmp_path: Path) -> None:
    rule = '[[logs.rules]]\nname = "any"\npattern = "x"\n'
    found = problems(
        write(
            tmp_path,
            f'[[logs]]\npaths = ["/var/log/ok.log", "/proc/self/status"]\n{rule}'
            f'[[logs]]\npaths = ["/sys/kernel/**/*"]\n{rule}',
        )
    )
    p = tmp_path / "agent.toml"
    assert len(found) == 2
    assert found[0].startswith(f"{p}: [[logs]] #1 paths #2: refused: /proc/self/status is under /proc")
    assert "counted again on every poll" in found[0]
    assert found[1].startswith(f"{p}: [[logs]] #2 paths #1: refused: /sys/kernel/**/* is under /sys")


def test_link_settings_of_a_log_source_are_built_and_checked(tmp_path: Path) -> None:
    rule = '[[logs.rules]]\nname = "any"\npattern = "x"\n'
    config = load_agent_config(
        write(
            tmp_path,
            f'[[logs]]\npaths = ["/srv/app/*.log"]\nfollow_symlinks = true\nallowed_roots = ["/srv/releases"]\n{rule}',
        ),
        env={},
    )
    assert config.logs[0].follow_symlinks and config.logs[0].allowed_roots == ("/srv/releases",)
    assert (
        not load_agent_config(write(tmp_path, f'[[logs]]\npaths = ["/a.log"]\n{rule}'), env={}).logs[0].follow_symlinks
    )
    cases = {
        'follow_symlinks = "yes"': "[[logs]] #1 follow_symlinks: expected true or false, got str 'yes'",
        'allowed_roots = ["/srv"]': "[[logs]] #1 allowed_roots: has no effect unless follow_symlinks = true",
        'follow_symlinks = true\nallowed_roots = ["rel"]': "[[logs]] #1 allowed_roots: must be a list of absolute",
        'follow_symlinks = true\nallowed_roots = ["/proc"]': "[[logs]] #1 allowed_roots #1: refused: /proc is a kernel",
        'follow_symlinks = true\nallowed_roots = ["/"]': "[[logs]] #1 allowed_roots #1: refused: the whole file system",
    }
    for text, message in cases.items():
        found = problems(write(tmp_path, f'[[logs]]\npaths = ["/srv/app/*.log"]\n{text}\n{rule}'))
        assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'agent.toml'}: {message}"), (text, found)


def test_a_mistyped_secret_is_named_but_never_shown(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "[kafka]\nsasl_password = 271828182845\nsasl_username = 123\n"))
    assert f"{tmp_path / 'agent.toml'}: [kafka] sasl_password: expected str, got int ***" in found
    assert not any("271828182845" in line for line in found)
    assert any("sasl_username: expected str, got int 123" in line for line in found)  # not a secret
