"""The agent page served by switchboard-gateway, driven in headless Chromium against the real services: what an
agent sees and does (the DOM contract), checked against what the Router publishes on switchboard.events."""

import os
import re
import signal
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import EVENT_TIMEOUT, GRACE_MS, PAGE_TIMEOUT, parse_time

LATE_CLICK_NOTICE = "this conversation was offered to someone else"


def new_conversation():
    tag = uuid.uuid4().hex[:8]
    return f"c-{tag}", f"u-{tag}"


def ring_page(desk, page, **request):
    """Asks for a new conversation (with `request`'s fields) and waits until it rings on `page`: the conversation,
    its user, the Router's offer.made and the selector of the page's bar."""
    conversation, user = new_conversation()
    desk.request(conversation, user=user, **request)
    offer = desk.wait_event("offer.made", conversation=conversation, agent=page.agent.agent, timeout=EVENT_TIMEOUT)
    selector = page.ring_selector(conversation, offer["offer"])
    page.wait_visible(selector)
    return conversation, user, offer, selector


def read_countdown(page, ring_selector):
    """The whole seconds the bar shows, with the window of wall-clock time in which it was read."""
    before = time.time()
    text = page.text(f"{ring_selector} .ring-countdown")
    after = time.time()
    match = re.search(r"\d+", text or "")
    assert match, f"{page.label}'s .ring-countdown shows no number: {text!r}"
    return int(match.group()), before, after


def assert_agrees_with_expiry(seconds, before, after, expires_at):
    """Within 1.5 s of the time left until the Router's expiresAt at some moment of the read: the page rounds to
    whole seconds (0.5 s) and redraws every 100 ms, and a busy machine may delay a redraw."""
    assert expires_at - after - 1.5 <= seconds <= expires_at - before + 1.5, (
        f"countdown {seconds} s, but {expires_at - after:.2f}..{expires_at - before:.2f} s were left until expiresAt")


def test_a_ring_counts_down_and_accept_opens_the_session(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=8000, countdownEveryMs=1000, autoAccept=False)
    alice = workstation.open_page("alice")
    conversation, user = new_conversation()

    desk.request(conversation, user=user)
    offer = desk.wait_event("offer.made", conversation=conversation, agent="alice", timeout=EVENT_TIMEOUT)
    expires_at = parse_time(offer["expiresAt"])
    ring_selector = alice.ring_selector(conversation, offer["offer"])
    ring = alice.wait_visible(ring_selector)
    assert user in ring.find_element(By.CSS_SELECTOR, ".ring-user").text
    alice.wait(lambda d: user in d.find_element(By.ID, "ring-announcer").get_attribute("textContent"),
               PAGE_TIMEOUT, "#ring-announcer to name the user")

    first, before, after = read_countdown(alice, ring_selector)
    assert_agrees_with_expiry(first, before, after, expires_at)
    alice.screenshot("ringing")
    alice.wait(lambda d: read_countdown(alice, ring_selector)[0] < first, PAGE_TIMEOUT, f"the countdown to go below {first}")
    second, before, after = read_countdown(alice, ring_selector)
    assert second < first
    assert_agrees_with_expiry(second, before, after, expires_at)

    accept = ring.find_element(By.CSS_SELECTOR, "button.accept")
    assert accept.text == "Accept"
    accept.click()
    session = alice.wait_visible(alice.session_selector(conversation))
    assert user in session.find_element(By.CSS_SELECTOR, ".session-user").text
    assert session.get_attribute("data-mode") == "accepted"
    assert session.find_element(By.CSS_SELECTOR, "button.end-session").text == "End Session"
    alice.wait_gone(alice.ring_selector(conversation))
    assigned = desk.wait_event("conversation.assigned", conversation=conversation, timeout=EVENT_TIMEOUT)
    assert (assigned["agent"], assigned["mode"], assigned.get("offer")) == ("alice", "accepted", offer["offer"])
    alice.screenshot("serving")


def test_the_countdown_keeps_to_the_services_clock_whatever_the_gateways_host_says(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=20000, countdownEveryMs=1000, autoAccept=False)
    alice = workstation.open_page("alice")
    # A gateway on a host whose clock runs 15 s ahead of the services' puts its time in its hello.
    ahead = datetime.now(timezone.utc) + timedelta(seconds=15)
    alice.rewrite_incoming({"kind": "hello"}, {"serverTime": ahead.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"})
    alice.reconnect()
    conversation, user, offer, ring_selector = ring_page(desk, alice)
    seconds, before, after = read_countdown(alice, ring_selector)
    assert_agrees_with_expiry(seconds, before, after, parse_time(offer["expiresAt"]))


def test_an_unanswered_ring_leaves_at_expiry_and_rings_another_agent(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice", "bob"], ringMs=5000, autoAccept=False)
    pages = {"alice": workstation.open_page("alice"), "bob": workstation.open_page("bob")}
    conversation, user = new_conversation()

    desk.request(conversation, user=user)
    first = desk.wait_event("offer.made", conversation=conversation, timeout=EVENT_TIMEOUT)
    ringing = pages[first["agent"]]
    other_agent = "bob" if first["agent"] == "alice" else "alice"
    ring_selector = ringing.ring_selector(conversation, first["offer"])
    ringing.wait_visible(ring_selector)
    ringing.screenshot("ringing")

    expires_at = parse_time(first["expiresAt"])
    last_seen = {"at": None}

    def ring_gone(driver):
        # Seen before the look began, gone by the time it ended.
        began = time.time()
        if driver.find_elements(By.CSS_SELECTOR, ring_selector):
            last_seen["at"] = began
            return False
        return time.time()

    gone_at = ringing.wait(ring_gone, expires_at - time.time() + EVENT_TIMEOUT, "the unanswered bar to go away")
    assert gone_at >= expires_at - 0.5, f"the bar went away {expires_at - gone_at:.2f} s before expiresAt"
    assert last_seen["at"] is not None and last_seen["at"] >= expires_at - 1.5, "the bar was not shown until expiry"
    assert ringing.received(type="ring.stopped", offer=first["offer"], reason="expired")
    desk.wait_event("offer.expired", offer=first["offer"], timeout=EVENT_TIMEOUT)
    ringing.screenshot("expired")

    second = desk.wait_event("offer.made", conversation=conversation, agent=other_agent, timeout=EVENT_TIMEOUT)
    other = pages[other_agent]
    other.wait_visible(other.ring_selector(conversation, second["offer"]))
    other.screenshot(f"{other_agent}-ringing")


def test_end_session_removes_the_session(workstation):
    """Driven from the keyboard: Enter on Accept, Space on End Session."""
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=20000, autoAccept=False)
    alice = workstation.open_page("alice")
    conversation, user, offer, ring_selector = ring_page(desk, alice)
    alice.wait_visible(ring_selector + " button.accept").send_keys(Keys.ENTER)
    session = alice.wait_visible(alice.session_selector(conversation))
    alice.screenshot("serving")

    session.find_element(By.CSS_SELECTOR, "button.end-session").send_keys(Keys.SPACE)
    alice.wait_gone(alice.session_selector(conversation))
    ended = desk.wait_event("conversation.ended", conversation=conversation, timeout=EVENT_TIMEOUT)
    assert (ended["reason"], ended.get("agent")) == ("agent", "alice")
    assert alice.received(type="session.ended", conversation=conversation)
    alice.screenshot("ended")


def test_an_auto_accept_desk_opens_the_session_with_no_bar(workstation):
    desk = workstation.auto
    workstation.setup_desk(desk, ["dave"], ringMs=8000, autoAccept=True)
    dave = workstation.open_page("dave")
    conversation, user = new_conversation()

    desk.request(conversation, user=user)
    session = dave.wait_visible(dave.session_selector(conversation))
    assert session.get_attribute("data-mode") == "autoAccepted"
    assert user in session.find_element(By.CSS_SELECTOR, ".session-user").text
    assigned = desk.wait_event("conversation.assigned", conversation=conversation, timeout=EVENT_TIMEOUT)
    assert (assigned["agent"], assigned["mode"]) == ("dave", "autoAccepted")
    assert not desk.event_list("offer.made", conversation=conversation)
    assert dave.rings_added() == [], "a notification bar appeared on an auto-accept desk"
    assert not dave.received(type="ring")
    dave.screenshot("serving")


def test_a_late_click_says_the_conversation_went_to_someone_else(workstation):
    desk = workstation.manual
    # One missed ring puts alice on break: no other ring comes to her page after this one.
    workstation.setup_desk(desk, ["alice"], ringMs=4000, autoAccept=False, missesBeforeBreak=1)
    alice = workstation.open_page("alice")
    # The page never hears that the ring stopped (as with a lost connection), so its bar, with a live Accept
    # button, outlives the offer.
    alice.hold(type="ring.stopped")
    conversation, user = new_conversation()

    def ringing(driver):
        return driver.execute_script("return document.body.dataset.ringing;")

    desk.request(conversation, user=user)
    offer = desk.wait_event("offer.made", conversation=conversation, agent="alice", timeout=EVENT_TIMEOUT)
    ring_selector = alice.ring_selector(conversation, offer["offer"])
    alice.wait_visible(ring_selector)
    assert ringing(alice.driver) == "true"
    alice.screenshot("ringing")
    desk.wait_event("offer.expired", offer=offer["offer"], timeout=EVENT_TIMEOUT)
    alice.wait(lambda d: alice.held(type="ring.stopped", offer=offer["offer"]), PAGE_TIMEOUT,
               "the gateway to deliver ring.stopped (held back from the page)")
    # Past its expiry the bar no longer rings, though it stays for a definitive answer to a late click.
    alice.wait(lambda d: ringing(d) == "false", PAGE_TIMEOUT, "the ringtone to stop once the ring is past its expiry")
    assert alice.wait_visible(ring_selector).get_attribute("data-expired") == "true"
    alice.screenshot("expired")

    alice.wait_visible(f"{ring_selector} button.accept").click()
    notice = alice.wait(
        lambda d: next((e for e in d.find_elements(By.ID, "notice") if LATE_CLICK_NOTICE in e.text.lower()), None),
        PAGE_TIMEOUT, f"#notice to say {LATE_CLICK_NOTICE!r}")
    rejected = desk.wait_event("command.rejected", conversation=conversation, timeout=EVENT_TIMEOUT)
    assert (rejected["agent"], rejected["commandType"]) == ("alice", "offer.accept")
    assert notice.get_attribute("data-reason") == rejected["reason"]
    alice.screenshot("late-click")


def test_a_command_the_gateway_did_not_take_can_be_sent_again(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=30000, autoAccept=False)
    alice = workstation.open_page("alice")
    conversation, user, offer, ring_selector = ring_page(desk, alice)
    accept_selector = f"{ring_selector} button.accept"

    # The accept leaves the page but is not taken, and the gateway says so (as when the broker is away).
    alice.drop_outgoing(type="offer.accept")
    alice.wait_visible(accept_selector).click()
    alice.wait(lambda d: not d.find_element(By.CSS_SELECTOR, accept_selector).is_enabled(), PAGE_TIMEOUT,
               "Accept to wait for its answer")
    dropped = alice.dropped(type="offer.accept", offer=offer["offer"])
    assert dropped and dropped[0]["ref"], dropped
    # An error about another command of the page leaves this one waiting.
    alice.deliver_to_page({"kind": "error", "message": "Not this one", "ref": dropped[0]["ref"] + "-other"})
    alice.wait(lambda d: "Not this one" in d.find_element(By.ID, "notice").text, PAGE_TIMEOUT, "the first notice")
    assert not alice.driver.find_element(By.CSS_SELECTOR, accept_selector).is_enabled()
    alice.deliver_to_page({"kind": "error", "message": "The switchboard did not take the command; please try again",
                           "ref": dropped[0]["ref"]})
    alice.wait(lambda d: d.find_element(By.CSS_SELECTOR, accept_selector).is_enabled(), PAGE_TIMEOUT,
               "Accept to work again")
    assert "did not take the command" in alice.text("#notice")

    alice.stop_dropping()
    alice.wait_visible(accept_selector).click()
    alice.wait_visible(alice.session_selector(conversation))
    assigned = desk.wait_event("conversation.assigned", conversation=conversation, timeout=EVENT_TIMEOUT)
    assert (assigned["agent"], assigned["offer"]) == ("alice", offer["offer"])


def test_an_accept_from_a_second_page_of_a_ring_already_accepted_says_the_session_is_open(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=30000, autoAccept=False)
    first = workstation.open_page("alice")
    second = workstation.open_page("alice")
    conversation, user, offer, ring_selector = ring_page(desk, first)
    first.wait_visible(f"{ring_selector} button.accept").click()
    second.wait_visible(second.session_selector(conversation))
    # The second page's click that left before it heard of the accept.
    second.send_on_page_socket({"type": "offer.accept", "conversation": conversation, "offer": offer["offer"]})
    second.wait(lambda d: "already serving" in d.find_element(By.ID, "notice").text.lower(), PAGE_TIMEOUT,
                "#notice to say the session is open")
    assert LATE_CLICK_NOTICE not in second.text("#notice").lower()
    second.wait_visible(second.session_selector(conversation))


def test_missed_rings_that_put_the_agent_on_break_are_explained(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=1500, countdownEveryMs=0, autoAccept=False, missesBeforeBreak=1)
    alice = workstation.open_page("alice")
    ring_page(desk, alice)
    alice.wait(lambda d: "put on break" in d.find_element(By.ID, "notice").text, EVENT_TIMEOUT,
               "#notice to say why the agent is on break")
    assert Select(alice.driver.find_element(By.ID, "status")).first_selected_option.get_attribute("value") == "break"


def test_stepping_through_the_status_menu_with_the_keyboard_sends_only_where_it_stops(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], autoAccept=False)
    alice = workstation.open_page("alice")
    menu = alice.driver.find_element(By.ID, "status")
    alice.wait(lambda d: menu.is_enabled() and menu.get_attribute("value") == "online", PAGE_TIMEOUT, "the menu at online")

    def told_after(keys, status):
        """Sends `keys` to the menu and returns the statuses the Router announced for alice until `status`."""
        before = len(desk.event_list("agent.changed", agent="alice"))
        menu.send_keys(*keys)
        desk.wait(lambda: len(desk.event_list("agent.changed", agent="alice")) > before
                  and desk.event_list("agent.changed", agent="alice")[-1]["status"] == status,
                  EVENT_TIMEOUT, f"alice {status}")
        return [event["status"] for event in desk.event_list("agent.changed", agent="alice")[before:]]

    # Online, past break, to offline: each arrow is a `change` of the closed menu.
    assert told_after([Keys.ARROW_DOWN, Keys.ARROW_DOWN], "offline") == ["offline"]
    # Enter sends at once what the arrows chose.
    assert told_after([Keys.ARROW_UP, Keys.ARROW_UP, Keys.ENTER], "online") == ["online"]
    alice.wait(lambda d: menu.get_attribute("value") == "online", PAGE_TIMEOUT, "the menu at online")


@pytest.mark.gateway_options("--heartbeat-milliseconds", "500")
def test_a_connection_that_went_silent_is_given_up_and_opened_again(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=30000, autoAccept=False)
    alice = workstation.open_page("alice")
    assert alice.received(kind="hello")[-1]["heartbeatMs"] == 500
    alice.wait(lambda d: alice.received(kind="heartbeat"), PAGE_TIMEOUT, "a heartbeat")
    sockets = alice.socket_count()
    # A stopped gateway keeps its sockets open and says nothing, like a connection that died without a close.
    gateway = workstation.gateway.process
    os.kill(gateway.pid, signal.SIGSTOP)
    try:
        alice.wait(lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") != "connected",
                   PAGE_TIMEOUT, "the page to give up the silent connection")
    finally:
        os.kill(gateway.pid, signal.SIGCONT)
    alice.wait(lambda d: alice.socket_count() > sockets, PAGE_TIMEOUT, "the page to open another socket")
    alice.wait_signed_in()
    ring_page(desk, alice)


def test_a_refused_accept_that_is_not_late_says_why_and_keeps_the_rings(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, [], ringMs=30000, autoAccept=False)
    desk.add_agent("alice", capacity=2, status="online")
    desk.ready(timeout=EVENT_TIMEOUT)
    alice = workstation.open_page("alice")
    (first, first_user), (second, second_user) = new_conversation(), new_conversation()
    desk.request(first, user=first_user)
    desk.request(second, user=second_user)
    offers = {c: desk.wait_event("offer.made", conversation=c, agent="alice", timeout=EVENT_TIMEOUT)["offer"]
              for c in (first, second)}
    for conversation, offer in offers.items():
        alice.wait_visible(alice.ring_selector(conversation, offer))

    # One conversation with the other's live offer: the Router refuses it as invalid, not as late.
    alice.send_on_page_socket({"type": "offer.accept", "conversation": first, "offer": offers[second]})
    rejected = desk.wait_event("command.rejected", conversation=first, timeout=EVENT_TIMEOUT)
    assert (rejected["agent"], rejected["reason"]) == ("alice", "invalid")
    notice = alice.wait(lambda d: next((e for e in d.find_elements(By.ID, "notice")
                                        if e.get_attribute("data-reason") == "invalid"), None),
                        PAGE_TIMEOUT, "#notice to answer the refused accept")
    assert LATE_CLICK_NOTICE not in notice.text.lower()
    for conversation, offer in offers.items():
        buttons = alice.find_all(f"{alice.ring_selector(conversation, offer)} button.accept")
        assert buttons and buttons[0].is_enabled(), f"{conversation}'s Accept is gone or disabled"


def test_transfer_hands_the_session_on_and_a_refused_one_says_why(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice", "bob"], ringMs=30000, autoAccept=False)
    alice = workstation.open_page("alice")
    bob = workstation.open_page("bob")
    conversation, user, offer, ring_selector = ring_page(desk, alice, preferredAgent="alice")
    alice.wait_visible(ring_selector + " button.accept").click()
    session_selector = alice.session_selector(conversation)
    session = alice.wait_visible(session_selector)
    form_selector = f"{session_selector} form.transfer-form"
    assert not alice.find_all(form_selector)[0].is_displayed(), "the transfer form shows before Transfer is clicked"

    session.find_element(By.CSS_SELECTOR, "button.transfer").click()
    target = alice.wait_visible(f"{form_selector} input.transfer-to")
    assert alice.driver.switch_to.active_element == target, "the transfer form does not take the focus"
    # The desk's other agents of the gateway's tokens file are suggested, by name; no one of another desk.
    suggested = [(o.get_attribute("value"), o.get_attribute("textContent")) for o in alice.find_all("#colleagues option")]
    assert suggested == [("bob", "Bob")], suggested
    assert target.get_attribute("list") == "colleagues"
    # An id the contract does not allow never leaves the page.
    alice.drop_outgoing(type="session.transfer")
    target.send_keys("no one", Keys.ENTER)
    assert alice.find_all(f"{form_selector} input.transfer-to:invalid"), "the page took an id with a space"
    assert not alice.dropped(type="session.transfer"), "the page sent a transfer to an id the contract forbids"
    alice.stop_dropping()

    # An agent the desk does not have: the Router refuses, the page says so and keeps the session and the form.
    target.clear()
    target.send_keys("zed", Keys.ENTER)
    rejected = desk.wait_event("command.rejected", conversation=conversation, timeout=EVENT_TIMEOUT)
    assert (rejected["agent"], rejected["commandType"], rejected["reason"]) == ("alice", "session.transfer", "unknownAgent")
    notice = alice.wait(lambda d: next((e for e in d.find_elements(By.ID, "notice")
                                        if e.get_attribute("data-reason") == "unknownAgent"), None),
                        PAGE_TIMEOUT, "#notice to answer the refused transfer")
    assert "no agent “zed” on this desk" in notice.text.lower()
    alice.wait(lambda d: d.find_element(By.CSS_SELECTOR, f"{form_selector} button.transfer-send").is_enabled(),
               PAGE_TIMEOUT, "the transfer form to work again")
    assert alice.find_all(form_selector)[0].is_displayed(), "the transfer form closed on a refusal"
    alice.screenshot("transfer-refused")

    target.clear()
    target.send_keys("bob", Keys.ENTER)
    alice.wait_gone(session_selector)
    assigned = desk.wait_event("conversation.assigned", conversation=conversation, agent="bob", timeout=EVENT_TIMEOUT)
    assert (assigned["mode"], assigned.get("offer")) == ("transferred", None)
    assert alice.received(type="session.ended", conversation=conversation, reason="transferred")
    bob_session = bob.wait_visible(bob.session_selector(conversation))
    assert bob_session.get_attribute("data-mode") == "transferred"
    assert user in bob_session.find_element(By.CSS_SELECTOR, ".session-user").text
    bob.screenshot("transferred-in")

    # Back to the waiting queue: no id to give, and the conversation is offered to someone else.
    bob_session.find_element(By.CSS_SELECTOR, "button.transfer").click()
    kind = bob.wait_visible(f"{bob.session_selector(conversation)} select.transfer-kind")
    Select(kind).select_by_value("queue")
    assert not bob.find_all(f"{bob.session_selector(conversation)} input.transfer-to")[0].is_displayed()
    bob.find_all(f"{bob.session_selector(conversation)} button.transfer-send")[0].click()
    bob.wait_gone(bob.session_selector(conversation))
    queued = desk.wait_event("conversation.queued", conversation=conversation, reason="transferred",
                             timeout=EVENT_TIMEOUT)
    assert queued["conversation"] == conversation
    again = desk.wait_event("offer.made", conversation=conversation, agent="alice", count=2, timeout=EVENT_TIMEOUT)
    alice.wait_visible(alice.ring_selector(conversation, again["offer"]))


def test_a_closed_page_past_the_grace_period_hands_its_ring_to_another_agent(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice", "bob"], ringMs=20000, autoAccept=False)
    alice = workstation.open_page("alice")
    bob = workstation.open_page("bob")
    conversation, user, first, _ = ring_page(desk, alice, preferredAgent="alice")
    alice.screenshot("ringing")

    closed_at = time.time()
    alice.close()
    withdrawn = desk.wait_event("offer.withdrawn", offer=first["offer"], timeout=GRACE_MS / 1000 + EVENT_TIMEOUT)
    assert (withdrawn["agent"], withdrawn["reason"]) == ("alice", "agentOffline")
    waited = parse_time(withdrawn["at"]) - closed_at
    assert waited >= 0.75 * GRACE_MS / 1000, f"the ring was withdrawn {waited:.2f} s after the page closed, within the grace"

    second = desk.wait_event("offer.made", conversation=conversation, agent="bob", timeout=EVENT_TIMEOUT)
    bob.wait_visible(bob.ring_selector(conversation, second["offer"]))
    bob.screenshot("bob-ringing")


def test_a_token_cannot_act_as_another_agent(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice", "bob"], ringMs=20000, autoAccept=False)
    alice = workstation.open_page("alice")
    bob = workstation.open_page("bob")
    conversation, user, offer, bob_ring = ring_page(desk, bob, preferredAgent="bob")

    # Alice's own signed-in socket claims to be Bob accepting Bob's offer.
    alice.send_on_page_socket({
        "type": "offer.accept", "conversation": conversation, "offer": offer["offer"],
        "agent": "bob", "desk": desk.desk,
    })
    rejected = desk.wait_event("command.rejected", conversation=conversation, timeout=EVENT_TIMEOUT)
    assert (rejected["agent"], rejected["commandType"], rejected["reason"]) == ("alice", "offer.accept", "offerNotYours")
    alice.wait(lambda d: LATE_CLICK_NOTICE in d.find_element(By.ID, "notice").text.lower(), PAGE_TIMEOUT,
               "alice's #notice to answer the refused accept")

    desk.observe_for(1.5)
    assert not desk.event_list("conversation.assigned", conversation=conversation)
    assert [m["agent"] for m in desk.event_list("command.rejected", conversation=conversation)] == ["alice"]
    for ended in ("offer.expired", "offer.declined", "offer.withdrawn"):
        assert not desk.event_list(ended, offer=offer["offer"]), f"bob's offer ended: {ended}"
    assert bob.find_all(bob_ring), "bob's bar went away"
    assert not bob.received(type="ring.stopped", offer=offer["offer"])
    assert not bob.find_all(bob.session_selector(conversation))
    bob.screenshot("ringing")
    alice.screenshot("refused")


@pytest.mark.gateway_options("--agent-pages", "1")
def test_a_page_over_the_agents_bound_says_so_and_stops_reconnecting_and_a_flood_of_commands_is_cut_short(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=20000, autoAccept=False)
    alice = workstation.open_page("alice")
    second = workstation.open_page_for_token(workstation.agents["alice"].token, "alice's second page")
    error = second.wait_visible("#signin-error")
    assert "too many pages" in error.text.lower(), error.text
    assert not any(e.is_displayed() for e in second.find_all("#rings")), "the refused page shows the desk"
    second.screenshot("refused")
    # It does not knock again: one refusal, one socket, however long it stays open.
    second.wait(lambda d: len(second.received(kind="error")) == 1, PAGE_TIMEOUT, "the gateway's one refusal")
    workstation.manual.observe_for(3)
    assert second.socket_count() == 1
    # The first page goes on as before.
    ring_page(desk, alice)

    # Far more commands at once than a person sends: the burst is published, the rest refused, each with an error.
    syncs_before = len(desk.event_list("agent.state", agent="alice"))
    alice.send_on_page_socket({"type": "agent.sync"}, times=60)
    alice.wait(lambda d: alice.received(kind="error") and any(
        "too many commands" in m["message"].lower() for m in alice.received(kind="error")),
        PAGE_TIMEOUT, "the gateway to refuse the commands over the page's rate")
    desk.wait_event("agent.state", agent="alice", count=syncs_before + 20, timeout=EVENT_TIMEOUT)
    desk.observe_for(2)
    answered = len(desk.event_list("agent.state", agent="alice")) - syncs_before
    assert 20 <= answered < 60, f"{answered} of 60 syncs sent at once were answered"


def test_an_oversized_command_is_refused_and_a_huge_one_closes_the_socket_as_too_big(workstation):
    desk = workstation.manual
    workstation.setup_desk(desk, ["alice"], ringMs=20000, autoAccept=False)
    alice = workstation.open_page("alice")
    # Over the command limit but within a WebSocket message's: a readable refusal, and the socket stays open.
    alice.send_on_page_socket({"type": "agent.sync", "padding": "x" * 30_000})
    alice.wait(lambda d: any("over the limit" in m["message"] for m in alice.received(kind="error")),
               PAGE_TIMEOUT, "the gateway to refuse the oversized command")
    assert alice.socket_closes() == []
    # Over a WebSocket message's limit: the gateway closes the socket, unread. It sends 1009 (message too big), but
    # the browser may see the connection reset before that frame and report 1006.
    alice.send_on_page_socket({"type": "agent.sync", "padding": "x" * 100_000})
    alice.wait(lambda d: len(alice.socket_closes()) == 1, PAGE_TIMEOUT, "the gateway to close the socket")
    assert alice.socket_closes()[0]["code"] in (1006, 1009)
    # The page connects again and goes on.
    alice.wait(lambda d: alice.socket_count() == 2,
               PAGE_TIMEOUT, "the page to connect again")
    alice.wait_signed_in()
    ring_page(desk, alice)


def test_an_unknown_token_shows_the_sign_in_error(workstation):
    stranger = workstation.open_page_for_token("not-a-known-token", "stranger")
    error = stranger.wait_visible("#signin-error")
    assert error.text.strip(), "#signin-error is visible but says nothing"
    for desk_ui in ("#rings", "#sessions", "#status"):
        assert not any(e.is_displayed() for e in stranger.find_all(desk_ui)), f"{desk_ui} is shown without a sign-in"
    stranger.screenshot("signin-error")


def test_a_notifier_restart_shows_the_page_nothing_twice_and_its_rings_still_stop(workstation, services):
    """A Notifier that restarts publishes again every event since its last snapshot, with the same ids and seqs,
    the answer to the page's first sync among them. The gateway must pass none of them on a second time: no ring
    or session sent again, no bar shown again. (An event from before the agent signed in is one the gateway never
    saw: it asks for the state again, which shows what is, not what was.)"""
    desk = workstation.manual
    # Its active instance snapshots rarely, so the events below are in the tail its successor publishes again.
    services.extra_arguments["notifier"] = ("--snapshot-every-seconds", "3600", "--snapshot-every-entries", "100000")
    try:
        services.restart("notifier")
    finally:
        services.extra_arguments.pop("notifier")
    desk.configure(ringMs=40000, countdownEveryMs=1000, autoAccept=False, inactivityMs=0)
    desk.add_agent("alice", capacity=2, status="online")
    desk.ready(timeout=EVENT_TIMEOUT)
    alice = workstation.open_page("alice")

    first, _, first_offer, first_ring = ring_page(desk, alice)
    alice.wait_visible(f"{first_ring} button.accept").click()
    alice.wait_visible(alice.session_selector(first))
    alice.wait_gone(first_ring)
    second, _, second_offer, second_ring = ring_page(desk, alice)

    def relayed():
        return {
            "first rings": len(alice.received(type="ring", offer=first_offer["offer"])),
            "second rings": len(alice.received(type="ring", offer=second_offer["offer"])),
            "sessions started": len(alice.received(type="session.started", conversation=first)),
        }

    before = relayed()
    published_rings = len(desk.ws_list("alice", "ring", offer=first_offer["offer"]))

    services.restart("notifier")
    # The premise: the new Notifier published the first ring again, as the broker shows.
    desk.wait(lambda: len(desk.ws_list("alice", "ring", offer=first_offer["offer"])) > published_rings, EVENT_TIMEOUT,
              "the restarted Notifier to publish the first ring again")
    # Accepted through the new Notifier: its answer comes after everything it published again.
    alice.wait_visible(f"{second_ring} button.accept").click()
    alice.wait_visible(alice.session_selector(second))
    alice.wait_gone(second_ring)

    after = relayed()
    assert after == before, f"the page was sent again what it had seen: {before} before the restart, {after} after"
    added = [html for html in alice.rings_added() if f'data-conversation="{first}"' in html]
    assert len(added) == 1, f"the first ring's bar was added {len(added)} times"
    assert len(alice.find_all(alice.session_selector(first))) == 1
    assert not alice.find_all(first_ring)
