"""deploy/prometheus/switchboard-alerts.yml: promtool accepts the rules and passes their unit tests, and every
metric, label and label value the rules read is one the running services (or the broker's Prometheus plugin)
export, so no rule silently watches a series that does not exist."""

import re
import subprocess
import urllib.request

import yaml

from conftest import REPO_ROOT, SERVICES, wait_until

RULES = REPO_ROOT / "deploy/prometheus/switchboard-alerts.yml"
RULE_TESTS = REPO_ROOT / "deploy/prometheus/switchboard-alerts.test.yml"
# Labels Prometheus adds to every series it scrapes.
SCRAPE_LABELS = {"instance", "job"}

METRIC = re.compile(r"\b((?:switchboard|rabbitmq)_[a-z_]+)(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)="([^"]*)"')
BY = re.compile(r"\bby \(([^)]*)\)")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ")


def promtool():
    return subprocess.run([str(REPO_ROOT / "scripts/promtool.sh")], check=True, stdout=subprocess.PIPE,
                          text=True).stdout.strip()


def scrape(url):
    """Each sample's metric name with the labels of each of its samples."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            samples.setdefault(match.group(1), []).append(dict(MATCHER.findall(match.group(2) or "")))
    return samples


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

    wait_until(lambda: {"switchboard.dead-letters", "switchboard.unroutable"} <= queues(), 60,
               lambda: f"the broker's metrics of the dead letters and the unroutable queue (has {sorted(queues())})")
    for name, samples in scrape(f"{broker_base}/metrics/per-object").items():
        exported.setdefault(name, []).extend(samples)
    return exported


def series_read(where, expression, exported):
    """The metric names `expression` reads; fails unless each is exported with the label values it matches and
    the labels it groups by."""
    grouped_by = {label.strip() for clause in BY.findall(expression) for label in clause.split(",")}
    names = set()
    for name, matchers in METRIC.findall(expression):
        samples = exported.get(name)
        assert samples, f"{where}: no series {name} is exported"
        wanted = dict(MATCHER.findall(matchers))
        matching = [labels for labels in samples if wanted.items() <= labels.items()]
        assert matching, f"{where}: no series {name} with {wanted}"
        needed = grouped_by - SCRAPE_LABELS
        assert any(needed <= labels.keys() for labels in matching), \
            f"{where}: no series {name} with the labels {sorted(needed)}"
        names.add(name)
    return names


def test_every_series_the_rules_read_is_exported(services, broker):
    exported = exported_series(services, broker)
    checked = set()
    for rule in rules():
        checked |= series_read(rule["alert"], rule["expr"], exported)
    assert {"switchboard_shard_active", "switchboard_timer_lateness_seconds_bucket",
            "rabbitmq_queue_messages", "rabbitmq_alarms_memory_used_watermark"} <= checked
