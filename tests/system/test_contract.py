"""Every behaviour of PROTOCOL.md, driven only through the public exchanges."""

import json
import time

import pika

from conftest import connection_parameters, now_rfc3339, rfc3339

# A ring that does not expire during a test that does not wait for expiry.
LONG_RING = 30_000
# Seconds within which a change that acts at once (a decline, going offline, a user leaving) shows: far less than
# LONG_RING, so it cannot be the ring expiring instead.
AT_ONCE = 10


def finish(desk):
    """The checks every test ends with: the envelope rules, the gapless sequences and the Router's invariants."""
    desk.pump(0.2)
    desk.assert_contract_properties()
    desk.assert_gapless()
    desk.assert_router_invariants()


def test_ring_counts_down_and_accept_starts_the_session(desk):
    desk.configure(ringMs=4000, countdownEveryMs=300, inactivityMs=0)
    desk.add_agent("alice")
    desk.request("conv-a")

    offer = desk.wait_event("offer.made", conversation="conv-a", agent="alice")
    assert offer["attempt"] == 1 and offer["ringMs"] == 4000 and offer["user"] == "u-conv-a"
    ring = desk.wait_ws("alice", "ring", conversation="conv-a", offer=offer["offer"])
    assert ring["user"] == "u-conv-a" and 0 < ring["remainingMs"] <= 4000
    assert ring["expiresAt"] and ring["serverTime"]
    desk.wait_ws("alice", "countdown", count=3, conversation="conv-a", offer=offer["offer"])
    remaining = [m["remainingMs"] for m in desk.ws_list("alice", "countdown", conversation="conv-a")]
    assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == len(remaining), remaining
    assert remaining[0] <= ring["remainingMs"]

    desk.accept("alice", "conv-a", offer["offer"])
    desk.wait_ws("alice", "ring.stopped", conversation="conv-a", offer=offer["offer"], reason="accepted")
    started = desk.wait_ws("alice", "session.started", conversation="conv-a")
    assert started["mode"] == "accepted" and started["user"] == "u-conv-a"
    assigned = desk.wait_event("conversation.assigned", conversation="conv-a")
    assert assigned["agent"] == "alice" and assigned["mode"] == "accepted" and assigned["offer"] == offer["offer"]
    finish(desk)


def test_expired_ring_is_offered_to_another_agent_and_a_late_accept_is_rejected(desk):
    desk.configure(ringMs=2000, countdownEveryMs=0, maxOfferAttempts=3, missesBeforeBreak=5, inactivityMs=0)
    desk.add_agent("alice")
    desk.add_agent("bob")
    desk.request("conv-x")

    first = desk.wait_event("offer.made", conversation="conv-x")
    second = desk.wait_event("offer.made", conversation="conv-x", attempt=2)
    assert second["agent"] != first["agent"] and second["offer"] != first["offer"]
    # The late click, and at once the second agent's, while the second ring is live.
    late = desk.accept(first["agent"], "conv-x", first["offer"])
    desk.accept(second["agent"], "conv-x", second["offer"])
    desk.wait_event("offer.expired", conversation="conv-x", offer=first["offer"], agent=first["agent"])
    desk.wait_ws(first["agent"], "ring.stopped", offer=first["offer"], reason="expired")

    rejected = desk.wait_event("command.rejected", command=late)
    assert rejected["reason"] == "offerExpired" and rejected["commandType"] == "offer.accept"
    desk.wait_ws(first["agent"], "command.rejected", command=late, reason="offerExpired")
    desk.observe_for(1.0)
    assert len(desk.event_list("command.rejected", command=late)) == 1

    assigned = desk.wait_event("conversation.assigned", conversation="conv-x")
    assert assigned["agent"] == second["agent"]
    finish(desk)


def test_automatic_service_starts_the_session_with_no_ring(desk):
    desk.configure(autoAccept=True, inactivityMs=0)
    desk.add_agent("alice")
    desk.request("conv-auto")

    started = desk.wait_ws("alice", "session.started", conversation="conv-auto")
    assert started["mode"] == "autoAccepted"
    assigned = desk.wait_event("conversation.assigned", conversation="conv-auto")
    assert assigned["agent"] == "alice" and assigned["mode"] == "autoAccepted"
    assert desk.ws_list("alice", "ring") == []
    finish(desk)


def test_an_agents_own_automatic_service_overrides_the_desks(desk):
    desk.configure(autoAccept=False, ringMs=LONG_RING, countdownEveryMs=0, inactivityMs=0)
    desk.add_agent("alice", auto_accept=True, groups=["vip"])
    desk.add_agent("bob", auto_accept=None, groups=["general"])
    desk.request("conv-own-auto", group="vip")
    assigned = desk.wait_event("conversation.assigned", conversation="conv-own-auto")
    assert (assigned["agent"], assigned["mode"]) == ("alice", "autoAccepted"), assigned.body
    assert desk.wait_ws("alice", "session.started", conversation="conv-own-auto")["mode"] == "autoAccepted"
    # Bob has the desk's setting: he is rung.
    desk.request("conv-desk-default", group="general")
    desk.wait_event("offer.made", conversation="conv-desk-default", agent="bob")
    assert not desk.event_list("offer.made", conversation="conv-own-auto")
    assert desk.ws_list("alice", "ring") == []
    finish(desk)


def test_without_countdowns_a_ring_sends_none(desk):
    desk.configure(ringMs=3000, countdownEveryMs=0, inactivityMs=0)
    desk.add_agent("alice")
    desk.request("conv-quiet")
    offer = desk.wait_event("offer.made", conversation="conv-quiet")
    desk.wait_ws("alice", "ring", offer=offer["offer"])
    desk.wait_ws("alice", "ring.stopped", offer=offer["offer"], reason="expired", timeout=AT_ONCE)
    assert desk.ws_list("alice", "countdown") == []
    finish(desk)


def test_end_session_frees_capacity_for_the_next_waiting_conversation(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice", capacity=1)
    desk.request("conv-1")
    first = desk.wait_event("offer.made", conversation="conv-1", agent="alice")
    desk.accept("alice", "conv-1", first["offer"])
    desk.wait_event("conversation.assigned", conversation="conv-1", agent="alice")

    desk.request("conv-2")
    queued = desk.wait_event("conversation.queued", conversation="conv-2")
    assert queued["reason"] == "noAgent"
    assert desk.event_list("offer.made", conversation="conv-2") == []

    desk.publish("session.end", agent="alice", conversation="conv-1")
    ended = desk.wait_event("conversation.ended", conversation="conv-1")
    assert ended["reason"] == "agent" and ended["agent"] == "alice"
    desk.wait_ws("alice", "session.ended", conversation="conv-1")
    desk.wait_event("offer.made", conversation="conv-2", agent="alice")
    finish(desk)


def test_inactivity_warns_then_closes_once_and_a_user_reply_stops_the_clock(desk):
    desk.configure(autoAccept=True, inactivityMs=1500, warningMs=800, closureText="Closed for inactivity.",
                   warningText="Are you still there?")
    desk.add_agent("alice", capacity=5)
    desk.request("conv-quiet")
    desk.request("conv-replied")
    desk.wait_event("conversation.assigned", conversation="conv-quiet")
    desk.wait_event("conversation.assigned", conversation="conv-replied")

    for conversation in ("conv-quiet", "conv-replied"):
        desk.publish("message.posted", conversation=conversation, **{"from": "agent"}, agent="alice",
                     sentAt=now_rfc3339())
    desk.publish("message.posted", conversation="conv-replied", **{"from": "user"}, sentAt=now_rfc3339())

    warning = desk.wait_outbound("inactivity.warning", conversation="conv-quiet")
    assert warning["text"] == "Are you still there?" and warning["user"] == "u-conv-quiet" and warning["idempotencyKey"]
    closure = desk.wait_outbound("closure.message", conversation="conv-quiet")
    assert closure["idempotencyKey"] == "closure:conv-quiet"
    assert closure["text"] == "Closed for inactivity." and closure["user"] == "u-conv-quiet"
    assert desk.outbound.index(warning) < desk.outbound.index(closure)
    ended = desk.wait_event("conversation.ended", conversation="conv-quiet")
    assert ended["reason"] == "inactivity"
    desk.wait_ws("alice", "session.ended", conversation="conv-quiet")

    # Another full inactivity period: the replied conversation must stay open, the closed one stays closed once.
    desk.observe_for(2.0)
    assert len(desk.outbound_list("closure.message", conversation="conv-quiet")) == 1
    assert desk.outbound_list("closure.message", conversation="conv-replied") == []
    assert desk.outbound_list("inactivity.warning", conversation="conv-replied") == []
    assert desk.event_list("conversation.ended", conversation="conv-replied") == []
    finish(desk)


def test_an_inactivity_limit_of_zero_never_closes_and_a_limit_set_later_counts_from_the_agents_message(desk):
    desk.configure(autoAccept=True, inactivityMs=0, warningMs=500)
    desk.add_agent("alice", capacity=5)
    desk.request("conv-patient")
    desk.wait_event("conversation.assigned", conversation="conv-patient")
    # Written a minute ago: any limit under a minute has run out, and 0 must still never close.
    desk.publish("message.posted", conversation="conv-patient", **{"from": "agent"}, agent="alice",
                 sentAt=rfc3339(time.time() - 60))

    desk.observe_for(3.0)
    assert desk.outbound == []
    assert desk.event_list("conversation.ended", conversation="conv-patient") == []

    # The Closer kept the agent's message: a limit of 30 s set now closes at once, not 30 s from now.
    desk.configure(inactivityMs=30_000)
    closure = desk.wait_outbound("closure.message", conversation="conv-patient", timeout=AT_ONCE)
    assert closure["idempotencyKey"] == "closure:conv-patient"
    assert desk.wait_event("conversation.ended", conversation="conv-patient")["reason"] == "inactivity"
    finish(desk)


def test_missed_rings_put_the_agent_on_break(desk):
    desk.configure(ringMs=700, countdownEveryMs=0, missesBeforeBreak=2, maxOfferAttempts=5, inactivityMs=0)
    desk.add_agent("alice", capacity=2)
    desk.request("conv-missed-1")
    desk.request("conv-missed-2")

    changed = desk.wait_event("agent.changed", agent="alice", status="break", timeout=20)
    assert changed["reason"] == "missedRings"
    assert len(desk.event_list("offer.expired", agent="alice")) == 2
    status = desk.wait_ws("alice", "status.changed", status="break")
    assert status["reason"] == "missedRings"
    finish(desk)


def test_a_pass_that_runs_out_of_attempts_waits_at_the_head_of_the_queue_until_an_agent_comes_online(desk):
    desk.configure(ringMs=1000, countdownEveryMs=0, maxOfferAttempts=2, missesBeforeBreak=10, inactivityMs=0)
    desk.add_agent("alice")
    desk.add_agent("bob")
    desk.add_agent("carol", status=None)
    desk.request("conv-pass")

    first = desk.wait_event("offer.made", conversation="conv-pass", attempt=1)
    second = desk.wait_event("offer.made", conversation="conv-pass", attempt=2)
    assert second["agent"] != first["agent"]
    queued = desk.wait_event("conversation.queued", conversation="conv-pass", reason="attemptsExhausted")
    assert queued["position"] == 1, queued.body
    # The two agents who let it ring out are not rung with it again in this pass.
    desk.observe_for(1.5)
    assert len(desk.event_list("offer.made", conversation="conv-pass")) == 2
    # An agent coming online starts a new pass, from attempt 1.
    desk.publish("agent.status", agent="carol", status="online")
    again = desk.wait_event("offer.made", conversation="conv-pass", agent="carol", timeout=AT_ONCE)
    assert again["attempt"] == 1 and again["seq"] > queued["seq"], again.body
    desk.accept("carol", "conv-pass", again["offer"])
    desk.wait_event("conversation.assigned", conversation="conv-pass", agent="carol")
    finish(desk)


def test_offers_go_only_to_agents_of_the_conversations_group(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    # Alice is free too, but not in billing.
    desk.add_agent("alice", groups=["sales"])
    desk.add_agent("bob", groups=["billing", "sales"])
    desk.request("conv-billing", group="billing")
    offer = desk.wait_event("offer.made", conversation="conv-billing")
    assert offer["agent"] == "bob", offer.body
    # With bob busy, a billing conversation waits rather than ring alice.
    desk.accept("bob", "conv-billing", offer["offer"])
    desk.wait_event("conversation.assigned", conversation="conv-billing", agent="bob")
    desk.request("conv-billing-2", group="billing")
    queued = desk.wait_event("conversation.queued", conversation="conv-billing-2")
    assert queued["reason"] == "noAgent", queued.body
    desk.observe_for(1.0)
    assert not desk.event_list("offer.made", conversation="conv-billing-2")
    finish(desk)


def test_an_agent_on_break_gets_no_offers_until_back_online(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice", status="break")
    desk.request("conv-break")
    queued = desk.wait_event("conversation.queued", conversation="conv-break")
    assert queued["reason"] == "noAgent", queued.body
    desk.observe_for(1.0)
    assert not desk.event_list("offer.made", conversation="conv-break")

    desk.publish("agent.status", agent="alice", status="online")
    desk.wait_ws("alice", "status.changed", status="online")
    offer = desk.wait_event("offer.made", conversation="conv-break", agent="alice", timeout=AT_ONCE)
    desk.wait_ws("alice", "ring", offer=offer["offer"])
    finish(desk)


def test_decline_reoffers_at_once(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice")
    desk.add_agent("bob")
    desk.request("conv-d")
    first = desk.wait_event("offer.made", conversation="conv-d")
    desk.publish("offer.decline", agent=first["agent"], conversation="conv-d", offer=first["offer"], reason="busy")

    declined = desk.wait_event("offer.declined", offer=first["offer"])
    assert declined["agent"] == first["agent"] and declined["reason"] == "busy"
    desk.wait_ws(first["agent"], "ring.stopped", offer=first["offer"], reason="declined")
    # Well before the first ring would have expired.
    second = desk.wait_event("offer.made", conversation="conv-d", attempt=2, timeout=AT_ONCE)
    assert second["agent"] != first["agent"]
    finish(desk)


def test_going_offline_withdraws_rings(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice")
    desk.request("conv-o")
    offer = desk.wait_event("offer.made", conversation="conv-o", agent="alice")
    desk.wait_ws("alice", "ring", offer=offer["offer"])
    desk.publish("agent.status", agent="alice", status="offline")

    withdrawn = desk.wait_event("offer.withdrawn", offer=offer["offer"], timeout=AT_ONCE)
    assert withdrawn["reason"] == "agentOffline" and withdrawn["agent"] == "alice"
    desk.wait_ws("alice", "ring.stopped", offer=offer["offer"], reason="withdrawn", timeout=AT_ONCE)
    finish(desk)


def test_transfer_to_an_agent(desk):
    desk.configure(autoAccept=True, inactivityMs=0)
    desk.add_agent("alice")
    desk.add_agent("bob", status=None)
    desk.request("conv-t")
    desk.wait_event("conversation.assigned", conversation="conv-t", agent="alice")
    desk.publish("agent.status", agent="bob", status="online")
    desk.publish("session.transfer", agent="alice", conversation="conv-t", toAgent="bob")

    moved = desk.wait_event("conversation.assigned", conversation="conv-t", agent="bob")
    assert moved["mode"] == "transferred", moved.body
    desk.wait_ws("alice", "session.ended", conversation="conv-t")
    desk.wait_ws("bob", "session.started", conversation="conv-t")
    finish(desk)


def test_transfer_to_a_group(desk):
    desk.configure(autoAccept=True, inactivityMs=0)
    desk.add_agent("alice", groups=["sales"])
    desk.add_agent("carol", groups=["billing"])
    desk.request("conv-g", group="sales")
    desk.wait_event("conversation.assigned", conversation="conv-g", agent="alice")
    desk.publish("session.transfer", agent="alice", conversation="conv-g", toGroup="billing")

    desk.wait_event("conversation.assigned", conversation="conv-g", agent="carol")
    desk.wait_ws("alice", "session.ended", conversation="conv-g")
    desk.wait_ws("carol", "session.started", conversation="conv-g")
    finish(desk)


def test_agent_sync_answers_with_rings_and_sessions(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice", capacity=2)
    desk.request("conv-served")
    served = desk.wait_event("offer.made", conversation="conv-served")
    desk.accept("alice", "conv-served", served["offer"])
    desk.wait_event("conversation.assigned", conversation="conv-served")
    desk.request("conv-ringing")
    ringing = desk.wait_event("offer.made", conversation="conv-ringing")

    desk.publish("agent.sync", agent="alice")
    state = desk.wait_event("agent.state", agent="alice")
    assert state["status"] == "online"
    assert ringing["offer"] in json.dumps(state["rings"]) and "conv-served" not in json.dumps(state["rings"])
    assert "conv-served" in json.dumps(state["sessions"]) and "conv-ringing" not in json.dumps(state["sessions"])
    answer = desk.wait_ws("alice", "state")
    assert answer["rings"] == state["rings"] and answer["sessions"] == state["sessions"]
    finish(desk)


def test_rejected_agent_command_is_answered_once(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice")
    command = desk.accept("alice", "conv-never-requested", "no-such-offer")
    rejected = desk.wait_event("command.rejected", command=command)
    assert rejected["reason"] == "unknownConversation" and rejected["agent"] == "alice"
    desk.wait_ws("alice", "command.rejected", command=command)
    desk.observe_for(1.0)
    assert len(desk.event_list("command.rejected", command=command)) == 1
    assert len(desk.ws_list("alice", "command.rejected", command=command)) == 1
    finish(desk)


def test_partial_configure_changes_only_the_fields_it_names(desk):
    desk.configure(ringMs=1234, inactivityMs=0)
    desk.configure(countdownEveryMs=0)
    settings = desk.wait_event("desk.configured", count=2)["settings"]
    assert settings["ringMs"] == 1234 and settings["countdownEveryMs"] == 0 and settings["inactivityMs"] == 0
    assert settings["maxOfferAttempts"] == 3 and settings["missesBeforeBreak"] == 3
    assert settings["routing"] == "longestIdle" and settings["autoAccept"] is False
    finish(desk)


def test_higher_priority_is_offered_first(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice", status=None)
    desk.request("conv-low")
    desk.request("conv-high", priority=5)
    desk.wait_event("conversation.queued", conversation="conv-high")
    desk.publish("agent.status", agent="alice", status="online")
    first = desk.wait_event("offer.made")
    assert first["conversation"] == "conv-high"
    finish(desk)


def test_preferred_agent_is_offered_first(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice")
    desk.add_agent("bob")
    desk.request("conv-pref", preferredAgent="bob")
    assert desk.wait_event("offer.made", conversation="conv-pref")["agent"] == "bob"
    finish(desk)


def assigned_in_turn(desk, *conversations):
    """Requests each conversation once the one before it is assigned; returns who got each."""
    agents = []
    for conversation in conversations:
        desk.request(conversation)
        agents.append(desk.wait_event("conversation.assigned", conversation=conversation)["agent"])
    return agents


def end_sessions(desk, agent, *conversations):
    for conversation in conversations:
        desk.publish("session.end", agent=agent, conversation=conversation)
        desk.wait_event("conversation.ended", conversation=conversation)


# Each routing policy's test builds a history in which the other two policies would pick another agent.
def alice_and_bob_serve_at_once(desk, routing):
    desk.configure(routing=routing, autoAccept=True, inactivityMs=0)
    desk.add_agent("alice", capacity=5)
    desk.add_agent("bob", capacity=5)


def test_least_busy_routing_offers_the_agent_with_the_fewest_conversations(desk):
    alice_and_bob_serve_at_once(desk, routing="leastBusy")
    assert assigned_in_turn(desk, "conv-1", "conv-2", "conv-3", "conv-4") == ["alice", "bob", "alice", "bob"]
    # Alice holds two. Bob's release is newer than her last assignment (longestIdle would pick her) and her turn
    # is older than his (so would roundRobin).
    end_sessions(desk, "bob", "conv-2", "conv-4")
    assert assigned_in_turn(desk, "conv-5", "conv-6") == ["bob", "bob"]
    finish(desk)


def test_round_robin_routing_gives_the_turn_to_the_agent_given_a_conversation_least_recently(desk):
    alice_and_bob_serve_at_once(desk, routing="roundRobin")
    assert assigned_in_turn(desk, "conv-1", "conv-2", "conv-3", "conv-4") == ["alice", "bob", "alice", "bob"]
    # Bob is now the least busy (leastBusy would pick him), and alice the one released last (longestIdle would
    # pick bob): the turn is still alice's, then bob's.
    end_sessions(desk, "bob", "conv-2", "conv-4")
    end_sessions(desk, "alice", "conv-1")
    assert assigned_in_turn(desk, "conv-5", "conv-6", "conv-7") == ["alice", "bob", "alice"]
    finish(desk)


def test_longest_idle_routing_counts_a_release_as_the_agents_latest_assignment(desk):
    alice_and_bob_serve_at_once(desk, routing="longestIdle")
    assert assigned_in_turn(desk, "conv-1", "conv-2", "conv-3") == ["alice", "bob", "alice"]
    # Bob is now the least busy (leastBusy would pick him) and his turn is older than alice's (so would roundRobin),
    # but his release is newer than her last assignment.
    end_sessions(desk, "bob", "conv-2")
    assert assigned_in_turn(desk, "conv-4") == ["alice"]
    finish(desk)


def test_user_leaving_withdraws_the_ring(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice")
    desk.request("conv-left")
    offer = desk.wait_event("offer.made", conversation="conv-left")
    desk.publish("conversation.ended", conversation="conv-left", by="user")

    withdrawn = desk.wait_event("offer.withdrawn", offer=offer["offer"], timeout=AT_ONCE)
    assert withdrawn["reason"] == "conversationEnded"
    assert desk.wait_event("conversation.ended", conversation="conv-left")["reason"] == "user"
    desk.wait_ws("alice", "ring.stopped", offer=offer["offer"], reason="withdrawn", timeout=AT_ONCE)
    finish(desk)


def test_an_admin_ending_a_served_conversation_ends_the_session_and_frees_the_agent(desk):
    desk.configure(autoAccept=True, inactivityMs=0)
    desk.add_agent("alice")
    desk.request("conv-admin")
    desk.wait_event("conversation.assigned", conversation="conv-admin", agent="alice")
    desk.request("conv-admin-next")
    desk.wait_event("conversation.queued", conversation="conv-admin-next")
    desk.publish("conversation.ended", conversation="conv-admin", by="admin")

    ended = desk.wait_event("conversation.ended", conversation="conv-admin", timeout=AT_ONCE)
    assert (ended["reason"], ended.get("agent")) == ("admin", "alice"), ended.body
    assert desk.wait_ws("alice", "session.ended", conversation="conv-admin")["reason"] == "admin"
    # Her place goes to the conversation that waited.
    desk.wait_event("conversation.assigned", conversation="conv-admin-next", agent="alice", timeout=AT_ONCE)
    finish(desk)


def test_an_accept_of_a_conversation_that_moved_on_is_rejected_once_and_takes_nothing(desk):
    desk.configure(ringMs=LONG_RING, countdownEveryMs=0, inactivityMs=0)
    desk.add_agent("alice")
    desk.add_agent("bob")
    desk.request("conv-moved")
    first = desk.wait_event("offer.made", conversation="conv-moved")
    desk.publish("offer.decline", agent=first["agent"], conversation="conv-moved", offer=first["offer"])
    second = desk.wait_event("offer.made", conversation="conv-moved", attempt=2)
    desk.accept(second["agent"], "conv-moved", second["offer"])
    desk.wait_event("conversation.assigned", conversation="conv-moved", agent=second["agent"])

    # The first agent clicks the ring they declined, once while it is served and once after it ended.
    served = desk.accept(first["agent"], "conv-moved", first["offer"])
    assert desk.wait_event("command.rejected", command=served)["reason"] == "offerExpired"
    desk.publish("conversation.ended", conversation="conv-moved", by="user")
    desk.wait_event("conversation.ended", conversation="conv-moved")
    ended = desk.accept(first["agent"], "conv-moved", first["offer"])
    assert desk.wait_event("command.rejected", command=ended)["reason"] == "offerExpired"
    desk.observe_for(1.0)
    for command in (served, ended):
        assert len(desk.event_list("command.rejected", command=command)) == 1
    assigned = desk.event_list("conversation.assigned", conversation="conv-moved")
    assert [a["agent"] for a in assigned] == [second["agent"]]
    finish(desk)


def test_removing_an_agent_withdraws_its_rings_and_requeues_its_sessions(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice", capacity=2)
    desk.request("conv-kept")
    kept = desk.wait_event("offer.made", conversation="conv-kept")
    desk.accept("alice", "conv-kept", kept["offer"])
    desk.wait_event("conversation.assigned", conversation="conv-kept")
    desk.request("conv-ringing")
    ringing = desk.wait_event("offer.made", conversation="conv-ringing")
    desk.publish("agent.remove", agent="alice")

    assert desk.wait_event("offer.withdrawn", offer=ringing["offer"])["reason"] == "agentRemoved"
    assert desk.wait_event("conversation.queued", conversation="conv-kept", reason="agentRemoved")
    assert desk.wait_event("agent.changed", agent="alice", reason="removed")
    desk.wait_ws("alice", "ring.stopped", offer=ringing["offer"], reason="withdrawn")
    desk.wait_ws("alice", "session.ended", conversation="conv-kept")

    desk.add_agent("bob", capacity=2)
    desk.wait_event("offer.made", conversation="conv-kept", agent="bob")
    desk.wait_event("offer.made", conversation="conv-ringing", agent="bob")
    finish(desk)


# Bad input: each is dead-lettered with its reason, and service goes on.

def assert_service_goes_on(desk, conversation):
    desk.request(conversation)
    desk.wait_event("offer.made", conversation=conversation, agent="alice")


def prepared(desk):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice", capacity=10)
    desk.ready()


def assert_dead_lettered(dead_letters, message_id):
    properties, _ = dead_letters.wait_for(message_id)
    reason = (properties.headers or {}).get("x-switchboard-reason")
    assert reason, f"dead letter {message_id} has no x-switchboard-reason header: {properties.headers}"
    return reason


def test_unknown_desk_is_dead_lettered(desk, dead_letters):
    prepared(desk)
    message_id = desk.publish("conversation.requested", desk=desk.desk + "-unknown", conversation="c", user="u")
    assert_dead_lettered(dead_letters, message_id)
    assert_service_goes_on(desk, "conv-after-unknown")


def test_a_desk_header_absent_or_not_the_bodys_desk_is_dead_lettered(desk, dead_letters):
    prepared(desk)
    # Shards are chosen by the header: a message whose header names another desk may have reached the wrong one.
    body = {"v": 1, "type": "conversation.requested", "desk": desk.desk, "at": now_rfc3339(),
            "conversation": "conv-header", "user": "u"}
    for headers, problem in (({"desk": desk.desk + "-other"}, f'must equal the body\'s desk "{desk.desk}"'),
                             ({}, "is required")):
        message_id = f"header-{time.monotonic_ns()}"
        desk.publish_raw(json.dumps({**body, "id": message_id}).encode(), "conversation.requested",
                         message_id=message_id, headers=headers)
        reason = assert_dead_lettered(dead_letters, message_id)
        assert reason.startswith(f"conversation.requested: field header desk: {problem}"), reason
    assert_service_goes_on(desk, "conv-after-header")
    assert desk.event_list("offer.made", conversation="conv-header") == []


def test_invalid_json_is_dead_lettered(desk, dead_letters):
    prepared(desk)
    message_id = desk.publish_raw(b'{"v": 1, "type": "conversation.requested", ', "conversation.requested")
    assert_dead_lettered(dead_letters, message_id)
    assert_service_goes_on(desk, "conv-after-invalid")


def test_unknown_major_version_is_dead_lettered(desk, dead_letters):
    prepared(desk)
    message_id = desk.publish("conversation.requested", v=2, conversation="conv-v2", user="u")
    assert_dead_lettered(dead_letters, message_id)
    assert desk.event_list("offer.made", conversation="conv-v2") == []
    assert_service_goes_on(desk, "conv-after-version")


def test_huge_message_is_dead_lettered(desk, dead_letters):
    prepared(desk)
    message_id = desk.publish("conversation.requested", conversation="conv-huge", user="u",
                              attributes={"blob": "x" * 1_000_000})
    assert_dead_lettered(dead_letters, message_id)
    assert_service_goes_on(desk, "conv-after-huge")
    assert desk.event_list("offer.made", conversation="conv-huge") == []


def test_invalid_agent_command_is_dead_lettered_and_answered(desk, dead_letters):
    prepared(desk)
    message_id = desk.publish("offer.accept", agent="alice", conversation="conv-z")
    assert_dead_lettered(dead_letters, message_id)
    rejected = desk.wait_ws("alice", "command.rejected", command=message_id)
    assert rejected["reason"] == "invalid"
    assert_service_goes_on(desk, "conv-after-bad-command")


def test_a_malformed_user_message_is_dead_lettered_by_the_closer_which_goes_on(desk, dead_letters):
    desk.configure(autoAccept=True, inactivityMs=1000, closureText="Closed.")
    desk.add_agent("alice", capacity=5)
    desk.request("conv-posted")
    desk.wait_event("conversation.assigned", conversation="conv-posted")

    bad = desk.publish("message.posted", conversation="conv-posted", **{"from": "robot"}, sentAt=now_rfc3339())
    [(properties, _)] = dead_letters.wait_for_services(bad, {"closer"})
    reason = properties.headers["x-switchboard-reason"]
    assert reason.startswith("message.posted: field from:"), reason

    desk.publish("message.posted", conversation="conv-posted", **{"from": "agent"}, agent="alice", sentAt=now_rfc3339())
    assert desk.wait_outbound("closure.message", conversation="conv-posted")["text"] == "Closed."
    finish(desk)


def test_a_malformed_router_event_is_dead_lettered_by_each_service_that_reads_it(desk, dead_letters):
    prepared(desk)
    # On a desk of its own, so that this desk's sequence stays whole. Without its agent: the Notifier reads
    # every event, the Closer the assignments among those it needs.
    stray = desk.desk + "-stray"
    message_id = f"bad-event-{time.monotonic_ns()}"
    body = {"v": 1, "type": "conversation.assigned", "id": message_id, "desk": stray, "at": now_rfc3339(), "seq": 1,
            "conversation": "c-stray", "user": "u-stray", "mode": "accepted"}
    desk.channel.basic_publish(
        "switchboard.events", "conversation.assigned", json.dumps(body).encode(),
        pika.BasicProperties(
            content_type="application/json", delivery_mode=2, message_id=message_id, type="conversation.assigned",
            timestamp=int(time.time()), headers={"desk": stray}),
    )
    letters = dead_letters.wait_for_services(message_id, {"notifier", "closer"})
    for properties, _ in letters:
        reason = properties.headers["x-switchboard-reason"]
        assert reason == "conversation.assigned: field agent: is required", reason
    # Both go on: a ring reaches the workstation, and the assignment after it is taken.
    desk.request("conv-after-bad-event")
    offer = desk.wait_ws("alice", "ring", conversation="conv-after-bad-event")
    desk.accept("alice", "conv-after-bad-event", offer["offer"])
    desk.wait_ws("alice", "session.started", conversation="conv-after-bad-event")
    finish(desk)


def test_events_log_stream_keeps_the_desks_events(desk, broker):
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice")
    desk.ready()
    wanted = {m["id"] for m in desk.events}

    connection = pika.BlockingConnection(connection_parameters(broker.url))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=500)
        logged = set()

        def on_message(channel, method, properties, body):
            if json.loads(body).get("desk") == desk.desk:
                logged.add(properties.message_id)
            channel.basic_ack(method.delivery_tag)

        channel.basic_consume("switchboard.events.log", on_message, arguments={"x-stream-offset": "first"})
        deadline = time.monotonic() + 30
        while not wanted <= logged:
            assert time.monotonic() < deadline, f"events missing from switchboard.events.log: {wanted - logged}"
            connection.process_data_events(time_limit=0.1)
    finally:
        # Closing nacks what the client holds unread, which a stream refuses by closing the connection.
        try:
            connection.close()
        except pika.exceptions.ConnectionClosedByBroker:
            pass


def publish_as(amqp_url, user_id, desk, message_type, routing_key=None, **fields):
    """Publishes one well-formed message to `switchboard.in` on a connection of its own, with `user_id`
    (which the broker checks against that connection's user) or none, under `routing_key` (its type unless
    given)."""
    message_id = f"as-{time.monotonic_ns()}"
    body = {"v": 1, "type": message_type, "id": message_id, "desk": desk, "at": now_rfc3339(), **fields}
    connection = pika.BlockingConnection(connection_parameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            "switchboard.in", routing_key or message_type, json.dumps(body).encode(),
            pika.BasicProperties(
                content_type="application/json", delivery_mode=2, message_id=message_id, type=message_type,
                timestamp=int(time.time()), headers={"desk": desk}, user_id=user_id,
            ),
        )
    finally:
        connection.close()
    return message_id


def test_agent_command_from_a_broker_user_without_a_rule_is_forbidden(desk, dead_letters, broker):
    # switchboard-ops (deploy/rabbitmq/definitions.json) may write to switchboard.in, but the Router was
    # started with --agent-command-users naming only the test user and the gateway's.
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    desk.add_agent("alice")
    desk.request("conv-forbidden")
    offer = desk.wait_event("offer.made", conversation="conv-forbidden", agent="alice")
    ops_url = broker.url.replace("://switchboard:switchboard@", "://switchboard-ops:change-me@")
    accept = dict(agent="alice", conversation="conv-forbidden", offer=offer["offer"])

    from_ops = publish_as(ops_url, "switchboard-ops", desk.desk, "offer.accept", **accept)
    without_user = publish_as(broker.url, None, desk.desk, "offer.accept", **accept)

    for command in (from_ops, without_user):
        rejected = desk.wait_event("command.rejected", command=command)
        assert rejected["reason"] == "forbidden" and rejected["agent"] == "alice", rejected
        desk.wait_ws("alice", "command.rejected", command=command, reason="forbidden")
    assert assert_dead_lettered(dead_letters, from_ops) == (
        f'forbidden: broker user "switchboard-ops" may not send agent commands for desk "{desk.desk}"'
    )
    assert assert_dead_lettered(dead_letters, without_user) == (
        "forbidden: an agent command must carry the broker-validated user_id property"
    )
    assert desk.event_list("conversation.assigned", conversation="conv-forbidden") == []

    # The ring is still live: the same accept from an allowed user takes it.
    desk.accept("alice", "conv-forbidden", offer["offer"])
    assigned = desk.wait_event("conversation.assigned", conversation="conv-forbidden")
    assert assigned["agent"] == "alice" and assigned["offer"] == offer["offer"]
    finish(desk)


def test_a_body_under_a_routing_key_not_its_type_is_dead_lettered_and_changes_nothing(desk, dead_letters, broker):
    # The broker lets the gateway's user (deploy/rabbitmq/definitions.json) publish to switchboard.in under
    # agent commands' routing keys only; a desk.configure body under one of them must not configure the desk.
    desk.configure(ringMs=LONG_RING, inactivityMs=0)
    gateway_url = broker.url.replace("://switchboard:switchboard@", "://switchboard-gateway:change-me@")
    sneaked = publish_as(
        gateway_url, "switchboard-gateway", desk.desk, "desk.configure", routing_key="agent.status",
        settings={"ringMs": 1234},
    )
    assert assert_dead_lettered(dead_letters, sneaked) == (
        'desk.configure: field routing key: must be the message type "desk.configure", not "agent.status"'
    )
    # The next desk.configured carries the full settings after its change: the ring is as it was.
    desk.configure(countdownEveryMs=500)
    latest = desk.wait_event("desk.configured", count=2)
    assert (latest["settings"]["ringMs"], latest["settings"]["countdownEveryMs"]) == (LONG_RING, 500), latest
    finish(desk)


def test_messages_other_than_agent_commands_need_no_user_id(desk, broker):
    publish_as(broker.url, None, desk.desk, "desk.configure", settings={"ringMs": LONG_RING})
    desk.wait_event("desk.configured")
    finish(desk)
