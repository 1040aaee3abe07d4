"""The docker-compose file, the Grafana provisioning and the dashboard parse and agree."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sinks.grafana import DASHBOARD_PATH, render
from sinks.reports import REPORTS, grafana_sql

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_brings_up_the_whole_pipeline() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"kafka", "clickhouse", "worker", "sink", "agent", "grafana"}
    for name in ("worker", "sink", "agent"):
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert services[name]["command"][0] == name
    assert services["sink"]["environment"]["CLICKHOUSE_URL"].startswith("http://")
    assert set(services["sink"]["depends_on"]) == {"kafka", "clickhouse"}
    mounts = services["grafana"]["volumes"]
    for mount in mounts:
        assert (DEPLOY / mount.split(":")[0]).exists(), mount
    assert (DEPLOY / "Dockerfile").exists()


def test_grafana_datasource_is_the_one_the_dashboard_uses() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "clickhouse.yaml").read_text())["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    board = json.loads(DASHBOARD_PATH.read_text())
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": source["type"], "uid": source["uid"]}
    providers = yaml.safe_load((provisioning / "dashboards" / "fleetpulse.yaml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_file_is_generated_from_the_reports() -> None:
    assert DASHBOARD_PATH.read_text() == render(), "run: .venv/bin/python -m sinks.grafana"
    board = json.loads(DASHBOARD_PATH.read_text())
    queries = {p["title"]: p["targets"][0]["rawSql"] for p in board["panels"]}
    assert queries == {r.title: grafana_sql(r) for r in REPORTS}


def test_no_document_or_deployment_puts_a_clickhouse_password_in_a_url_or_on_a_command_line() -> None:
    import re

    from tests.cli import fleetpulse

    root = DEPLOY.parent
    texts = {
        path: path.read_text() for path in [root / "README.md", root / "sinks" / "README.md", *DEPLOY.rglob("*.y*ml")]
    }
    texts[root / "fleetpulse help"] = "".join(fleetpulse(*cmd, "--help").stdout for cmd in ([], ["sink"], ["query"]))
    credentials = re.compile(r"\bhttps?://[^\s/@:]+:[^\s/@]+@")  # http://user:password@host
    for path, text in texts.items():
        assert not credentials.search(text.replace("user:***@", "")), path
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    sink = compose["services"]["sink"]
    assert sink["environment"]["CLICKHOUSE_URL"] == "http://fleetpulse@clickhouse:8123"
    assert "CLICKHOUSE_PASSWORD" in sink["environment"] and not any("password" in a for a in sink["command"])
