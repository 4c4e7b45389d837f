import Logging
import Synchronization
import SwitchboardAMQP
import SwitchboardCommon
@testable import SwitchboardRuntime
import SwitchboardTestSupport
import Testing

/// Tests that stop the broker or raise its alarms, each on a node of its own.
@Suite struct DisruptionTests {
    @Test func publisherAndConsumerRecoverFromABrokerCrashAndRestartWithoutLosingConfirmedMessages() async throws {
        try await TestBroker.withDedicatedNode(label: "restart") { broker in
            let publishing = try await broker.connect(name: "restart-publisher")
            let consuming = try await broker.connect(name: "restart-consumer")
            let queue = uniqueName("restart")
            // Durable and classic: it confirms a persistent message once it is on disk, and comes back from
            // a crash at once (a quorum queue on a single node recovers far more slowly after a kill).
            try await publishing.declare(Topology(queues: [.init(queue, kind: .classic)]))
            let consumer = try await consuming.consume(queue: queue, prefetch: 100)
            let publisher = try await publishing.publisher(confirmWindow: 64)

            let received = NumberSet()
            // How the consumer's loop ended, for the failure message: a consumer that ends early stops receiving.
            let consumerEnd = Mutex<String?>(nil)
            let consumerTask = Task {
                do {
                    for try await delivery in consumer {
                        if let number = messageNumber(delivery) { received.insert(number) }
                        // A delivery from before the restart cannot be settled; the broker redelivers it
                        // and the set above takes the duplicate.
                        try? delivery.ack()
                    }
                    consumerEnd.withLock { $0 = "finished" }
                } catch {
                    consumerEnd.withLock { $0 = "failed: \(error)" }
                }
            }
            // Publishers keep going, each message retried until confirmed, until told to stop.
            let confirmed = NumberSet()
            let numbers = NumberSource()
            let publisherTask = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<16 {
                        group.addTask {
                            while let number = numbers.next() {
                                try await publishUntilConfirmed(number, to: queue, with: publisher)
                                confirmed.insert(number)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }

            try await waitUntil("some messages are confirmed") { confirmed.count >= 500 }
            // Killed, not stopped: a crash says no goodbye, and what was confirmed before it must still arrive.
            try await broker.kill()
            try await waitUntil("both connections notice") {
                publishing.state != .connected && consuming.state != .connected
            }
            // Confirmed by the broker that was killed; any other was confirmed after its restart.
            let confirmedBeforeCrash = confirmed.snapshot
            try await broker.start()
            try await waitUntil("both connections are back", timeout: .seconds(120)) {
                publishing.state == .connected && consuming.state == .connected
            }
            let confirmedBeforeRecovery = confirmed.count
            try await waitUntil("publishing goes on after the restart") { confirmed.count >= confirmedBeforeRecovery + 500 }
            numbers.stop()
            try await publisherTask.value

            let published = numbers.issued
            #expect(confirmed.snapshot == Set(0..<published))
            do {
                try await waitUntil("every confirmed message arrived", timeout: .seconds(120)) {
                    received.count == published
                }
            } catch {
                let missing = Set(0..<published).subtracting(received.snapshot).sorted()
                let queued = try? await publishing.queueStatus(queue)
                Issue.record("""
                    \(missing.count) of \(published) confirmed messages never arrived, from \(missing.first ?? 0) to \
                    \(missing.last ?? 0), \(missing.filter(confirmedBeforeCrash.contains).count) of them confirmed before \
                    the crash; the consumer \(consumerEnd.withLock { $0 } ?? "was still consuming"); \(received.count) \
                    arrived; the queue holds \(queued.map { "\($0.messageCount) ready, \($0.consumerCount) consumers" } ?? "?")
                    """)
                throw error
            }
            #expect(received.snapshot == Set(0..<published))
            consumer.cancel()
            _ = await consumerTask.result
            await publishing.close()
            await consuming.close()
        }
    }

    /// A queue missing when the connection comes back (here a transient one, gone with the broker's restart;
    /// after a crash, a durable one the broker has not recovered yet) is waited for: reconnect attempts go
    /// on failing until it is there again, and its consumer goes on instead of ending.
    @Test func afterAReconnectAConsumerWaitsForItsQueueToBeThereAgain() async throws {
        try await TestBroker.withDedicatedNode(label: "missing") { broker in
            let queue = uniqueName("missing")
            let transient = Topology(queues: [.init(queue, durable: false)])
            // Declared by a connection of its own, closed at once: the consumer's does not declare it again.
            let declaring = try await broker.connect(name: "missing-declarer")
            try await declaring.declare(transient)
            await declaring.close()
            let consuming = try await broker.connect(name: "missing-consumer")
            // A topology of its own, declared again at the start of every attempt: an attempt that fails after
            // opening channels must not leave the next one using them unopened.
            try await consuming.declare(Topology(exchanges: [.init(uniqueName("missing-own"), kind: .fanout)]))
            let consumer = try await consuming.consume(queue: queue, prefetch: 10)

            try await broker.ctl("stop_app")
            try await waitUntil("the connection notices") { consuming.state != .connected }
            try await broker.ctl("start_app")
            // Not opened yet: that takes several rabbitmqctl calls, long on a loaded machine, and the queue must
            // be back within the connection's grace for missing queues (30 s). Declaring needs no opening.
            let probe = try await broker.connect(name: "missing-probe")
            #expect(try await probe.queueStatus(queue) == nil, "the transient queue went with the restart")
            let failedBefore = consuming.state.failedAttempts
            try await waitUntil("a reconnect attempt fails for want of the queue") {
                consuming.state.failedAttempts > failedBefore
            }

            try await probe.declare(transient)
            try await waitUntil("the connection is back") { consuming.state == .connected }
            // Publishing waits for the opening (the memory alarm of a fresh boot blocks publishers until then).
            try await broker.open()
            let publisher = try await probe.publisher()
            try await publisher.publish(body(number: 7), exchange: "", routingKey: queue, properties: persistentProperties(number: 7), mandatory: true)
            let delivered = try await receive(1, from: consumer, timeout: .seconds(30))
            #expect(delivered.compactMap(messageNumber) == [7])
            await probe.close()
            await consuming.close()
        }
    }

    /// Told to stop waiting for reconnects, a connection fails what waits for the broker at once (instead of
    /// after `reconnectWaitTimeout`, a minute) and goes on reconnecting: what a stopping service needs.
    @Test func aConnectionToldToStopWaitingForReconnectsFailsPublishesAtOnce() async throws {
        try await TestBroker.withDedicatedNode(label: "nowait") { broker in
            let queue = uniqueName("nowait")
            let connection = try await broker.connect(name: "nowait")
            try await connection.declare(Topology(queues: [.init(queue)]))
            let publisher = try await connection.publisher()
            func publish(_ number: Int) async throws {
                try await publisher.publish(
                    body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
            }
            try await broker.ctl("stop_app")
            try await waitUntil("the connection notices") { connection.state != .connected }
            let started = ContinuousClock.now
            let waiting = Task { try await publish(1) }
            connection.stopWaitingForReconnects()
            let underWay = await #expect(throws: AMQPError.self) { try await waiting.value }
            let failure = await #expect(throws: AMQPError.self) { try await publish(2) }
            for error in [underWay, failure] {
                #expect(error?.description.contains("no longer waiting") == true, "\(String(describing: error))")
            }
            #expect(started.duration(to: .now) < .seconds(30), "failed long before the reconnect wait timeout")
            try await broker.ctl("start_app")
            try await broker.open()
            try await waitUntil("the connection is back") { connection.state == .connected }
            try await publish(3)
            await connection.close()
        }
    }

    /// A declaration made while disconnected, which the broker refuses by closing the connection (an unknown
    /// exchange type), fails at the first reconnect that gets that far, with the broker's reason, and the
    /// connection comes back without it. (It used to be made again at every reconnect, each failing on it,
    /// until its caller gave up after `reconnectWaitTimeout` with "not connected".)
    @Test func aDeclarationTheBrokerRefusesAfterAReconnectFailsAloneAndTheConnectionComesBack() async throws {
        try await TestBroker.withDedicatedNode(label: "refused") { broker in
            let connection = try await broker.connect(name: "refused")
            let refused = Topology(exchanges: [.init(uniqueName("refused-x"), kind: .custom("x-no-such-type"))])
            // The reconnects that had failed when the declaration was made.
            let failedBefore = NumberSet()
            var declaration: Task<Void, any Error>?
            try await lockOut(broker, while: {
                declaration = Task {
                    failedBefore.insert(connection.state.failedAttempts)
                    try await connection.declare(refused)
                }
                try await waitUntil("two more reconnects fail with the declaration waiting") {
                    guard let before = failedBefore.snapshot.first else { return false }
                    return connection.state.failedAttempts >= before + 2
                }
            }) {
                connection.state.failedAttempts >= 1
            }
            let failure = await #expect(throws: AMQPError.self) { try await declaration?.value }
            guard case .connectionClosedByBroker(let code, _)? = failure else {
                Issue.record("the declaration failed with \(String(describing: failure))")
                return
            }
            #expect(code == 503, "COMMAND_INVALID")
            try await waitUntil("the connection is back") { connection.state == .connected }
            let queue = uniqueName("refused")
            try await connection.declare(Topology(queues: [.init(queue)]))
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            let publisher = try await connection.publisher()
            try await publisher.publish(body(number: 1), exchange: "", routingKey: queue, properties: persistentProperties(number: 1))
            #expect(try await receive(1, from: consumer).compactMap(messageNumber) == [1])
            await connection.close()
        }
    }

    /// A service asked to stop while the broker is away stops at once: nothing it still has to do needs
    /// the broker. (A pulse waiting for the connection used to hold it for up to a minute, past the
    /// systemd units' 30 s stop timeout.)
    @Test(.stopsServices) func aRuntimeStopsPromptlyWhileTheBrokerIsAway() async throws {
        try await TestBroker.withDedicatedNode(label: "away") { broker in
            let router = try RunningService<RouterAdapter>.start(broker, name: "router-away")
            try await router.waitUntilReady()
            try await broker.ctl("stop_app")
            // Three failed attempts (100 + 200 + 400 ms) outlast the pulse interval (200 ms): a pulse is waiting.
            try await waitUntil("the runtime has been reconnecting for a while") {
                (router.runtime.readiness.connectionState?.failedAttempts ?? 0) >= 3
            }
            router.cancel()
            let error = try await router.waitUntilItStops(timeout: .seconds(15))
            #expect(error == nil, "it stopped as on SIGTERM, not with \(String(describing: error))")
        }
    }

    @Test func publishersWaitWhileTheBrokerIsBlockedAndResumeAfterwards() async throws {
        try await TestBroker.withDedicatedNode(label: "alarm") { broker in
            let publishing = try await broker.connect(name: "alarm-publisher")
            var impatientConfiguration = try broker.configuration()
            impatientConfiguration.blockedPublishTimeout = .seconds(1)
            let impatient = try await AMQPConnection.connect(impatientConfiguration, logger: Logger(label: "switchboard.test.impatient"))
            let queue = uniqueName("alarm")
            try await publishing.declare(Topology(queues: [.init(queue)]))
            let publisher = try await publishing.publisher()
            let impatientPublisher = try await impatient.publisher()
            try await publisher.publish(body(number: 0), exchange: "", routingKey: queue, properties: persistentProperties(number: 0))
            try await impatientPublisher.publish(body(number: 1), exchange: "", routingKey: queue, properties: persistentProperties(number: 1))

            try await broker.ctl("set_vm_memory_high_watermark", "0.0000001")
            // RabbitMQ blocks a connection (and says connection.blocked) at its first publish under
            // the alarm, so each connection publishes once more, and that publish stays unconfirmed.
            let completed = NumberSet()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await publisher.publish(body(number: 2), exchange: "", routingKey: queue, properties: persistentProperties(number: 2))
                    completed.insert(2)
                }
                group.addTask {
                    try await impatientPublisher.publish(body(number: 3), exchange: "", routingKey: queue, properties: persistentProperties(number: 3))
                    completed.insert(3)
                }
                try await waitUntil("the broker blocks both connections") { publishing.isBlocked && impatient.isBlocked }

                // A publish that comes while blocked waits without being sent; the impatient
                // connection gives up on it after its one second...
                await #expect(throws: AMQPError.blockedTimeout(waited: .seconds(1))) {
                    try await impatientPublisher.publish(body(number: 4), exchange: "", routingKey: queue, properties: persistentProperties(number: 4))
                }
                // ...while the publishes the broker holds still wait, neither failed nor confirmed.
                #expect(completed.count == 0)
                #expect(publishing.isBlocked)

                try await broker.ctl("set_vm_memory_high_watermark", "0.4")
                try await group.waitForAll()
            }
            #expect(completed.snapshot == [2, 3])
            try await waitUntil("the broker unblocks") { !publishing.isBlocked && !impatient.isBlocked }
            try await publisher.publish(body(number: 5), exchange: "", routingKey: queue, properties: persistentProperties(number: 5))

            let consuming = try await broker.connect(name: "alarm-consumer")
            let delivered = try await receive(5, from: try await consuming.consume(queue: queue, prefetch: 10))
            #expect(delivered.compactMap(messageNumber).sorted() == [0, 1, 2, 3, 5])
            await consuming.close()
            await impatient.close()
            await publishing.close()
        }
    }

    @Test func aConsumersOwnTopologyIsDeclaredAgainAfterAReconnectAndForgottenWithTheConsumer() async throws {
        try await TestBroker.withDedicatedNode(label: "owned-topology") { broker in
            let connection = try await broker.connect(name: "owned-topology")
            let publisher = try await connection.publisher()
            func ownQueue(_ name: String) -> Topology {
                Topology(
                    queues: [.init(name, autoDelete: true)],
                    bindings: [.init(from: "amq.topic", to: .queue(name), routingKey: name)])
            }
            func queues() async throws -> String {
                try await broker.ctl("list_queues", "-p", "switchboard", "--no-table-headers", "--quiet", "name")
            }
            let kept = uniqueName("kept")
            let dropped = uniqueName("dropped")
            let keptConsumer = try await connection.consume(queue: kept, prefetch: 10, declaring: ownQueue(kept))
            let droppedConsumer = try await connection.consume(queue: dropped, prefetch: 10, declaring: ownQueue(dropped))
            #expect(try await queues().contains(dropped))
            droppedConsumer.cancel()
            try await waitUntil("the broker deletes the cancelled consumer's auto-delete queue") {
                !(try await queues().contains(dropped))
            }

            // Closing the connection deletes the kept auto-delete queue too; the reconnect must bring it back.
            let generation = connection.generation
            try await broker.ctl("close_all_connections", "--vhost", "switchboard", "forced by the test")
            try await waitUntil("the connection is made again", timeout: .seconds(60)) {
                connection.generation > generation && connection.state == .connected
            }
            try await publisher.publish(
                body(number: 7), exchange: "amq.topic", routingKey: kept, properties: persistentProperties(number: 7))
            let delivered = try await receive(1, from: keptConsumer)
            #expect(delivered.compactMap(messageNumber) == [7])
            #expect(!(try await queues().contains(dropped)), "a cancelled consumer's topology was declared again")
            keptConsumer.cancel()
            await connection.close()
        }
    }

    /// A stream consumer resumes after a reconnect where it left off: the record it had read last is
    /// read again as proof that the stream is the same, and not handed on twice.
    @Test func aStreamConsumerResumesAfterAReconnectWithNoRecordTwiceAndNoneSkipped() async throws {
        try await TestBroker.withDedicatedNode(label: "stream-resume") { broker in
            let stream = uniqueName("resume")
            let (connection, publisher, consumer) = try await streamConsumer(broker, stream: stream)
            try await publishNumbers(0..<3, to: stream, with: publisher)
            let before = try await receive(3, from: consumer)
            #expect(before.compactMap { StreamOffset.position(in: $0.properties.headers) } == [0, 1, 2])

            try await broker.ctl("close_all_connections", "-p", "switchboard", "resume test")
            try await waitUntil("the connection is back") { connection.generation > 1 && connection.state == .connected }
            try await publishNumbers(3..<5, to: stream, with: publisher)
            let after = try await receive(2, from: consumer)
            #expect(after.compactMap { StreamOffset.position(in: $0.properties.headers) } == [3, 4])
            #expect(after.compactMap(messageNumber) == [3, 4])
            await connection.close()
        }
    }

    /// A stream deleted and declared again while its consumer was disconnected starts over from offset 0.
    /// Resuming at the last offset read would wait for nothing, or read other records as the ones it missed.
    /// The consumer ends with an error instead, whether another record is at that offset or none yet.
    @Test func aStreamDeclaredAgainWhileDisconnectedEndsItsConsumer() async throws {
        try await TestBroker.withDedicatedNode(label: "stream-again") { broker in
            var configuration = try broker.configuration()
            configuration.operationTimeout = .seconds(3)
            let grown = uniqueName("grown")
            let empty = uniqueName("empty")
            let (connection, publisher, grownConsumer) = try await streamConsumer(broker, stream: grown, configuration)
            let emptyConsumer = try await consumeStream(empty, on: connection)
            for (stream, consumer) in [(grown, grownConsumer), (empty, emptyConsumer)] {
                try await publishNumbers(0..<3, to: stream, with: publisher)
                _ = try await receive(3, from: consumer)
            }

            try await lockOut(broker, while: {
                for stream in [grown, empty] { try await broker.ctl("delete_queue", "-p", "switchboard", stream) }
            }) {
                connection.state.failedAttempts >= 1
            }
            // Each declared again by its consumer's own topology; the grown one gets another offset 2 at once.
            try await waitUntil("the connection is back") { connection.state == .connected }
            try await publishNumbers(10..<14, to: grown, with: publisher)
            for (consumer, reason) in [(grownConsumer, "another record is at that offset"), (emptyConsumer, "nothing came")] {
                let ending = await howItEnds(consumer, within: .seconds(30))
                guard case .streamNotResumed(_, let offset, let why)? = ending as? AMQPError else {
                    Issue.record("the consumer ended with \(String(describing: ending))")
                    continue
                }
                #expect(offset == 2 && why.hasPrefix(reason), "\(why)")
            }
            await connection.close()
        }
    }

    /// A Router's journal deleted and declared again while the instances of its shard were disconnected: the
    /// active one and the standby each stop as for a lost subscription (their journal subscriptions cannot
    /// resume), and started again, an instance reads the new journal from its start and takes the shard over.
    @Test(.stopsServices) func aJournalDeclaredAgainWhileDisconnectedStopsItsInstancesToReadItAfresh() async throws {
        try await TestBroker.withDedicatedNode(label: "journal-again") { broker in
            let journal = ServiceTopology.journal(.router, shard: 0)
            func router(_ name: String) throws -> RunningService<RouterAdapter> {
                try RunningService<RouterAdapter>.start(
                    broker, name: name, shards: [0], shardCount: 1, operationTimeout: .seconds(3))
            }
            let active = try router("router-journal-again-active")
            try await active.waitUntilEveryShard(.active)
            let standby = try router("router-journal-again-standby")
            try await standby.waitUntilEveryShard(.standby)

            try await lockOut(broker, while: { try await broker.ctl("delete_queue", "-p", "switchboard", journal) }) {
                [active, standby].allSatisfy { ($0.runtime.readiness.connectionState?.failedAttempts ?? 0) >= 1 }
            }
            for instance in [active, standby] {
                let lost = try #require(try await instance.waitUntilItStops(timeout: .seconds(60)) as? SubscriptionLost)
                #expect(lost.shard == 0 && lost.queue == journal, "\(lost)")
            }
            let again = try router("router-journal-again-restarted")
            try await again.waitUntilEveryShard(.active)
            try await again.stop()
        }
    }
}

/// Publishes until the broker confirms it has the message in the queue, retrying what a lost connection left
/// unconfirmed and what the broker returned because the queue was not there yet after its restart.
private func publishUntilConfirmed(_ number: Int, to queue: String, with publisher: AMQPPublisher) async throws {
    while true {
        do {
            try await publisher.publish(
                body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number),
                mandatory: true)
            return
        } catch let error as AMQPError {
            switch error {
            case .connectionLost, .notConnected, .publishReturned:
                continue
            default:
                throw error
            }
        }
    }
}

/// Keeps the `switchboard` user out of its vhost, closes its connections, waits until `lockedOut` holds (their
/// reconnects fail), runs `meanwhile`, and lets the user back in.
private func lockOut(
    _ broker: TestBroker, while meanwhile: () async throws -> Void, until lockedOut: @escaping @Sendable () -> Bool
) async throws {
    try await broker.ctl("clear_permissions", "-p", "switchboard", "switchboard")
    do {
        try await broker.ctl("close_all_connections", "-p", "switchboard", "locked out by a test")
        try await waitUntil("reconnects fail while locked out", lockedOut)
        try await meanwhile()
    } catch {
        _ = try? await broker.ctl("set_permissions", "-p", "switchboard", "switchboard", ".*", ".*", ".*")
        throw error
    }
    try await broker.ctl("set_permissions", "-p", "switchboard", "switchboard", ".*", ".*", ".*")
}

/// A connection, a publisher on it, and a consumer of `stream` (`consumeStream`).
private func streamConsumer(
    _ broker: TestBroker, stream: String, _ configuration: AMQPConfiguration? = nil
) async throws -> (AMQPConnection, AMQPPublisher, AMQPConsumer) {
    var configuration = try configuration ?? broker.configuration()
    configuration.connectionName = stream
    let connection = try await AMQPConnection.connect(configuration, logger: Logger(label: "switchboard.test.\(stream)"))
    let consumer = try await consumeStream(stream, on: connection)
    return (connection, try await connection.publisher(confirmWindow: 16), consumer)
}

/// Consumes `stream` (a stream queue, declared as the consumer's own topology) from its first record.
private func consumeStream(_ stream: String, on connection: AMQPConnection) async throws -> AMQPConsumer {
    try await connection.consume(
        queue: stream, prefetch: 100, arguments: StreamOffset.first.consumerArguments,
        declaring: Topology(queues: [.init(stream, kind: .stream)]))
}

private func publishNumbers(_ numbers: Range<Int>, to queue: String, with publisher: AMQPPublisher) async throws {
    for number in numbers {
        try await publisher.publish(
            body(number: number), exchange: "", routingKey: queue, properties: persistentProperties(number: number))
    }
}

/// The error `consumer` ends with within `timeout`, each record it delivers meanwhile recorded as an issue;
/// `TimedOut` when it goes on.
private func howItEnds(_ consumer: AMQPConsumer, within timeout: Duration) async -> (any Error)? {
    await withTaskGroup(of: (any Error)?.self) { group in
        group.addTask {
            do {
                for try await delivery in consumer {
                    Issue.record("a record of the new stream was delivered: \(messageNumber(delivery) ?? -1)")
                }
                return nil
            } catch {
                return error
            }
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return TimedOut(description: "the consumer did not end within \(timeout)")
        }
        defer { group.cancelAll() }
        return await group.next() ?? nil
    }
}

final class NumberSet: Sendable {
    private let numbers = Mutex<Set<Int>>([])

    func insert(_ number: Int) { _ = numbers.withLock { $0.insert(number) } }
    var count: Int { numbers.withLock { $0.count } }
    var snapshot: Set<Int> { numbers.withLock { $0 } }
}

/// Hands out consecutive message numbers until stopped.
final class NumberSource: Sendable {
    private let state = Mutex<(next: Int, stopped: Bool)>((0, false))

    func next() -> Int? {
        state.withLock { state in
            guard !state.stopped else { return nil }
            defer { state.next += 1 }
            return state.next
        }
    }

    func stop() { state.withLock { $0.stopped = true } }
    var issued: Int { state.withLock { $0.next } }
}

extension AMQPConnectionState {
    /// Failed reconnect attempts so far; 0 while connected.
    fileprivate var failedAttempts: Int {
        guard case .reconnecting(let failedAttempts) = self else { return 0 }
        return failedAttempts
    }
}
