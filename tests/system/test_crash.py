"""Crash tests: a service, or the broker, killed with SIGKILL and started again, seen only through the public
exchanges.

They restart the session's services, so they run after the contract tests (pytest takes files in name
order: test_contract.py, then test_crash.py). The broker's crash comes last in this file; every test that
uses a desk afterwards begins once every running service is ready again.
"""

import os
import random
import time
import uuid
from collections import Counter

from conftest import (
    SERVICES, TEST_USER, DurableDeskClient, assert_journals_replay_what_was_published, distinct, now_rfc3339,
)


def accept_every_ring(desk, accepted):
    """Acts as every agent that clicks Accept on each offer it has not answered yet."""
    for offer in desk.event_list("offer.made"):
        if offer["offer"] not in accepted:
            accepted.add(offer["offer"])
            desk.accept(offer["agent"], offer["conversation"], offer["offer"])


def assign_all_and_check_each_once(desk, conversations, accepted, when):
    """Accepts every ring until each conversation is assigned, then checks that none was assigned twice and
    that every ring ended one way or another."""

    def unassigned():
        return set(conversations) - {m["conversation"] for m in desk.event_list("conversation.assigned")}

    def all_assigned():
        accept_every_ring(desk, accepted)
        return not unassigned()

    try:
        desk.wait(all_assigned, 120, f"every conversation assigned {when}")
    except AssertionError as timeout:
        raise AssertionError(f"never assigned: {sorted(unassigned())}\n{timeout}") from None
    desk.observe_for(1.0)

    received = desk.event_list("conversation.assigned")
    assigned = distinct(received)
    print(f"conversation.assigned: {len(received)} received, {len(assigned)} distinct")
    assignments = Counter(m["conversation"] for m in assigned)
    twice = {c: n for c, n in assignments.items() if n > 1}
    assert not twice, f"assigned more than once: {twice}"
    # Every ring that was live ended one way or the other: accepted (assigned), expired, or rejected as stale.
    assigned_offers = {m["offer"] for m in desk.event_list("conversation.assigned")}
    expired_offers = {m["offer"] for m in desk.event_list("offer.expired")}
    for offer in desk.event_list("offer.made"):
        if offer["offer"] in assigned_offers or offer["offer"] in expired_offers:
            continue
        rejected = [m for m in desk.event_list("command.rejected", conversation=offer["conversation"])
                    if m.get("agent") == offer["agent"]]
        assert rejected, f"offer neither assigned, expired nor rejected on accept: {offer}"
    desk.assert_gapless()
    desk.assert_router_invariants()
    desk.assert_contract_properties()


def test_router_killed_under_load_loses_no_conversation_and_assigns_none_twice(desk, services):
    conversations = [f"load-{n}" for n in range(200)]
    desk.configure(ringMs=5000, countdownEveryMs=0, maxOfferAttempts=50, missesBeforeBreak=1000, inactivityMs=0)
    # Room for every conversation and more: a conversation whose ring expired goes to another agent.
    for n in range(25):
        desk.add_agent(f"agent-{n}", capacity=10)
    desk.ready()

    accepted = set()
    for conversation in conversations:
        desk.request(conversation)
    desk.wait(lambda: accept_every_ring(desk, accepted) or len(desk.event_list("conversation.assigned")) >= 50,
              60, "50 conversations assigned before the kill")
    killed = services.instances("router")[0]
    services.kill9(killed)
    restarted = services.start("router")
    services.wait_ready(restarted)

    assign_all_and_check_each_once(desk, conversations, accepted, "after the Router restarted")
    assert_journals_replay_what_was_published(services, desk)


def test_closer_killed_with_closes_pending_closes_each_exactly_once(desk, services):
    conversations = [f"idle-{n}" for n in range(30)]
    desk.configure(autoAccept=True, inactivityMs=3000, warningMs=0, countdownEveryMs=0)
    desk.add_agent("alice", capacity=100)
    for conversation in conversations:
        desk.request(conversation)
    desk.wait(lambda: len(desk.event_list("conversation.assigned")) == len(conversations), 30, "all assigned")
    for conversation in conversations:
        desk.publish("message.posted", conversation=conversation, agent="alice", sentAt=now_rfc3339(), **{"from": "agent"})
    desk.pump(0.3)

    services.kill9(services.instances("closer")[0])
    restarted = services.start("closer")
    services.wait_ready(restarted)

    desk.wait(lambda: {m["conversation"] for m in desk.outbound_list("closure.message")} >= set(conversations),
              60, "a closure message for every conversation")
    desk.wait(lambda: {m["conversation"] for m in desk.event_list("conversation.ended", reason="inactivity")}
              >= set(conversations), 30, "every conversation ended for inactivity")
    # Over the rest of the run (another full inactivity period), no conversation gets a second closure.
    desk.observe_for(4.0)
    closures = Counter(m["conversation"] for m in desk.outbound_list("closure.message"))
    assert all(closures[c] == 1 for c in conversations), f"closure counts: {dict(closures)}"
    ended = Counter(m["conversation"] for m in distinct(desk.event_list("conversation.ended")))
    assert all(ended[c] == 1 for c in conversations), f"conversation.ended counts: {dict(ended)}"
    assert all(m["idempotencyKey"] == f"closure:{m['conversation']}" for m in desk.outbound_list("closure.message"))
    assert_journals_replay_what_was_published(services, desk)


def test_notifier_killed_with_rings_live_resumes_countdowns_and_stops_every_ring(desk, services):
    agents = [f"agent-{n}" for n in range(6)]
    # Long enough that the rings to accept are still live once the new Notifier is up, even on a slow machine.
    desk.configure(ringMs=15_000, countdownEveryMs=300, missesBeforeBreak=100, inactivityMs=0)
    for agent in agents:
        desk.add_agent(agent)
    for n in range(len(agents)):
        desk.request(f"ring-{n}")
    offers = desk.wait(lambda: len(desk.event_list("offer.made")) >= len(agents) and desk.event_list("offer.made"),
                       15, "every agent ringing")[: len(agents)]
    desk.wait(lambda: all(desk.ws_list(o["agent"], "ring", offer=o["offer"]) for o in offers), 15, "every ring shown")

    services.kill9(services.instances("notifier")[0])
    # The killed process is gone: a message stamped later than this comes from the new one.
    killed_at = now_rfc3339()
    restarted = services.start("notifier")
    services.wait_ready(restarted)

    def countdown_after_restart(offer):
        later = [m for m in desk.ws_list(offer["agent"], "countdown", offer=offer["offer"]) if m["at"] > killed_at]
        return later[-1]["remainingMs"] if later else None

    desk.wait(lambda: all(countdown_after_restart(o) is not None for o in offers), 15,
              "countdowns resumed for every ring after the Notifier restarted")
    to_accept = offers[: len(offers) // 2]
    for offer in to_accept:
        desk.accept(offer["agent"], offer["conversation"], offer["offer"])

    def stopped(offer):
        return desk.ws_list(offer["agent"], "ring.stopped", offer=offer["offer"])

    desk.wait(lambda: all(stopped(o) for o in offers), 30, "a ring.stopped for every ring")
    for offer in offers:
        reasons = [m["reason"] for m in distinct(stopped(offer))]
        expected = "accepted" if offer in to_accept else "expired"
        assert reasons == [expected], f"{offer['offer']}: ring.stopped reasons {reasons}, expected one {expected}"
    desk.assert_gapless()
    desk.assert_router_invariants()
    assert_journals_replay_what_was_published(services, desk)


def test_standby_router_takes_over_when_the_active_one_dies(desk, services):
    desk.configure(ringMs=10_000, inactivityMs=0)
    desk.add_agent("alice", capacity=10)
    desk.request("before-failover")
    desk.wait_event("offer.made", conversation="before-failover")

    active = services.instances("router")[0]
    standby = services.start("router")
    services.wait_ready(standby)
    services.kill9(active)
    killed_at = time.monotonic()

    desk.request("after-failover")
    desk.wait_event("offer.made", conversation="after-failover", timeout=30)
    took = time.monotonic() - killed_at
    print(f"standby Router answered {took:.2f}s after the active one was killed")
    desk.assert_gapless()
    desk.assert_router_invariants()
    assert_journals_replay_what_was_published(services, desk)


def test_router_that_cannot_write_its_journal_holds_its_input_until_it_can(desk, services, broker, dead_letters):
    desk.configure(autoAccept=True, inactivityMs=0)
    desk.add_agent("alice", capacity=100)
    desk.ready()
    # Publishing to the default exchange refused to the services' broker user: a Router started now can write
    # neither its marker nor any journal record, so it cannot take its shards over. (Channels check permissions
    # when they open, so the Router is started after the change.)
    broker.ctl("set_permissions", "-p", "switchboard", TEST_USER, ".*", r"^(?!amq\.default$).*", ".*")
    try:
        for instance in services.instances("router"):
            services.kill9(instance)
        router = services.start("router")
        requests = [desk.request(f"held-{n}") for n in range(10)]
        # Far longer than the shard queue's delivery limit (5) of immediate requeues would take.
        desk.observe_for(5)
        assert not desk.event_list("conversation.assigned"), "assigned while the Router could not journal"
    finally:
        broker.ctl("set_permissions", "-p", "switchboard", TEST_USER, ".*", ".*", ".*")
    services.wait_ready(router)
    desk.wait(lambda: len(desk.event_list("conversation.assigned")) == len(requests), 60,
              "every request held through the outage assigned once the Router could journal again")
    dead = [p.message_id for p, _ in dead_letters.received() if p.message_id in requests]
    assert not dead, f"requests dead-lettered during the outage: {dead}"
    desk.assert_gapless()
    desk.assert_router_invariants()


def test_services_killed_at_random_through_whole_lifecycles_keep_every_guarantee(desk, services, dead_letters):
    """Two instances of every service; every second or two, just after a burst of requests, one instance is
    killed with SIGKILL and another started, while conversations go through their whole lifecycle: rings
    accepted or left to expire, End Session, inactivity closes. Once the killing stops and every conversation
    has ended: each was assigned once and ended once, and closed for inactivity once exactly when it was left
    idle; every offer was accepted or expired, and every ring shown was stopped once, for that reason; and
    nothing was dead-lettered.

    SWITCHBOARD_CHAOS_SECONDS (default 40) and SWITCHBOARD_CHAOS_SEED change how long it kills and in what order
    (`make chaos DURATION=600 SEED=n`). The seed decides the kills, not the timing around them, so a run is not
    replayed exactly."""
    seconds = float(os.environ.get("SWITCHBOARD_CHAOS_SECONDS") or 40)
    seed = int(os.environ.get("SWITCHBOARD_CHAOS_SEED") or random.randrange(1 << 32))
    chance = random.Random(seed)
    print(f"chaos: seed {seed}, {seconds:.0f} s of kills")
    # Rings short enough that many expire, an inactivity time that runs out while instances are being killed.
    desk.configure(ringMs=3000, countdownEveryMs=0, maxOfferAttempts=50, missesBeforeBreak=1000, inactivityMs=4000,
                   warningMs=0, closureText="Closed for inactivity.")
    for n in range(12):
        desk.add_agent(f"agent-{n}", capacity=4)
    desk.ready()
    # A setting out of range would dead-letter the configure, and the desk would run on defaults.
    assert desk.event_list("desk.configured")[0]["settings"]["ringMs"] == 3000
    for service in SERVICES:
        while len(services.instances(service)) < 2:
            services.wait_ready(services.start(service))

    # Each conversation's part: "ended" (the user writes, the agent ends the session), "idle" (the agent writes
    # and the user never answers: closed for inactivity), "expiry" (its first ring is left to expire).
    kinds = {}
    answered_offers = set()
    acted = set()
    kills = Counter()

    def play():
        for offer in desk.event_list("offer.made"):
            token, conversation = offer["offer"], offer["conversation"]
            if token in answered_offers:
                continue
            answered_offers.add(token)
            first = desk.event_list("offer.made", conversation=conversation)[0]["offer"] == token
            if kinds[conversation] == "expiry" and first:
                continue  # left to ring out
            desk.accept(offer["agent"], conversation, token)
        for assigned in desk.event_list("conversation.assigned"):
            conversation, agent = assigned["conversation"], assigned["agent"]
            if conversation in acted:
                continue
            acted.add(conversation)
            if kinds[conversation] == "idle":
                desk.publish("message.posted", conversation=conversation, **{"from": "agent"}, agent=agent,
                             sentAt=now_rfc3339())
            else:
                desk.publish("message.posted", conversation=conversation, **{"from": "user"}, sentAt=now_rfc3339())
                desk.publish("session.end", agent=agent, conversation=conversation)

    def play_for(duration):
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            play()
            desk.pump(0.05)

    started = time.monotonic()
    number = 0
    while time.monotonic() - started < seconds:
        # A burst of requests, and the kill a moment later: while the services are busy with it, with effects
        # of theirs in flight.
        for _ in range(10):
            conversation = f"chaos-{number}"
            kinds[conversation] = ("ended", "idle", "expiry")[number % 3]
            desk.request(conversation)
            number += 1
        play_for(chance.uniform(0.0, 0.15))
        service = chance.choice(SERVICES)
        services.kill9(chance.choice(services.instances(service)))
        services.start(service)
        kills[service] += 1
        play_for(chance.uniform(0.5, 2.0))
    print(f"chaos: killed {dict(kills)}; {number} conversations")

    def ended():
        return {m["conversation"] for m in desk.event_list("conversation.ended")}

    def everything_ended():
        play()
        return set(kinds) <= ended()

    try:
        desk.wait(everything_ended, 240, "every conversation ended")
    except AssertionError as timeout:
        raise AssertionError(f"never ended: {sorted(set(kinds) - ended())}\n{timeout}") from None
    desk.observe_for(2.0)

    assigned = Counter(m["conversation"] for m in distinct(desk.event_list("conversation.assigned")))
    assert {c: n for c, n in assigned.items() if n != 1} == {} and set(assigned) == set(kinds), \
        f"assignments: {dict(assigned)}"
    ends = Counter(m["conversation"] for m in distinct(desk.event_list("conversation.ended")))
    assert {c: n for c, n in ends.items() if n != 1} == {}, f"conversation.ended counts: {dict(ends)}"
    closures = Counter(m["conversation"] for m in distinct(desk.outbound_list("closure.message")))
    idle = {c for c, kind in kinds.items() if kind == "idle"}
    assert dict(closures) == {c: 1 for c in idle}, \
        f"closure.message counts {dict(closures)}, expected one for each of {sorted(idle)}"
    expired = {m["conversation"] for m in desk.event_list("offer.expired")}
    assert {c for c, kind in kinds.items() if kind == "expiry"} <= expired, "a ring left to ring out did not expire"
    # Every offer ended as accepted or expired (a late accept is rejected and its offer expires), and every
    # ring an agent saw was stopped once, for that reason.
    outcome = {m["offer"]: "accepted" for m in desk.event_list("conversation.assigned")}
    outcome.update({m["offer"]: "expired" for m in desk.event_list("offer.expired")})
    unended = [m["offer"] for m in desk.event_list("offer.made") if m["offer"] not in outcome]
    assert not unended, f"offers neither accepted nor expired: {unended}"
    # Every fact an agent's workstation must hear of reached it, once: a ring for each offer, a session for each
    # assignment (the Notifier numbers only what it sends, so a fact it lost would leave no gap in `seq`).
    def heard(message_type, *fields):
        return Counter(tuple(m[f] for f in ("agent", *fields)) for m in distinct(desk.workstation) if m["type"] == message_type)

    def told(message_type, *fields):
        return Counter(tuple(m[f] for f in ("agent", *fields)) for m in distinct(desk.event_list(message_type)))

    assert heard("ring", "offer") == told("offer.made", "offer"), "rings heard differ from offers made"
    assert heard("session.started", "conversation") == told("conversation.assigned", "conversation"), \
        "sessions started differ from assignments"
    for ring in distinct(desk.workstation):
        if ring["type"] != "ring":
            continue
        stops = distinct(desk.ws_list(ring["agent"], "ring.stopped", offer=ring["offer"]))
        assert [m["reason"] for m in stops] == [outcome.get(ring["offer"])], \
            f"ring {ring['offer']} to {ring['agent']}: ring.stopped {stops}"
    desk.assert_gapless()
    desk.assert_router_invariants()
    desk.assert_contract_properties()
    dead = [(p.headers or {}).get("x-switchboard-reason") for p, _ in dead_letters.received()
            if (p.headers or {}).get("desk") == desk.desk]
    assert not dead, f"dead-lettered: {dead}"
    assert_journals_replay_what_was_published(services, desk)


def test_broker_killed_under_load_loses_no_conversation_and_assigns_none_twice(services, broker):
    desk = DurableDeskClient(broker.url, f"t{uuid.uuid4().hex[:8]}broker", user_id=TEST_USER)
    try:
        # RabbitMQ 3.10 loses the streams of a node killed in the first minutes after they were declared, and
        # can lose the leader of a quorum queue declared seconds before the kill (see deploy/README.md). One
        # graceful restart of the application after the test's recording queues are declared keeps the streams
        # safe, and (as far as seen) the quorum queues too.
        broker.ctl("stop_app")
        broker.ctl("start_app")
        broker.node("open")
        desk.reconnect(timeout=120)
        conversations = [f"load-{n}" for n in range(200)]
        desk.configure(ringMs=5000, countdownEveryMs=0, maxOfferAttempts=50, missesBeforeBreak=1000, inactivityMs=0)
        for n in range(25):
            desk.add_agent(f"agent-{n}", capacity=10)
        desk.ready(timeout=120)
        accepted = set()
        # Half the conversations, answered as their rings come; the kill finds the services busy with them.
        for conversation in conversations[:100]:
            desk.request(conversation)
            accept_every_ring(desk, accepted)
            desk.pump(0.005)
        print(f"before the kill: {len(desk.event_list('conversation.assigned'))} assigned, {len(accepted)} accepted")
        rings_before = broker.ring_contents()
        broker.kill9()
        broker.node("start")
        desk.reconnect(timeout=120)
        for service in SERVICES:
            for instance in services.instances(service):
                services.wait_ready(instance)
        # The rings decide which shard queue a desk's messages reach: changed, they send the desk's inputs to a
        # shard that does not know it, which dead-letters them.
        rings_after = broker.ring_contents()
        assert rings_after == rings_before, f"hash rings changed:\nbefore {rings_before}\nafter  {rings_after}"
        for conversation in conversations[100:]:
            desk.request(conversation)
        assign_all_and_check_each_once(desk, conversations, accepted, "after the broker came back")
    finally:
        desk.close()
