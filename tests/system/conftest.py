"""Fixtures of the system suite: a throwaway RabbitMQ node, the three services as real processes, and a
pika client that speaks only the public contract (PROTOCOL.md).

Environment:
  SWITCHBOARD_BIN_DIR   folder with switchboard-router, -notifier, -closer, switchboard-demo and switchboard
                        (required)
  SWITCHBOARD_TEST_ROOT folder for the node and the logs (a temporary one if unset)
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pika
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("router", "notifier", "closer")
SHARDS = 2
# The node's development user, which every client of the suite connects as and sends as the AMQP user_id.
TEST_USER = "switchboard"
# The Router takes agent commands only from these broker users (the gateway's, as in a deployment).
AGENT_COMMAND_USERS = f"{TEST_USER}:*,switchboard-gateway:*"
READY_TIMEOUT = 120.0
RFC3339_MILLISECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout, describe):
    """Polls `condition` until it returns something truthy; fails with `describe()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {describe()}")
        time.sleep(0.05)


def output_lines(process):
    """The lines `process` prints on stdout, collected on a thread of its own as they come, so that a test can
    look at them while the process runs."""
    lines = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    return lines


# What `switchboard journal replay <service> --desk <desk>` prints under an input or a timer firing for each
# message the service published, as the fields a client sees on the wire (see `published_effects`).
REPLAYED_EFFECT = {
    "router": r"^    → (router\.\d+\.\d+\.\d+) {desk} #(\d+) (\S+)",
    "notifier": r"^    → (notifier\.\d+\.\d+\.\d+) to switchboard\.workstations ({desk}\.\S+) ",
    "closer": r"^    → (\S+) to switchboard\.outbound ({desk}\.\S+) ",
}


def command_line(services):
    """`switchboard <arguments> --amqp-url <url, or the suite's broker>`, as a command line for `arguments`."""
    return lambda *arguments, url=None: [services.bin_dir / "switchboard", *arguments, "--amqp-url", url or services.amqp_url]


def switchboard(cli, *arguments, url=None, timeout=120):
    """Runs the ops CLI (`cli`: a `command_line`) to its end; returns (exit status, stdout, stderr)."""
    done = subprocess.run(
        cli(*arguments, url=url), stdin=subprocess.DEVNULL, capture_output=True, encoding="utf-8", timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def succeeds(cli, *arguments, timeout=120):
    status, out, err = switchboard(cli, *arguments, timeout=timeout)
    assert status == 0, f"switchboard {' '.join(arguments)} exited with {status}:\n{out}{err}"
    return out


def journal_replay(services, service, *arguments):
    """`switchboard journal replay <service> <arguments>` run to its end; its output. A long chaos run leaves
    long journals."""
    return succeeds(command_line(services), "journal", "replay", service, *arguments, timeout=600)


def replayed_effects(output, service, desk):
    """The messages a replay says `service` published for `desk`, in journal order."""
    return re.findall(REPLAYED_EFFECT[service].format(desk=re.escape(desk)), output, re.MULTILINE)


def published_effects(desk, service):
    """The messages of `service` the desk's client received, in the order received (duplicates included)."""
    if service == "router":
        return [(m.properties.message_id, str(m["seq"]), m["type"]) for m in desk.events]
    received = desk.workstation if service == "notifier" else desk.outbound
    return [(m.properties.message_id, m.routing_key) for m in received]


def assert_journals_replay_what_was_published(services, desk):
    """Replaying each service's journals gives exactly the messages it published for the desk, each once under
    the id it went out with: the journal holds every decision, and nothing went out that it does not hold.
    The services may still be busy (a ring re-offered, its countdown): what the client received before the
    replay began must be in it, and what the replay holds must reach the client."""
    for service in SERVICES:
        received_before = set(published_effects(desk, service))
        replayed = replayed_effects(journal_replay(services, service, "--desk", desk.desk), service, desk.desk)
        twice = [effect for effect in set(replayed) if replayed.count(effect) > 1]
        assert not twice, f"{service}: replayed more than once: {twice}"
        assert received_before <= set(replayed), \
            f"{service}: published, not replayed: {sorted(received_before - set(replayed))}"
        desk.wait(lambda: set(replayed) <= set(published_effects(desk, service)), 30,
                  f"every message the {service}'s replay holds")


def wait_ready(process, port, name, log_tail):
    """Polls http://127.0.0.1:`port`/health/ready until it answers 200; fails at once, with `log_tail()`, if
    `process` exited, and after READY_TIMEOUT otherwise."""

    def ready():
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}\n{log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    wait_until(ready, READY_TIMEOUT, lambda: f"{name} to be ready\n{log_tail()}")


def connection_parameters(amqp_url):
    parameters = pika.URLParameters(amqp_url)
    # A blocking connection answers heartbeats only while it is pumped, and a test may leave one idle for
    # longer than the broker's heartbeat timeout.
    parameters.heartbeat = 0
    return parameters


def rfc3339(epoch_seconds):
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_rfc3339():
    return rfc3339(time.time())


class Broker:
    """One project-local node started with scripts/rabbitmq-node.sh, with its own name, ports and folder."""

    def __init__(self, root):
        self.node_dir = root / f"systests-node-{os.getpid()}"
        self.amqp_port = free_port()
        self.prometheus_port = free_port()
        self.env = dict(
            os.environ,
            SB_NODE_NAME=f"systests{os.getpid()}@localhost",
            SB_NODE_DIR=str(self.node_dir),
            SB_AMQP_PORT=str(self.amqp_port),
            SB_MGMT_PORT=str(free_port()),
            SB_DIST_PORT=str(free_port()),
            SB_PROMETHEUS_PORT=str(self.prometheus_port),
            # Prometheus: test_alerts.py checks the alert rules against the series the broker exports.
            SB_PLUGINS="rabbitmq_consistent_hash_exchange,rabbitmq_prometheus",
        )
        self.url = f"amqp://switchboard:switchboard@127.0.0.1:{self.amqp_port}/switchboard"

    def node(self, command):
        subprocess.run([str(REPO_ROOT / "scripts/rabbitmq-node.sh"), command], env=self.env, check=True)

    def kill9(self):
        """Kills the node's Erlang VM with SIGKILL: a crash, with no goodbye to anyone."""
        pid = int((self.node_dir / "rabbitmq.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 30, lambda: "the killed node to be gone")

    def ring_contents(self):
        """Each consistent-hash exchange's ring as the broker holds it (bucket -> queue), sorted: the buckets
        decide which shard queue a desk's messages go to."""
        expression = ("lists:sort([{element(4, element(2, R)), lists:sort(maps:to_list(maps:map("
                      "fun(_, Q) -> element(4, Q) end, element(3, R))))} "
                      "|| R <- ets:tab2list(rabbit_exchange_type_consistent_hash_ring_state)]).")
        return " ".join(self.ctl("eval", expression).split())

    def ctl(self, *arguments):
        """rabbitmqctl against this node; returns what it printed."""
        return subprocess.run([str(REPO_ROOT / "scripts/rabbitmq-node.sh"), "ctl", *arguments], env=self.env,
                              check=True, stdout=subprocess.PIPE, text=True).stdout


class Services:
    """The services as processes. Each instance logs to its own file; `log_tails` shows them on failure."""

    def __init__(self, bin_dir, log_dir, amqp_url, extra_arguments=None):
        self.bin_dir = Path(bin_dir)
        self.log_dir = log_dir
        self.amqp_url = amqp_url
        self.extra_arguments = extra_arguments or {}  # service -> more command-line arguments
        self.processes = {}  # instance name -> (service, Popen, http port)
        self.started = 0

    def start(self, service):
        self.started += 1
        instance = f"{service}-{self.started}"
        port = free_port()
        log = open(self.log_dir / f"{instance}.log", "wb")
        process = subprocess.Popen(
            [
                str(self.bin_dir / f"switchboard-{service}"),
                "--amqp-url", self.amqp_url,
                "--http-port", str(port),
                "--instance-name", instance,
                "--shards-count", str(SHARDS),
                "--pulse-interval-milliseconds", "100",
                *self.extra_arguments.get(service, ()),
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes[instance] = (service, process, port)
        return instance

    def wait_ready(self, instance):
        service, process, port = self.processes[instance]
        wait_ready(process, port, instance, lambda: self.log_tail(instance))

    def instances(self, service):
        return [name for name, (kind, process, _) in self.processes.items() if kind == service and process.poll() is None]

    def kill9(self, instance):
        process = self.processes[instance][1]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def restart(self, service):
        """Kills every live instance of `service` with SIGKILL and starts a fresh one."""
        for instance in self.instances(service):
            self.kill9(instance)
        instance = self.start(service)
        self.wait_ready(instance)
        return instance

    def log_tail(self, instance, lines=40):
        path = self.log_dir / f"{instance}.log"
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text[-lines:])

    def stop_all(self):
        for _, process, _ in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for _, process, _ in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def test_root(request):
    root = os.environ.get("SWITCHBOARD_TEST_ROOT")
    path = Path(root) if root else Path(tempfile.mkdtemp(prefix="switchboard-systests."))
    # As root the node runs as the rabbitmq user, which must reach its folder.
    path.chmod(0o755)
    yield path
    # A folder of its own (the suite run by hand; scripts/test.sh removes its root itself) goes after a pass, its
    # node stopped by then; after a failure the node's data and the services' logs stay for a look.
    if not root:
        if request.session.testsfailed:
            print(f"\nsystem suite: the node's data and the services' logs are in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def broker(test_root):
    broker = Broker(test_root)
    broker.node("start")
    yield broker
    broker.node("stop")


_services_for_reports = []


@pytest.fixture(scope="session")
def services(broker, test_root):
    bin_dir = os.environ.get("SWITCHBOARD_BIN_DIR")
    if not bin_dir:
        pytest.exit("SWITCHBOARD_BIN_DIR must name the folder of the built services", returncode=2)
    log_dir = test_root / "systests-logs"
    log_dir.mkdir(exist_ok=True)
    services = Services(
        bin_dir, log_dir, broker.url, extra_arguments={"router": ("--agent-command-users", AGENT_COMMAND_USERS)}
    )
    _services_for_reports.append(services)
    for service in SERVICES:
        services.start(service)
    for service in SERVICES:
        services.wait_ready(services.instances(service)[0])
    yield services
    services.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _services_for_reports:
        services = _services_for_reports[0]
        for instance in services.processes:
            report.sections.append((f"log {instance}", services.log_tail(instance)))


class Recorded:
    """One message as received, with the properties the contract requires of every message."""

    def __init__(self, exchange, routing_key, properties, body):
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.raw = body
        self.body = json.loads(body)

    def __getitem__(self, key):
        return self.body[key]

    def get(self, key, default=None):
        return self.body.get(key, default)

    def contract_violations(self):
        p, b = self.properties, self.body
        problems = []
        if p.content_type != "application/json":
            problems.append(f"content_type {p.content_type!r}")
        if p.delivery_mode != 2:
            problems.append(f"delivery_mode {p.delivery_mode!r}")
        if not p.message_id or p.message_id != b.get("id"):
            problems.append(f"message_id {p.message_id!r} != id {b.get('id')!r}")
        if p.type != b.get("type"):
            problems.append(f"type property {p.type!r} != body type {b.get('type')!r}")
        if not p.timestamp:
            problems.append("no timestamp")
        if (p.headers or {}).get("desk") != b.get("desk"):
            problems.append(f"desk header {(p.headers or {}).get('desk')!r} != body desk {b.get('desk')!r}")
        if not isinstance(b.get("at"), str) or not RFC3339_MILLISECONDS.fullmatch(b["at"]):
            problems.append(f"at {b.get('at')!r}")
        if b.get("v") != 1:
            problems.append(f"v {b.get('v')!r}")
        if self.routing_key != self.expected_routing_key():
            problems.append(f"routing key {self.routing_key!r}, not {self.expected_routing_key()!r}")
        return problems

    def expected_routing_key(self):
        """PROTOCOL.md, "Exchanges": events are keyed by type, workstation events by desk and agent, outbound
        messages by desk and type."""
        b = self.body
        return {
            "switchboard.events": b.get("type"),
            "switchboard.workstations": f"{b.get('desk')}.{b.get('agent')}",
            "switchboard.outbound": f"{b.get('desk')}.{b.get('type')}",
        }[self.exchange]

    def __repr__(self):
        return f"<{self.exchange} {self.routing_key} {self.raw.decode(errors='replace')[:300]}>"


def distinct(messages):
    """After a takeover a service may publish again what it cannot prove was confirmed: the same message (same
    id and seq), which a consumer drops. Two messages with different ids are two different messages; two with
    one id must be the same message, body and all, or a consumer that keeps the first would keep the wrong one."""
    by_id = {}
    for m in messages:
        first = by_id.setdefault(m["id"], m)
        assert first.body == m.body, f"message {m['id']} published again with another body: {first.body} then {m.body}"
    return list(by_id.values())


class DeskClient:
    """A client of one desk: publishes to `switchboard.in` and records what the desk's events, workstation
    and outbound messages through its own exclusive queues, bound before anything is published."""

    def __init__(self, amqp_url, desk, user_id=None):
        self.desk = desk
        # The broker checks a message's user_id against the connection's user; a Router that takes agent
        # commands only from some users reads it.
        self.user_id = user_id
        self.connection = pika.BlockingConnection(connection_parameters(amqp_url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.events, self.workstation, self.outbound = [], [], []
        # The desk.configure messages this client published for its desk, each answered by one desk.configured.
        self.configures = 0
        self._bind("switchboard.events", "#", self.events)
        self._bind("switchboard.workstations", f"{desk}.*", self.workstation)
        # Outbound types have a dot of their own (`<desk>.closure.message`).
        self._bind("switchboard.outbound", f"{desk}.#", self.outbound)

    def _bind(self, exchange, key, sink):
        queue = self.channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.channel.queue_bind(queue, exchange, routing_key=key)

        def on_message(channel, method, properties, body):
            message = Recorded(exchange, method.routing_key, properties, body)
            # switchboard.events is keyed by type, so every desk's events arrive here.
            if message.body.get("desk") == self.desk:
                sink.append(message)

        self.channel.basic_consume(queue, on_message, auto_ack=True)

    def close(self):
        if self.connection.is_open:
            self.connection.close()

    # Publishing

    def publish_raw(self, body, message_type, desk=None, message_id=None, headers=None):
        message_id = message_id or str(uuid.uuid4())
        properties = pika.BasicProperties(
            content_type="application/json", delivery_mode=2, message_id=message_id, type=message_type,
            timestamp=int(time.time()), headers=headers if headers is not None else {"desk": desk or self.desk},
            user_id=self.user_id,
        )
        self.channel.basic_publish("switchboard.in", message_type, body, properties, mandatory=False)
        return message_id

    def publish(self, message_type, desk=None, **fields):
        if message_type == "desk.configure" and desk in (None, self.desk):
            self.configures += 1
        message_id = str(uuid.uuid4())
        body = {"v": 1, "type": message_type, "id": message_id, "desk": desk or self.desk, "at": now_rfc3339()}
        body.update(fields)
        return self.publish_raw(json.dumps(body).encode(), message_type, desk=desk, message_id=message_id)

    def configure(self, **settings):
        return self.publish("desk.configure", settings=settings)

    def add_agent(self, agent, groups=("general",), capacity=1, status="online", auto_accept=None):
        fields = {"agent": agent, "groups": list(groups), "capacity": capacity}
        if auto_accept is not None:
            fields["autoAccept"] = auto_accept
        self.publish("agent.upsert", **fields)
        if status:
            self.publish("agent.status", agent=agent, status=status)

    def request(self, conversation, user=None, **fields):
        return self.publish("conversation.requested", conversation=conversation, user=user or f"u-{conversation}", **fields)

    def accept(self, agent, conversation, offer):
        return self.publish("offer.accept", agent=agent, conversation=conversation, offer=offer)

    # Observing

    def pump(self, seconds=0.05):
        self.connection.process_data_events(time_limit=seconds)

    def observe_for(self, seconds):
        """Absence can only be seen over a window: keeps receiving for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump()

    @staticmethod
    def matching(messages, message_type, **fields):
        return [m for m in messages if m.body.get("type") == message_type and all(m.body.get(k) == v for k, v in fields.items())]

    def event_list(self, message_type, **fields):
        return self.matching(self.events, message_type, **fields)

    def ws_list(self, agent, message_type, **fields):
        return self.matching([m for m in self.workstation if m.routing_key == f"{self.desk}.{agent}"], message_type, **fields)

    def outbound_list(self, message_type, **fields):
        return self.matching(self.outbound, message_type, **fields)

    def wait(self, condition, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what} on desk {self.desk}\n"
                    f"events: {self.events[-15:]}\nworkstation: {self.workstation[-15:]}\noutbound: {self.outbound[-10:]}"
                )
            self.pump()

    def wait_event(self, message_type, timeout=15, count=1, **fields):
        found = self.wait(lambda: len(self.event_list(message_type, **fields)) >= count and self.event_list(message_type, **fields),
                          timeout, f"{count} x event {message_type} {fields}")
        return found[count - 1]

    def wait_ws(self, agent, message_type, timeout=15, count=1, **fields):
        found = self.wait(lambda: len(self.ws_list(agent, message_type, **fields)) >= count and self.ws_list(agent, message_type, **fields),
                          timeout, f"{count} x workstation {agent} {message_type} {fields}")
        return found[count - 1]

    def wait_outbound(self, message_type, timeout=15, count=1, **fields):
        found = self.wait(lambda: len(self.outbound_list(message_type, **fields)) >= count and self.outbound_list(message_type, **fields),
                          timeout, f"{count} x outbound {message_type} {fields}")
        return found[count - 1]

    def ready(self, timeout=15):
        """Sends a configure that changes nothing and waits for its `desk.configured` (one per configure this
        client published, in order): everything published before it has been taken by the Router."""
        self.publish("desk.configure", settings={})
        self.wait(lambda: len(distinct(self.event_list("desk.configured"))) >= self.configures,
                  timeout, f"{self.configures} x event desk.configured")

    # Invariants

    def assert_contract_properties(self):
        bad = [(m, m.contract_violations()) for m in self.events + self.workstation + self.outbound if m.contract_violations()]
        assert not bad, f"messages breaking the envelope rules: {bad[:5]}"

    def assert_gapless(self):
        """Desk seq on events and agent seq on workstation events: no gaps, and a repeated seq is a
        redelivery of the same message. Countdowns repeat the latest seq without counting."""
        self._assert_sequence("events", self.events)
        agents = {m.routing_key for m in self.workstation}
        for key in agents:
            messages = [m for m in self.workstation if m.routing_key == key]
            counted = [m for m in messages if m["type"] != "countdown"]
            self._assert_sequence(f"workstation {key}", counted)
            latest = 0
            for m in messages:
                if m["type"] == "countdown":
                    assert m["seq"] == latest, f"{key}: countdown seq {m['seq']} is not the latest seq {latest}: {m}"
                else:
                    latest = max(latest, m["seq"])

    def assert_router_invariants(self):
        """The desk's Router events, replayed in seq order: one live offer per conversation, ended only by an
        expiry, decline, withdrawal or its own accept, and never left ringing by a queued or ended conversation;
        an offer, or an automatic assignment, only to an online agent with room for it (live rings and sessions
        under its capacity); one agent on a conversation at a time (another takes it only by a transfer)."""
        capacity, status = {}, {}
        offers = {}  # conversation -> (agent, offer) while it rings
        serving = {}  # conversation -> agent

        def load(agent):
            return sum(1 for a, _ in offers.values() if a == agent) + sum(1 for a in serving.values() if a == agent)

        def check_room(agent, event):
            assert status.get(agent) == "online" and load(agent) < capacity.get(agent, 0), (
                f"{event['type']} #{event['seq']} to {agent} ({status.get(agent)}, load {load(agent)} of "
                f"{capacity.get(agent)}): {event.body}")

        for event in sorted(distinct(self.events), key=lambda m: m["seq"]):
            kind, conversation = event["type"], event.get("conversation")
            if kind == "agent.changed":
                capacity[event["agent"]], status[event["agent"]] = event["capacity"], event["status"]
            elif kind == "offer.made":
                assert conversation not in offers, f"offer.made #{event['seq']} while {offers[conversation]} rings: {event.body}"
                assert conversation not in serving, f"offer.made #{event['seq']} while {serving[conversation]} serves it"
                check_room(event["agent"], event)
                offers[conversation] = (event["agent"], event["offer"])
            elif kind in ("offer.expired", "offer.declined", "offer.withdrawn"):
                assert offers.get(conversation) == (event["agent"], event["offer"]), (
                    f"{kind} #{event['seq']} of an offer that is not the live one ({offers.get(conversation)}): {event.body}")
                del offers[conversation]
            elif kind == "conversation.assigned":
                ringing = offers.pop(conversation, None)
                if event["mode"] == "accepted":
                    assert ringing == (event["agent"], event.get("offer")), (
                        f"conversation.assigned #{event['seq']} accepted with an offer that is not the live one ({ringing}): {event.body}")
                else:
                    assert ringing is None, f"conversation.assigned #{event['seq']} while {ringing} rings: {event.body}"
                if event["mode"] == "autoAccepted":
                    check_room(event["agent"], event)
                if event["mode"] == "transferred":
                    assert conversation in serving, f"conversation.assigned #{event['seq']} transferred, but nobody served it"
                else:
                    assert conversation not in serving, (
                        f"conversation.assigned #{event['seq']} to {event['agent']} while {serving[conversation]} serves it")
                serving[conversation] = event["agent"]
            elif kind in ("conversation.queued", "conversation.ended"):
                assert conversation not in offers, f"{kind} #{event['seq']} while {offers[conversation]} rings: {event.body}"
                serving.pop(conversation, None)

    @staticmethod
    def _assert_sequence(name, messages):
        by_seq = {}
        for m in messages:
            by_seq.setdefault(m["seq"], set()).add(m["id"])
        duplicates = {seq: ids for seq, ids in by_seq.items() if len(ids) > 1}
        assert not duplicates, f"{name}: one seq on different messages: {duplicates}"
        seqs = sorted(by_seq)
        assert seqs == list(range(1, len(seqs) + 1)), f"{name}: seq not gapless from 1: {seqs}"


class DurableDeskClient(DeskClient):
    """A DeskClient whose recording queues are durable quorum queues that it acknowledges from: it sees every
    message even across a broker crash, once `reconnect` has brought it back."""

    def __init__(self, amqp_url, desk, user_id=None):
        self.amqp_url = amqp_url
        self.recorders = []  # (queue, exchange, sink)
        super().__init__(amqp_url, desk, user_id)

    def _bind(self, exchange, key, sink):
        queue = f"test.{self.desk}.{exchange}"
        self.channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        self.channel.queue_bind(queue, exchange, routing_key=key)
        self.recorders.append((queue, exchange, sink))
        self._record(queue, exchange, sink)

    def _record(self, queue, exchange, sink):
        def on_message(channel, method, properties, body):
            message = Recorded(exchange, method.routing_key, properties, body)
            if message.body.get("desk") == self.desk:
                sink.append(message)
            channel.basic_ack(method.delivery_tag)

        self.channel.basic_consume(queue, on_message)

    def reconnect(self, timeout):
        """Connects again (the broker may still be starting) and goes on recording where it stopped. A message
        taken but not acknowledged before the crash comes again: compare by id."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connection = pika.BlockingConnection(connection_parameters(self.amqp_url))
                break
            except pika.exceptions.AMQPConnectionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        for recorder in self.recorders:
            self._record(*recorder)

    def close(self):
        if self.connection.is_open:
            for queue, _, _ in self.recorders:
                self.channel.queue_delete(queue)
        super().close()


@pytest.fixture
def desk_factory(services, broker):
    clients = []
    # A test before may have restarted a service or the broker: each test's desks begin with every running
    # service ready.
    for instance in [name for service in SERVICES for name in services.instances(service)]:
        services.wait_ready(instance)

    def make(tag=""):
        name = f"t{uuid.uuid4().hex[:8]}{tag}"[:64]
        client = DeskClient(broker.url, name, user_id=TEST_USER)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def desk(desk_factory):
    return desk_factory()


class DeadLetters:
    """Everything in `switchboard.dead-letters`, read by one consumer for the whole run."""

    def __init__(self, amqp_url):
        self.amqp_url = amqp_url
        self.messages = []
        self._consume()

    def _consume(self):
        self.connection = pika.BlockingConnection(connection_parameters(self.amqp_url))
        self.channel = self.connection.channel()
        self.channel.basic_consume("switchboard.dead-letters", self._on_message, auto_ack=True)

    def _on_message(self, channel, method, properties, body):
        self.messages.append((properties, body))

    @contextlib.contextmanager
    def paused(self):
        """Leaves `switchboard.dead-letters` to another reader meanwhile (what `switchboard dead-letters` reads),
        then reads it again on a new connection (the old one may have died with a broker that a test killed)."""
        with contextlib.suppress(pika.exceptions.AMQPError):
            self.connection.process_data_events(time_limit=0)
            self.connection.close()
        try:
            yield
        finally:
            self._consume()

    def received(self, seconds=1.0):
        """Every dead letter so far, after reading for `seconds` more (one may still be on its way)."""
        self.connection.process_data_events(time_limit=seconds)
        return self.messages

    def wait_for(self, message_id, timeout=15):
        """The first dead letter of `message_id`: its properties and body."""
        return self.wait_for_services(message_id, services=(), timeout=timeout)[0]

    def wait_for_services(self, message_id, services, timeout=15):
        """The dead letters of `message_id`, once there is at least one, and one from each of `services` (by their
        `x-switchboard-service` header)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [(p, b) for p, b in self.messages if p.message_id == message_id]
            by = {(p.headers or {}).get("x-switchboard-service") for p, _ in found}
            if found and by.issuperset(services):
                return found
            if time.monotonic() >= deadline:
                seen = [(p.message_id, (p.headers or {}).get("x-switchboard-reason")) for p, _ in self.messages]
                raise AssertionError(
                    f"message {message_id} not dead-lettered by {sorted(services) or 'a service'} within {timeout}s "
                    f"(by {sorted(str(s) for s in by)}); dead letters seen: {seen}")
            self.connection.process_data_events(time_limit=0.05)


@pytest.fixture(scope="session")
def dead_letters(services, broker):
    reader = DeadLetters(broker.url)
    yield reader
    # A test that kills the broker leaves this connection broken (and a blocking connection learns it only here).
    with contextlib.suppress(pika.exceptions.AMQPError):
        reader.connection.close()
