"""What the alert rules and the Grafana dashboard read, checked against what running processes export. Shared by
the system suite (the services and the broker) and the browser suite (the workstation gateway); it imports no
conftest, so either suite can load it."""

import json
import re
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "deploy/grafana/switchboard.json"
# The gateway's metrics: the browser suite runs gateways, the system suite does not.
GATEWAY_PREFIX = "switchboard_gateway_"
# Labels Prometheus adds to every series it scrapes.
SCRAPE_LABELS = {"instance", "job"}

METRIC = re.compile(r"\b((?:switchboard|rabbitmq)_[a-z_]+)(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)="([^"]*)"')
# A selector's label matchers: equal to a value, or matching a regular expression (anchored, as PromQL's are).
SELECTOR_MATCHER = re.compile(r'(\w+)(=~|=)"([^"]*)"')
BY = re.compile(r"\bby \(([^)]*)\)")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ")


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


def series_read(where, expression, exported):
    """The metric names `expression` reads; fails unless each is exported with the label values it matches and
    the labels it groups by."""
    grouped_by = {label.strip() for clause in BY.findall(expression) for label in clause.split(",")}
    names = set()
    for name, matchers in METRIC.findall(expression):
        samples = exported.get(name)
        assert samples, f"{where}: no series {name} is exported"
        wanted = SELECTOR_MATCHER.findall(matchers)
        matching = [labels for labels in samples if all(matches(labels.get(label), op, value) for label, op, value in wanted)]
        assert matching, f"{where}: no series {name} with {wanted}"
        needed = grouped_by - SCRAPE_LABELS
        assert any(needed <= labels.keys() for labels in matching), \
            f"{where}: no series {name} with the labels {sorted(needed)}"
        names.add(name)
    return names


def matches(actual, op, value):
    """Whether a label's value (`None` when the series has no such label) meets one matcher."""
    if actual is None:
        return False
    # In a PromQL string a backslash is written twice.
    return actual == value if op == "=" else re.fullmatch(value.replace("\\\\", "\\"), actual) is not None


def dashboard_panels():
    """The dashboard's panels, without its rows."""
    return [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"]


def dashboard_queries():
    """Each query of the dashboard, with its panel's title."""
    return [(panel["title"], target["expr"]) for panel in dashboard_panels() for target in panel["targets"]]


def reads_gateway(expression):
    return GATEWAY_PREFIX in expression
