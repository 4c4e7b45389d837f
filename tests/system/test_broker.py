"""The broker set-up a deployment relies on: consistent-hash rings in queue-name order after every boot, and no
publisher let in before they are (deploy/rabbitmq/hash-rings.sh)."""

import subprocess
import threading
import uuid

import pika

from conftest import REPO_ROOT, SHARDS, connection_parameters, wait_until

HASH_RINGS = REPO_ROOT / "deploy/rabbitmq/hash-rings.sh"
DESKS = [f"desk-{n}" for n in range(200)]


def run_hash_rings(broker, mode):
    """Runs hash-rings.sh `mode` against the suite's node; returns its exit status and what it printed."""
    done = subprocess.run([str(HASH_RINGS), mode, str(REPO_ROOT / "scripts/rabbitmq-node.sh"), "ctl"], env=broker.env,
                          stdout=subprocess.PIPE, text=True)
    return done.returncode, done.stdout


def routes(channel, exchange, queues):
    """Publishes one message per desk to `exchange` and returns the index of the queue each desk reached."""
    for desk in DESKS:
        channel.basic_publish(exchange, "", desk.encode(), pika.BasicProperties(headers={"desk": desk}))
    reached = []
    for index, queue in enumerate(queues):
        while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
            reached.append((message[2].decode(), index))
    assert sorted(desk for desk, _ in reached) == sorted(DESKS), "every desk's message reached one queue"
    return dict(reached)


def test_rings_are_rebuilt_in_queue_name_order_and_publishers_wait_until_they_are(broker):
    exchange = f"ring-test-{uuid.uuid4().hex[:8]}"
    queues = [f"{exchange}.shard.{n}" for n in range(4)]
    connection = pika.BlockingConnection(connection_parameters(broker.url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare(exchange, "x-consistent-hash", durable=True, arguments={"hash-header": "desk"})
    for queue in queues:
        channel.queue_declare(queue, durable=True)
    # Bound last to first: a ring out of queue-name order, as a boot may leave one.
    for queue in reversed(queues):
        channel.queue_bind(queue, exchange, "1")
    status, printed = run_hash_rings(broker, "check")
    assert status == 1 and f"switchboard {exchange} out-of-order" in printed, printed
    bound_in_reverse = routes(channel, exchange, queues)

    status, printed = run_hash_rings(broker, "rebuild")
    assert status == 0 and f"switchboard {exchange} rebuilt" in printed, printed
    # The desk keeps its bucket; the bucket that held the last queue now holds the first.
    in_name_order = {desk: len(queues) - 1 - index for desk, index in bound_in_reverse.items()}
    assert routes(channel, exchange, queues) == in_name_order
    assert run_hash_rings(broker, "check")[0] == 0

    # The application's restart rebuilds the rings in an order of its own, so it comes back with publishers
    # blocked, and `open` lets them in only once the rings are rebuilt.
    connection.close()
    broker.ctl("stop_app")
    broker.ctl("start_app")
    name = f"{exchange}-publisher"
    parameters = connection_parameters(broker.url)
    parameters.client_properties = {"connection_name": name}
    connection = pika.BlockingConnection(parameters)
    channel = connection.channel()
    channel.confirm_delivery()
    held = []

    def open_once_the_publisher_is_held():
        def held_by_the_broker():
            listed = broker.ctl("list_connections", "-q", "client_properties", "state")
            return any(name in line and line.rstrip().endswith("\tblocked") for line in listed.splitlines())

        try:
            held.append(wait_until(held_by_the_broker, 30, lambda: "the broker to hold the publisher"))
        finally:
            broker.node("open")

    opener = threading.Thread(target=open_once_the_publisher_is_held)
    opener.start()
    try:
        # Returns once the broker confirmed the message.
        channel.basic_publish(exchange, "", DESKS[0].encode(), pika.BasicProperties(headers={"desk": DESKS[0]}))
    finally:
        opener.join()
    assert held, "the broker took the message before the node was opened"
    first = channel.basic_get(queues[in_name_order[DESKS[0]]], auto_ack=True)
    assert first[0] is not None and first[2] == DESKS[0].encode(), "the first message after the restart went astray"
    assert routes(channel, exchange, queues) == in_name_order
    assert run_hash_rings(broker, "check")[0] == 0
    channel.exchange_delete(exchange)
    for queue in queues:
        channel.queue_delete(queue)
    connection.close()


def test_the_deployments_policies_apply_to_the_queues_they_are_for(broker, services):
    # deploy/rabbitmq/definitions.json: retention for the events log and the journals, a length bound on the
    # shard queues (with their reject-publish overflow, a full one refuses what is published to it), and no
    # delivery limit to speak of on the dead letters and the unroutable (each `dead-letters list` hands every letter
    # back, and RabbitMQ 4 gives a quorum queue a limit of 20 by default, past which it drops the message).
    expected = {"switchboard.events.log": "switchboard-events-log", "switchboard.dead-letters": "switchboard-kept",
                "switchboard.unroutable": "switchboard-kept"}
    for service in ("router", "notifier", "closer"):
        for shard in range(SHARDS):
            expected[f"switchboard.{service}.shard.{shard}"] = "switchboard-shards"
            expected[f"switchboard.{service}.journal.{shard}"] = "switchboard-journals"

    def policies():
        listed = broker.ctl("list_queues", "-p", "switchboard", "--no-table-headers", "--silent", "name", "policy")
        return dict(line.split("\t") for line in listed.splitlines() if "\t" in line)

    def applied():
        listed = policies()
        return {queue: listed.get(queue) for queue in expected}

    wait_until(lambda: applied() == expected, 30, lambda: f"policies {applied()}, expected {expected}")
