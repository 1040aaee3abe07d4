"""The command line as a person uses it (subprocesses, no broker)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from collector.contract import Heartbeat, MetricBatch, ProcessSummary, decode
from tests.cli import fleetpulse


def test_agent_once_stdout_prints_a_valid_batch_without_kafka() -> None:
    done = fleetpulse(
        "agent",
        "--once",
        "--stdout",
        "--heartbeat",
        "--region",
        "r1",
        "--label",
        "role=web",
        "--bootstrap",
        "127.0.0.1:1",
    )
    assert done.returncode == 0, done.stderr
    events = [decode(line.encode()) for line in done.stdout.splitlines()]
    assert [e.TYPE for e in events] == ["metric_batch", "process_summary", "heartbeat"]
    batch, summary, beat = events
    assert isinstance(batch, MetricBatch) and isinstance(summary, ProcessSummary) and isinstance(beat, Heartbeat)
    assert summary.total > 0 and summary.top_cpu
    assert batch.region == "r1" and batch.labels == {"role": "web"}
    assert "cpu_pct" in batch.metrics
    assert beat.seq == 1 and beat.boot_id and beat.agent_rss_bytes > 0


def test_policy_validate_exits_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    when: cpu > ninety\n")
    done = fleetpulse("policy", "validate", str(bad))
    assert done.returncode == 2
    assert f"{bad}:3: rule 'x': the threshold in 'when' must be a number, got 'ninety'" in done.stderr
    assert done.stdout == ""


def test_policy_validate_lists_valid_rules() -> None:
    done = fleetpulse("policy", "validate", "policies/examples")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        "policies/examples/hosts.yaml:3: metric cpu_high cpu_pct avg/120s max.warning=85 max.critical=95 for=60s"
        in lines
    )
    assert "policies/examples/processes.yaml:18: schedule nightly_backup backup '0 2 * * *' within=3600s" in lines
    assert "policies/examples/downcheck.yaml:4: downcheck edge_sites missed=3 late=1.5 grace=5s" in " ".join(lines)
    assert lines[-1].startswith("16 rule(s) valid in 5 file(s), version ")


def test_every_subcommand_has_help() -> None:
    for command in ("agent", "worker", "sink", "alerts", "query", "kafka", "policy", "demo"):
        done = fleetpulse(command, "--help")
        assert done.returncode == 0 and "usage: fleetpulse" in done.stdout, command


def test_check_config_accepts_the_sample_and_names_file_and_key_on_errors(tmp_path: Path) -> None:
    done = fleetpulse("agent", "--config", "deploy/agent.toml", "--check-config")
    assert done.returncode == 0, done.stderr
    assert "deploy/agent.toml: valid." in done.stdout
    bad = tmp_path / "agent.toml"
    bad.write_text('[agent]\ninterval_s = "fast"\n[kafka]\nsecurity_protocol = "TLS"\n')
    done = fleetpulse("agent", "--config", str(bad), "--check-config")
    assert done.returncode == 2
    assert f"{bad}: [agent] interval_s: expected float, got str 'fast'" in done.stderr
    assert f"{bad}: [kafka] security_protocol: must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL" in done.stderr


def test_check_config_refuses_a_proc_log_path_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('[[logs]]\npaths = ["/proc/kmsg"]\n[[logs.rules]]\nname = "oom"\npattern = "Out of memory"\n')
    done = fleetpulse("agent", "--config", str(bad), "--check-config")
    assert done.returncode == 2
    assert f"{bad}: [[logs]] #1 paths #1: refused: /proc/kmsg is under /proc, a kernel pseudo" in done.stderr


def test_bad_label_is_a_clear_error() -> None:
    done = fleetpulse("agent", "--once", "--stdout", "--label", "novalue")
    assert done.returncode != 0
    assert "--label expects key=value" in done.stderr


def test_agent_without_a_broker_keeps_collecting_and_stops_promptly_on_sigterm(tmp_path: Path) -> None:
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetpulse.cli",
            "agent",
            "--bootstrap",
            "127.0.0.1:1",
            "--interval",
            "0.5",
            "--state-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(4)  # several cycles while nothing can be sent
    agent.send_signal(signal.SIGTERM)
    out, _ = agent.communicate(timeout=30)
    assert agent.returncode == 0, out
    stopped = next(line for line in out.splitlines() if "event=agent_stopped" in line)
    cycles = int(stopped.split("cycles=")[1].split()[0])
    pending = int(stopped.split("pending=")[1].split()[0])
    assert cycles >= 4 and pending >= cycles * 3, stopped  # batch, process summary, heartbeat per cycle
    assert "event=broker_unreachable" in out


def test_simulate_offline_plays_a_scenario_file_without_kafka_and_judges_it(tmp_path: Path) -> None:
    scenario = tmp_path / "crash.yaml"
    scenario.write_text(
        "name: crash\nhosts: 12\nregions: 2\ninterval: 5\nduration: 200\nmetrics: false\n"
        "faults:\n  - at: 40\n    crash: [r1-h001]\n"
    )
    done = fleetpulse("simulate", str(scenario), "--offline", "--bootstrap", "127.0.0.1:1")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    pages = [line for line in lines if "firing" in line]
    assert len(pages) == 1 and "host_down:r1-h001" in pages[0], lines
    assert lines[-1].startswith("verdict: pass")
