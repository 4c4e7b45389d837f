"""The Grafana dashboard's gateway panels (deploy/grafana/switchboard.json) read only series a running gateway
exports, with the label values they match and the labels they group by, so none of them silently stays empty."""

import uuid

from selenium.webdriver.common.by import By

from conftest import EVENT_TIMEOUT, PAGE_TIMEOUT, metric_queries, wait_until


def test_the_dashboards_gateway_panels_read_what_a_gateway_exports(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=20000, autoAccept=False)
    alice = workstation.open_page("alice")
    conversation, user = f"c-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    # A command from a page (labelled with its type) ...
    desk.request(conversation, user=user)
    offer = desk.wait_event("offer.made", conversation=conversation, agent="alice", timeout=EVENT_TIMEOUT)
    ring = alice.wait_visible(alice.ring_selector(conversation, offer["offer"]))
    ring.find_element(By.CSS_SELECTOR, "button.accept").click()
    desk.wait_event("conversation.assigned", conversation=conversation, timeout=EVENT_TIMEOUT)
    # ... and a refusal (labelled with its reason): a sign-in with a token the gateway does not know.
    workstation.open_page_for_token("not-a-known-token", "stranger").wait_visible("#signin-error")

    url = f"http://127.0.0.1:{workstation.gateway.port}/metrics"
    labelled = {"switchboard_gateway_commands_total": "type", "switchboard_gateway_rejections_total": "reason"}

    def exported():
        return metric_queries.scrape(url)

    wait_until(lambda: all(any(label in labels for labels in exported().get(name, []))
                           for name, label in labelled.items()),
               PAGE_TIMEOUT, lambda: f"the gateway's labelled counters (it exports {sorted(exported())})")
    samples = exported()
    checked = set()
    for title, expression in metric_queries.dashboard_queries():
        if metric_queries.reads_gateway(expression):
            checked |= metric_queries.series_read(title, expression, samples)
    assert checked == {name for name in samples if name.startswith(metric_queries.GATEWAY_PREFIX)}, \
        "every metric the gateway exports is on the dashboard"
