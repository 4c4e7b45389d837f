"""`make run`'s live demo (switchboard-demo) against the real services: its output shows everything the demo is
for, and Ctrl-C ends it with a summary whose numbers add up."""

import re
import signal
import subprocess

from conftest import DeskClient, output_lines, wait_until

# What a person watching `make run` must see, each as the demo prints it.
SHOWN = {
    "a ring": r"🔔 \S+ rings \S+ for \S+ \(attempt 1\)",
    "a countdown": r"⏳ \S+: \S+ \d+s left",
    "an accept": r"✔ \S+ accepted \S+: the session starts",
    "an expiry": r"⌛ \S+ did not answer \S+: the ring expired",
    "a late accept rejected": r"✖ \S+ clicked Accept too late for \S+: rejected \(offerExpired\)",
    "automatic service": r"⚡ \S+ starts at \S+ at once: automatic service, no ring",
    "End Session": r"■ \S+ ended: \S+ pressed End Session",
    "an inactivity warning": r"⚠ warning to \S+ in \S+: ",
    "a closure message": r"✉ closure message to \S+ in \S+: ",
    "an inactivity close": r"■ \S+ ended: the user stayed silent",
    "a user reply stopping the clock": r"→ \S+ replies in \S+: the clock stops",
}
RING = re.compile(r"🔔 (re-offered: )?(\S+) rings (\S+) for")
EXPIRY = re.compile(r"⌛ (\S+) did not answer (\S+): the ring expired")
# The set-up the Router shows before the first user asks: both desks configured, each simulated agent online.
SET_UP = [r"desk demo configured: ", r"desk auto configured: "] + [
    rf"{agent} \({desk}\) is online, " for desk, agents in (("demo", "alice bob carol"), ("auto", "dave erin"))
    for agent in agents.split()]
SUMMARY = re.compile(
    r"conversations requested (\d+), assigned (\d+) \((\d+) by automatic service\), ended (\d+)"
    r"(?: \(and (\d+) still open, ended on exit\))?\n"
    r"rings (\d+), expiries (\d+), late accepts rejected (\d+)\n"
    r"user replies (\d+), inactivity warnings (\d+), closure messages (\d+)")


ASKED = re.compile(r"→ \S+ asks for a human on desk \S+ \((\S+)\)")


def start_demo(services, broker, *options):
    demo = subprocess.Popen(
        [services.bin_dir / "switchboard-demo", "--amqp-url", broker.url, *options],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8")
    return demo, output_lines(demo)


def reoffered_to_another_agent(lines):
    """Whether some conversation's ring expired at one agent and was then offered to another."""
    expired_at = {}
    for line in lines:
        if match := EXPIRY.search(line):
            expired_at.setdefault(match[2], set()).add(match[1])
        elif (match := RING.search(line)) and match[1] and match[3] not in expired_at.get(match[2], {match[3]}):
            return True
    return False


def test_the_demo_shows_every_part_of_the_flow_and_ctrl_c_ends_it_with_a_summary(services, broker):
    demo, lines = start_demo(
        services, broker,
        "--ring-ms", "2000", "--inactivity-ms", "3000", "--warning-ms", "1500", "--every-ms", "400")
    try:
        def missing():
            shown = list(lines)
            absent = [name for name, pattern in SHOWN.items() if not any(re.search(pattern, line) for line in shown)]
            if not reoffered_to_another_agent(shown):
                absent.append("an expired ring re-offered to another agent")
            return absent

        wait_until(lambda: demo.poll() is not None or not missing(), 180,
                   lambda: f"the demo to show {missing()}; it printed:\n{''.join(lines[-40:])}")
        assert demo.poll() is None, f"the demo exited with {demo.returncode}:\n{''.join(lines[-40:])}"

        # The screen tells the story in order: the desks and agents are shown ready before traffic starts.
        shown = list(lines)
        first_request = next(index for index, line in enumerate(shown) if ASKED.search(line))
        for pattern in SET_UP:
            assert any(re.search(pattern, line) for line in shown[:first_request]), \
                f"{pattern!r} not shown before the first request:\n{''.join(shown[:first_request + 1])}"

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0, "".join(lines[-40:])
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    # The demo has exited; its last lines may still be on their way to `lines`.
    summary = wait_until(lambda: SUMMARY.search("".join(lines)), 10,
                         lambda: f"a summary after Ctrl-C; the demo printed:\n{''.join(lines[-20:])}")
    counts = [int(value) if value else 0 for value in summary.groups()]
    requested, assigned, automatic, ended, ended_on_exit = counts[:5]
    # Every conversation requested ended once: during the run, or at Ctrl-C if still open.
    assert requested == ended + ended_on_exit, summary[0]
    assert requested >= assigned > automatic > 0, summary[0]
    # Rings, expiries, late accepts, replies, warnings and closures were all counted.
    assert all(count > 0 for count in counts[5:]), summary[0]


def test_a_demo_ends_what_a_killed_run_left_open_and_stops_on_sigterm(services, broker):
    """A run killed with conversations ringing and served leaves them in the Router: the next run ends them, or its
    agents would be rung by them and have their room held for good. The same seed twice must not matter."""
    desks = [DeskClient(broker.url, "demo"), DeskClient(broker.url, "auto")]
    first = second = None
    try:
        # Long rings and a long silence: nothing of the first run ends by itself while the test looks.
        options = ["--ring-ms", "90000", "--inactivity-ms", "90000", "--warning-ms", "0", "--every-ms", "300",
                   "--seed", "11"]
        first, first_lines = start_demo(services, broker, *options)
        wait_until(lambda: any("🔔" in line for line in first_lines) and any("⚡" in line for line in first_lines),
                   120, lambda: f"the first run to ring and to start a session:\n{''.join(first_lines[-20:])}")
        first.kill()
        first.wait()
        asked = {match[1] for line in list(first_lines) if (match := ASKED.search(line))}
        assert asked, "".join(first_lines[-20:])

        second, second_lines = start_demo(services, broker, *options)

        def not_ended():
            """The first run's conversations the Router has (a request killed on its way never reached it), not
            ended yet."""
            for desk in desks:
                desk.pump()
            known = {m.body.get("conversation") for desk in desks for m in desk.events} & asked
            ended = {m.body["conversation"] for desk in desks for m in desk.event_list("conversation.ended")}
            return known - ended

        wait_until(lambda: not not_ended(), 60,
                   lambda: f"the second run to end the first's conversations {sorted(not_ended())}; it printed:\n"
                           f"{''.join(second_lines[-30:])}")
        assert second.poll() is None, "".join(second_lines[-30:])
        ended_by_second = {m.body["conversation"] for desk in desks for m in desk.event_list("conversation.ended")
                           if m.body["reason"] == "admin"}
        assert ended_by_second, "no conversation of the first run was left open for the second to end"
        shown = "".join(second_lines)
        for conversation in ended_by_second:
            assert f"ending {conversation}, left open by an earlier run" in shown, shown[-3000:]
        # The second run's own conversations are not the first's, whatever the seed.
        second_asked = {match[1] for line in list(second_lines) if (match := ASKED.search(line))}
        assert not asked & second_asked

        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, "".join(second_lines[-40:])
        wait_until(lambda: SUMMARY.search("".join(second_lines)), 10,
                   lambda: f"a summary after SIGTERM; the demo printed:\n{''.join(second_lines[-20:])}")
    finally:
        for demo in (first, second):
            if demo is not None and demo.poll() is None:
                demo.kill()
                demo.wait()
        for desk in desks:
            desk.close()
