"""The ops CLI, `switchboard`, as an operator runs it, against the real services: desks and agents, a desk's
state, the events log, dead letters, and the exit status a script acts on."""

import re
import signal
import subprocess
from contextlib import contextmanager

import pytest

from conftest import command_line, output_lines, published_effects, replayed_effects, succeeds, switchboard, wait_until


@pytest.fixture
def cli(services):
    """`switchboard <arguments> --amqp-url <the suite's broker, or url>`, as a command line."""
    return command_line(services)


@contextmanager
def running(cli, *arguments):
    """The command started, with the lines it prints as they come; killed at the end if it is still running."""
    process = subprocess.Popen(
        cli(*arguments), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8")
    try:
        yield process, output_lines(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def eventually_shows(cli, pattern, *arguments, timeout=30):
    """Runs the command until it succeeds with output matching `pattern` (the Router takes what was published a
    moment later)."""
    last = []

    def shown():
        status, out, err = switchboard(cli, *arguments)
        last[:] = [f"exit status {status}\n{out}{err}"]
        return status == 0 and re.search(pattern, out, re.MULTILINE)

    return wait_until(shown, timeout, lambda: f"`switchboard {' '.join(arguments)}` to show {pattern!r}; it showed:\n"
                      + (last[0] if last else "nothing"))


def test_desks_and_agents_are_configured_shown_and_removed(desk_factory, cli):
    client = desk_factory("cli")
    desk = client.desk
    status, out, err = switchboard(cli, "desk", "show", desk)
    assert status == 1 and f"no desk {desk}: the Router has none by that name" in err, (status, out, err)

    assert "confirmed by the broker" in succeeds(cli, "desk", "configure", desk, "--ring-ms", "60000", "--auto-accept", "false")
    succeeds(cli, "agent", "upsert", desk, "ann", "--groups", "sales,support", "--capacity", "2")
    eventually_shows(cli, r"^agents \(1\):\n\s+AGENT\s+STATUS\s+LOAD\s+GROUPS\n\s+ann\s+offline\s+0/2\s+sales,support$",
                     "agent", "list", desk)

    # No agent is online: conversations wait, in order, and the desk's state says so.
    client.request("cli-waits", user="una")
    client.request("cli-next", user="ned")
    shown = eventually_shows(cli, r"^waiting \(2\):", "desk", "show", desk).string
    assert re.search(rf"^desk {desk} \(last event #\d+\)\n  ring 60s, ", shown, re.MULTILINE), shown
    assert re.search(r"^\s+cli-waits\s+una\s+1\s+0\s+-\s+noAgent\s+\d+s\n\s+cli-next\s+ned\s+2\s+0\s+-\s+noAgent\s+\d+s$",
                     shown, re.MULTILINE), shown
    assert "ringing: none" in shown and "serving: none" in shown, shown

    # ann comes online: she rings with the first and, accepting it, rings with the next. Her load counts both,
    # though the Router's events say so only by the offer and the assignment.
    client.publish("agent.status", agent="ann", status="online")
    first = client.wait_event("offer.made", conversation="cli-waits")
    client.accept("ann", "cli-waits", first["offer"])
    second = client.wait_event("offer.made", conversation="cli-next")
    shown = eventually_shows(cli, r"^serving \(1\):", "desk", "show", desk).string
    assert re.search(r"^\s+ann\s+online\s+2/2\s+sales,support$", shown, re.MULTILINE), shown
    assert re.search(rf"^\s+cli-next\s+ned\s+ann\s+1\s+in \d+s\s+{second['offer']}$", shown, re.MULTILINE), shown
    assert re.search(r"^\s+cli-waits\s+una\s+ann\s+accepted\s+\d+s$", shown, re.MULTILINE), shown
    assert "waiting: none" in shown, shown
    # Read from a snapshot, whatever the journal's size, it is the same state.
    from_snapshot = succeeds(cli, "desk", "show", desk, "--read-whole-up-to=-1")
    assert re.sub(r"\d+s\b", "", from_snapshot) == re.sub(r"\d+s\b", "", shown), (from_snapshot, shown)

    succeeds(cli, "agent", "remove", desk, "ann")
    eventually_shows(cli, r"^agents: none$", "agent", "list", desk)


def test_events_tail_follows_a_desks_events_until_ctrl_c(desk_factory, cli):
    desk = desk_factory("tail").desk
    with running(cli, "events", "tail", "--desk", desk, "--from", "first") as (tail, lines):
        succeeds(cli, "desk", "configure", desk)
        succeeds(cli, "agent", "upsert", desk, "tia", "--capacity", "1")
        # One line per event: its time, desk and seq, then what happened.
        wait_until(lambda: any(re.search(rf" {desk} #2 agent\.changed tia offline load 0/1 ", line) for line in lines), 30,
                   lambda: f"the agent's event in the tail; it printed: {lines}")
        assert re.match(rf"\d{{4}}-\d\d-\d\dT[\d:.]+Z {desk} #1 desk\.configured ring ", lines[0]), lines
        # Only this desk's events, though the log holds every desk's.
        assert len(lines) == 2, lines
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout=30)


def test_events_tail_from_a_time_starts_at_the_first_event_at_or_after_it(desk_factory, cli):
    client = desk_factory("tail-time")
    # Three events a few milliseconds apart, so within the same second (the stream is read from a whole second),
    # the second one after the first was seen.
    client.configure()
    client.wait_event("desk.configured")
    client.add_agent("tia")
    times = {}
    with running(cli, "events", "tail", "--desk", client.desk, "--from", "first") as (tail, lines):
        wait_until(lambda: len(lines) >= 3, 30, lambda: f"three events in the tail; it printed: {lines}")
        times = {int(re.search(r" #(\d+) ", line).group(1)): line.split(" ")[0] for line in lines}
    assert sorted(times) == [1, 2, 3] and times[1] < times[2], times
    with running(cli, "events", "tail", "--desk", client.desk, "--from", times[2]) as (tail, lines):
        wait_until(lambda: len(lines) >= 2, 30, lambda: f"two events in the tail; it printed: {lines}")
        assert [re.search(r" #(\d+) ", line).group(1) for line in lines[:2]] == ["2", "3"], lines


def test_a_dead_letter_is_listed_and_requeued_once_its_desk_exists(desk_factory, dead_letters, cli):
    client = desk_factory("dl")
    with dead_letters.paused():
        # The desk is not configured yet: the Router dead-letters the agent for an unknown desk.
        message_id = client.publish("agent.upsert", agent="dan", groups=["g"], capacity=1)
        listed = eventually_shows(cli, rf"^{message_id}  desk {client.desk}  from switchboard\.in key agent\.upsert  "
                                  r"user switchboard\n  reason: .+\n  body: \{", "dead-letters", "list").string
        assert re.search(r"^\d+ dead letter\(s\), all left in the queue$", listed, re.MULTILINE), listed

        succeeds(cli, "desk", "configure", client.desk)
        eventually_shows(cli, rf"^desk {client.desk} ", "desk", "show", client.desk)
        requeued = succeeds(cli, "dead-letters", "requeue", "--id", message_id)
        assert f"requeued {message_id} to switchboard.in with key agent.upsert" in requeued, requeued
        eventually_shows(cli, r"^\s+dan\s+offline\s+0/1\s+g$", "agent", "list", client.desk)
        assert message_id not in succeeds(cli, "dead-letters", "list")

        # Requeued once: it is no longer there to requeue.
        status, out, err = switchboard(cli, "dead-letters", "requeue", "--id", message_id)
        assert status == 1 and f"no dead letter with message id {message_id}" in err, (status, out, err)


def test_journal_replay_shows_each_decision_with_the_ids_it_was_published_under(desk_factory, cli):
    desk = desk_factory("journal")
    desk.configure(ringMs=2000, countdownEveryMs=0, maxOfferAttempts=3, missesBeforeBreak=5, inactivityMs=0)
    desk.add_agent("ann")
    desk.add_agent("bob")
    request_id = desk.request("j-conv")
    first = desk.wait_event("offer.made", conversation="j-conv")
    second = desk.wait_event("offer.made", conversation="j-conv", count=2)
    # The late click, and at once the second agent's, while the second ring is live.
    late_id = desk.accept(first["agent"], "j-conv", first["offer"])
    desk.accept(second["agent"], "j-conv", second["offer"])
    desk.wait_event("offer.expired", conversation="j-conv", offer=first["offer"])
    desk.wait_event("command.rejected", command=late_id)
    desk.wait_event("conversation.assigned", conversation="j-conv")
    desk.wait_ws(second["agent"], "session.started", conversation="j-conv")
    desk.observe_for(1.0)

    router = succeeds(cli, "journal", "replay", "router", "--desk", desk.desk)
    # Every event the desk received, with its id, desk seq and type, in order: nothing more, nothing less.
    assert replayed_effects(router, "router", desk.desk) == published_effects(desk, "router"), router
    # Each under what caused it: the request, the timer that expired the ring, the late accept.
    assert re.search(rf"^\S+Z #\d+ conversation\.requested from switchboard\.in \(id {request_id}, desk {desk.desk}, "
                     rf"user \S+\)\n    → \S+ {desk.desk} #\d+ offer\.made j-conv ", router, re.MULTILINE), router
    assert re.search(rf"^\S+Z #\d+ timer\n(    → .*\n)*    → \S+ {desk.desk} #\d+ offer\.expired j-conv at {first['agent']} ",
                     router, re.MULTILINE), router
    assert re.search(rf"^\S+Z #\d+ offer\.accept from switchboard\.in \(id {late_id}, .*\n    → \S+ {desk.desk} #\d+ "
                     rf"command\.rejected offer\.accept by {first['agent']} for j-conv \(offerExpired\)$", router, re.MULTILINE), router

    # From the re-offer on: the timer that made it and the accept after it, not the request before. Each journal
    # is read from a snapshot before that time (or, when it has none, from its start; small ones are read whole
    # unless told otherwise): what it shows is what the whole replay shows from then on.
    since = succeeds(cli, "journal", "replay", "router", "--desk", desk.desk, "--since", second["at"], "--read-whole-up-to=-1")
    assert " offer.expired j-conv " in since and " conversation.assigned j-conv " in since, since
    assert "conversation.requested" not in since and " offer.made j-conv user u-j-conv to " + first["agent"] not in since, since
    assert replayed_effects(since, "router", desk.desk) == replayed_effects(dated_from(router, second["at"]), "router", desk.desk)

    notifier = succeeds(cli, "journal", "replay", "notifier", "--desk", desk.desk)
    assert replayed_effects(notifier, "notifier", desk.desk) == published_effects(desk, "notifier"), notifier

    status, _, err = switchboard(cli, "journal", "replay", "router", "--shard", "99")
    assert status == 64 and "there is no switchboard.router.journal.99" in err, (status, err)


def dated_from(replay, since):
    """The lines of a replay under the steps dated from `since` (an RFC 3339 time) on."""
    kept, keep = [], False
    for line in replay.splitlines():
        head = re.match(r"^(\d{4}-\S+Z) ", line)
        if head:
            keep = head.group(1) >= since
        if keep and (head or line.startswith("    ")):
            kept.append(line)
    return "\n".join(kept)


def test_journal_replay_follows_the_shards_after_their_history_until_ctrl_c(desk_factory, cli):
    desk = desk_factory("follow")
    desk.configure(countdownEveryMs=0, inactivityMs=0)
    desk.add_agent("ann", capacity=2)
    desk.request("f-1")
    desk.accept("ann", "f-1", desk.wait_event("offer.made", conversation="f-1")["offer"])
    desk.wait_event("conversation.assigned", conversation="f-1")

    with running(cli, "journal", "replay", "router", "--desk", desk.desk, "--follow") as (follow, lines):
        wait_until(lambda: "following, until Ctrl-C:\n" in lines, 60, lambda: f"the history to end; it printed: {lines}")
        history = "".join(lines)
        assert replayed_effects(history, "router", desk.desk) == published_effects(desk, "router"), history

        # What the Router does from now on shows as it does it, each event once, under what caused it.
        request_id = desk.request("f-2")
        desk.accept("ann", "f-2", desk.wait_event("offer.made", conversation="f-2")["offer"])
        desk.wait_event("conversation.assigned", conversation="f-2")
        wait_until(lambda: replayed_effects("".join(lines), "router", desk.desk) == published_effects(desk, "router"), 30,
                   lambda: f"every event of the desk once; it printed: {''.join(lines)}")
        live = "".join(lines)[len(history):]
        assert re.search(rf"^switchboard\.router\.journal\.\d+:\n\S+Z #\d+ conversation\.requested from switchboard\.in "
                         rf"\(id {request_id}, .*\n    → \S+ {desk.desk} #\d+ offer\.made f-2 ", live, re.MULTILINE), live
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=30)


def test_exit_status_tells_bad_arguments_an_unreachable_broker_and_a_refused_login_apart(cli, broker):
    status, _, err = switchboard(cli, "agent", "upsert", "some-desk", "ann", "--capacity", "0")
    assert status == 64 and "--capacity must be at least 1" in err, (status, err)
    # A negative number is a value the check refuses, not an option's missing value.
    status, _, err = switchboard(cli, "agent", "upsert", "some-desk", "ann", "--capacity", "-1")
    assert status == 64 and "--capacity must be at least 1" in err, (status, err)
    status, _, err = switchboard(cli, "desk", "configure", "some-desk", "--ring-ms", "-5")
    assert status == 64 and "ringMs" in err and "Missing value" not in err, (status, err)
    status, _, err = switchboard(cli, "desk", "configure", "not a desk!")
    assert status == 64 and "is not a valid" in err, (status, err)
    status, _, err = switchboard(cli, "dead-letters", "requeue")
    assert status == 64 and "exactly one of --all or --id" in err, (status, err)
    status, _, err = switchboard(cli, "dead-letters", "list", "--excerpt", "-1")
    assert status == 64 and "--excerpt must be 0 or more" in err, (status, err)

    port = broker.url.split("@127.0.0.1:")[1].split("/")[0]
    status, _, err = switchboard(cli, "agent", "list", "some-desk", url="amqp://switchboard:switchboard@127.0.0.1:1/switchboard")
    assert status == 69, (status, err)
    status, _, err = switchboard(cli, "agent", "list", "some-desk", url=f"amqp://switchboard:wrong@127.0.0.1:{port}/switchboard")
    assert status == 77, (status, err)
