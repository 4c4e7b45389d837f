"""deploy/grafana/switchboard.json: a Grafana dashboard of the services, their broker and the workstation gateways.
Every panel's query is valid PromQL (promtool checks it as a recording rule) and reads only series the running
services and the broker's Prometheus plugin export (the gateways' panels: the browser suite's gateway), so no panel
silently stays empty."""

import json
import subprocess

import yaml

from metric_queries import DASHBOARD, dashboard_panels, dashboard_queries, reads_gateway, series_read
from test_alerts import exported_series, promtool


def test_the_dashboard_is_one_grafana_can_import():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "switchboard"
    every = dashboard["panels"]
    assert len({panel["id"] for panel in every}) == len(every), "panel ids are unique"
    # Prometheus is chosen on import: every query asks the dashboard's data source variable.
    assert [variable["name"] for variable in dashboard["templating"]["list"]] == ["datasource"]
    for panel in dashboard_panels():
        assert panel["description"], f"{panel['title']}: says what it shows"
        assert panel["targets"], f"{panel['title']}: has a query"
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']}: within the dashboard's 24 columns"


def test_promtool_accepts_every_query(tmp_path):
    rules = tmp_path / "dashboard-queries.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{number}", "expr": expression}
        for number, (_, expression) in enumerate(dashboard_queries())
    ]}]}))
    checked = subprocess.run([promtool(), "check", "rules", str(rules)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    assert checked.returncode == 0, checked.stdout


def test_every_series_the_dashboard_reads_is_exported(services, broker):
    """The gateways' panels are checked by the browser suite, which runs gateways."""
    exported = exported_series(services, broker)
    read = set()
    for title, expression in dashboard_queries():
        if not reads_gateway(expression):
            read |= series_read(title, expression, exported)
    assert {"switchboard_journal_records_read_total", "switchboard_stage_seconds_bucket",
            "rabbitmq_queue_messages"} <= read
