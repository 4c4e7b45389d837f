"""deploy/prometheus/switchboard-alerts.yml: promtool accepts the rules and passes their unit tests, and every
metric, label and label value the rules read is one the running services (or the broker's Prometheus plugin)
export, so no rule silently watches a series that does not exist."""

import subprocess

import yaml

from conftest import REPO_ROOT, SERVICES, wait_until
from metric_queries import scrape, series_read

RULES = REPO_ROOT / "deploy/prometheus/switchboard-alerts.yml"
RULE_TESTS = REPO_ROOT / "deploy/prometheus/switchboard-alerts.test.yml"


def promtool():
    return subprocess.run([str(REPO_ROOT / "scripts/promtool.sh")], check=True, stdout=subprocess.PIPE,
                          text=True).stdout.strip()


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    tool = promtool()
    checked = subprocess.run([tool, "check", "rules", str(RULES)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    assert checked.returncode == 0, checked.stdout
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    tested = subprocess.run([tool, "test", "rules", str(RULE_TESTS)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert tested.returncode == 0, tested.stdout
    # Every alert has a unit test that expects it to fire.
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert fired == {rule["alert"] for rule in rules()}


def exported_series(services, broker):
    """Every sample the running services and the broker's Prometheus plugin export, by metric name."""
    exported = {}
    for service in SERVICES:
        port = services.processes[services.instances(service)[0]][2]
        for name, samples in scrape(f"http://127.0.0.1:{port}/metrics").items():
            exported.setdefault(name, []).extend(samples)
    broker_base = f"http://127.0.0.1:{broker.prometheus_port}"
    for name, samples in scrape(f"{broker_base}/metrics").items():
        exported.setdefault(name, []).extend(samples)
    # A queue's metrics appear once the broker has collected its statistics (every few seconds).
    def queues():
        return {labels.get("queue") for labels in scrape(f"{broker_base}/metrics/per-object").get(
            "rabbitmq_queue_messages", [])}

    wanted = {"switchboard.dead-letters", "switchboard.unroutable", "switchboard.router.shard.0"}
    wait_until(lambda: wanted <= queues(), 60,
               lambda: f"the broker's metrics of the dead letters, the unroutable queue and a shard queue "
                       f"(has {sorted(queues())})")
    for name, samples in scrape(f"{broker_base}/metrics/per-object").items():
        exported.setdefault(name, []).extend(samples)
    return exported


def test_every_series_the_rules_read_is_exported(services, broker):
    exported = exported_series(services, broker)
    checked = set()
    for rule in rules():
        checked |= series_read(rule["alert"], rule["expr"], exported)
    assert {"switchboard_shard_active", "switchboard_timer_lateness_seconds_bucket",
            "rabbitmq_queue_messages", "rabbitmq_alarms_memory_used_watermark"} <= checked
