import BenchOptions
import Foundation
import Histogram
import Logging
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps

/// The desks the benchmark configures: several for the load, so every shard gets some, and one each
/// with a short ring and a short inactivity time for the timer measurements.
struct BenchDesks: Sendable {
    var load: [DeskID]
    var ringExpiry: DeskID
    var inactivity: DeskID
    var ringMs: Milliseconds
    var inactivityMs: Milliseconds
    var agentsPerDesk: Int
    var agentCapacity: Int

    static let standard = BenchDesks(
        load: (0..<12).map { try! DeskID("bench-load-\($0)") }, ringExpiry: try! DeskID("bench-expiry"),
        inactivity: try! DeskID("bench-idle"), ringMs: 2_000, inactivityMs: 2_000, agentsPerDesk: 8, agentCapacity: 8)

    var all: [DeskID] { load + [ringExpiry, inactivity] }

    /// The ring time of every desk but the ring-expiry one.
    static let loadRingMs: Milliseconds = 30_000

    func ringMs(of desk: DeskID) -> Milliseconds { desk == ringExpiry ? ringMs : Self.loadRingMs }
}

struct LatencySummary: Codable {
    var count: UInt64
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var maxMilliseconds: Double

    init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        p50Milliseconds = Double(histogram.valueAtPercentile(50)) / 1e3
        p99Milliseconds = Double(histogram.valueAtPercentile(99)) / 1e3
        maxMilliseconds = Double(histogram.max) / 1e3
    }
}

struct PacedPhase: Codable {
    var targetPerSecond: Double
    var achievedPerSecond: Double
    var conversations: Int
    var requestToRing: LatencySummary
    var requestToRingLegs: RingLegs.Summary
    /// request→ring's broker operations measured alone beside the phase (`BrokerProbe`), when the run has the probe.
    var brokerFloor: BrokerFloor?
}

/// request→ring (or ring expiry→next ring) in three legs, from the times the ring carries: the Router's decision
/// is its batch's time (`expiresAt - ringMs`), the Notifier's is `serverTime`. Wall-clock milliseconds on one
/// machine, so each leg is within a millisecond or so; the legs' p99s need not add up to the whole's.
struct RingLegs {
    /// From the request (or the expired ring's deadline) to the Router's batch.
    var toRouter = Players.histogram()
    var routerToNotifier = Players.histogram()
    var notifierToWorkstation = Players.histogram()

    /// Records the legs of a ring that expires at `expiresAt` after `ringMs`, sent by the Notifier at
    /// `serverTime` and received at `receivedAt`.
    mutating func record(
        startedAt: Instant, expiresAt: Instant, ringMs: Milliseconds, serverTime: Instant, receivedAt: Instant
    ) {
        let routerAt = expiresAt + (-ringMs)
        Players.record(milliseconds: routerAt - startedAt, in: &toRouter)
        Players.record(milliseconds: serverTime - routerAt, in: &routerToNotifier)
        Players.record(milliseconds: receivedAt - serverTime, in: &notifierToWorkstation)
    }

    struct Summary: Codable {
        var toRouter: LatencySummary
        var routerToNotifier: LatencySummary
        var notifierToWorkstation: LatencySummary
    }

    var summary: Summary {
        Summary(
            toRouter: LatencySummary(toRouter), routerToNotifier: LatencySummary(routerToNotifier),
            notifierToWorkstation: LatencySummary(notifierToWorkstation))
    }
}

/// Everything `run` measured; `report` adds the ceiling and the memory.
struct LoadResult: Codable {
    var loadDesks: Int
    var agents: Int
    var closedLoopConcurrency: Int
    var maxConversationsPerSecond: Double
    var maxPhaseConversations: Int
    var inputsPerConversation: Double
    var effectsPerConversation: Double
    /// Every message published to the broker: inputs from users and agents, the services' effects, and
    /// their journal records (each a message published, stored and read back like any other).
    var messagesPerConversation: Double
    /// Journal messages (one per batch of entries, or a large snapshot's parts) per conversation.
    var journalAppendsPerConversation: Double
    var serviceDeliveriesPerConversation: Double
    var meanBodyBytes: Int
    var requestToRingAtMax: LatencySummary
    /// At a rate far below the maximum, before it: the latency of a quiet system, the floor for the others.
    var atTrickle: PacedPhase
    var at25Percent: PacedPhase
    var at75Percent: PacedPhase
    var expiryToNextRing: LatencySummary
    var expiryToNextRingLegs: RingLegs.Summary
    var inactivityToClosure: LatencySummary
    /// The services' own timer lateness in the 25% phase (where the ring-expiry and inactivity conversations run).
    var timerLatenessAt25Percent: [TimerLateness]
    /// Where the services' batches spent their time in the 25% phase.
    var batchesAt25Percent: [BatchCosts]
    /// What the services' snapshots cost from the closed-loop phase to the end of the 75% phase.
    var snapshots: [SnapshotCosts]
    var publishFailures: Int
    /// CPU time of the broker, the services and the load generator from the start of the closed-loop phase
    /// until its conversations drained, and that window's length.
    var cpuAtMax: [ProcessCPU]
    var cpuWindowSeconds: Double
}

struct LoadRun {
    let options: RunOptions
    let desks = BenchDesks.standard

    func measure() async throws -> LoadResult {
        var configuration = try AMQPConfiguration(url: options.url)
        configuration.connectionName = "switchboard-loadbench"
        var logger = Logger(label: "switchboard.loadbench")
        logger.logLevel = .warning
        let publishing = try await AMQPConnection.connect(configuration, logger: logger)
        let consuming = try await AMQPConnection.connect(configuration, logger: logger)
        let publisher = try await publishing.publisher(confirmWindow: 1_024)
        let players = Players(desks: desks, publisher: publisher, brokerUser: configuration.user)
        let queues = try await declareOwnQueues(consuming)
        let followers = [
            Task { try await follow(queues.workstations, on: consuming) { delivery in
                let event = try WireCodec.decodeWorkstationEvent(Data(delivery.body)).message
                await players.onWorkstationEvent(event, bodyBytes: delivery.body.count)
            } },
            Task { try await follow(queues.outbound, on: consuming) { delivery in
                let message = try WireCodec.decodeOutbound(Data(delivery.body)).message
                await players.onOutbound(message, bodyBytes: delivery.body.count)
            } },
        ]
        defer { followers.forEach { $0.cancel() } }

        try await configureDesks(players)
        say("warming up: one conversation per desk")
        for _ in desks.load { await players.start(.lifecycle) }
        try await drain(players, within: .seconds(60))
        let atTrickle = try await paced(players, rate: options.trickleRate, withTimers: false, probed: true)

        say("closed loop, \(options.concurrency) conversations in flight, \(options.phaseSeconds) s")
        let before = try ServiceCounters.scrape(options.metricsEndpoints)
        let cpuBefore = try options.cpu.read()
        let inputsBefore = await players.inputsPublished
        let bytesBefore = await (players.bodyBytes, players.bodies)
        await players.resetRequestToRing()
        await players.clearCompletions()
        let phaseStart = ContinuousClock.now
        await players.setKeepConcurrency(true)
        for _ in 0..<options.concurrency { await players.start(.lifecycle) }
        try await Task.sleep(for: .seconds(options.phaseSeconds))
        await players.setKeepConcurrency(false)
        let phaseEnd = ContinuousClock.now
        try await drain(players, within: .seconds(120))
        let completions = await players.lifecycleCompletions
        let requestToRingAtMax = await LatencySummary(players.requestToRing)
        let cpuAtMax = CPUProbe.used(from: cpuBefore, to: try options.cpu.read())
        let cpuWindow = seconds(phaseStart.duration(to: .now))
        // Also where the 25% phase's counts start: the services are idle between the two phases.
        let afterMax = try ServiceCounters.scrape(options.metricsEndpoints)
        let moved = afterMax - before
        let inputs = Double(await players.inputsPublished - inputsBefore)
        let bytes = await (players.bodyBytes - bytesBefore.0, players.bodies - bytesBefore.1)

        // The first fifth is the ramp; the rate is that of the rest of the phase.
        let steadyFrom = phaseStart + (phaseEnd - phaseStart) / 5
        let steady = completions.filter { $0 >= steadyFrom && $0 <= phaseEnd }.count
        let maxRate = Double(steady) / seconds(phaseEnd - steadyFrom)
        let conversations = Double(completions.count)
        say(String(format: "max %.1f conversations/s (%d finished)", maxRate, completions.count))

        let at25 = try await paced(players, rate: maxRate * 0.25, withTimers: true, probed: true)
        let at25Counters = try ServiceCounters.scrape(options.metricsEndpoints) - afterMax
        let at75 = try await paced(players, rate: maxRate * 0.75, withTimers: false, probed: false)
        let snapshots = (try ServiceCounters.scrape(options.metricsEndpoints) - before).snapshotSummaries

        let result = LoadResult(
            loadDesks: desks.load.count, agents: desks.load.count * desks.agentsPerDesk,
            closedLoopConcurrency: options.concurrency, maxConversationsPerSecond: maxRate,
            maxPhaseConversations: completions.count, inputsPerConversation: inputs / conversations,
            effectsPerConversation: moved.effectsPublished / conversations,
            messagesPerConversation: (inputs + moved.effectsPublished + moved.journalAppends) / conversations,
            journalAppendsPerConversation: moved.journalAppends / conversations,
            serviceDeliveriesPerConversation: moved.inputsConsumed / conversations,
            meanBodyBytes: bytes.1 > 0 ? bytes.0 / bytes.1 : 0, requestToRingAtMax: requestToRingAtMax,
            atTrickle: atTrickle, at25Percent: at25, at75Percent: at75,
            expiryToNextRing: await LatencySummary(players.expiryToNextRing),
            expiryToNextRingLegs: await players.expiryToNextRingLegs.summary,
            inactivityToClosure: await LatencySummary(players.inactivityToClosure),
            timerLatenessAt25Percent: at25Counters.timerLatenessSummaries, batchesAt25Percent: at25Counters.batchSummaries,
            snapshots: snapshots, publishFailures: await players.publishFailures, cpuAtMax: cpuAtMax,
            cpuWindowSeconds: cpuWindow)
        await publishing.close()
        await consuming.close()
        return result
    }

    /// Open loop: new conversations at `rate` per second whatever the system does, for one phase.
    /// `probed`: with the broker probe beside it, if the run has one.
    private func paced(_ players: Players, rate: Double, withTimers: Bool, probed: Bool) async throws -> PacedPhase {
        say(String(format: "paced at %.1f conversations/s, %d s%@%@", rate, options.phaseSeconds,
            withTimers ? ", with ring-expiry and inactivity conversations" : "",
            probed && options.brokerProbe != nil ? ", request→ring's broker operations probed beside it" : ""))
        await players.resetRequestToRing()
        let bodies = await (players.bodyBytes, players.bodies)
        let probe = try probed ? options.brokerProbe?.start(seconds: options.phaseSeconds, bodyBytes: bodies.0 / max(bodies.1, 1)) : nil
        let count = max(1, Int(rate * Double(options.phaseSeconds)))
        let clock = ContinuousClock()
        let start = clock.now
        let timers = Task {
            guard withTimers else { return }
            let every = Duration.seconds(options.phaseSeconds) / options.timerConversations
            for index in 0..<options.timerConversations {
                let due = start + every * index
                try await clock.sleep(until: due)
                await players.start(.ringExpiry, scheduledAt: due)
                await players.start(.inactivity, scheduledAt: due)
            }
        }
        for index in 0..<count {
            let due = start + .seconds(Double(index) / rate)
            try await clock.sleep(until: due)
            await players.start(.lifecycle, scheduledAt: due)
        }
        let elapsed = seconds(clock.now - start)
        try await timers.value
        try await drain(players, within: .seconds(120))
        return PacedPhase(
            targetPerSecond: rate, achievedPerSecond: Double(count) / max(elapsed, 1e-9), conversations: count,
            requestToRing: await LatencySummary(players.requestToRing),
            requestToRingLegs: await players.requestToRingLegs.summary, brokerFloor: try await probe?.result())
    }

    /// Waits until every conversation started has ended and every inactivity close has sent its closure
    /// message, so no timer a phase started goes unmeasured.
    private func drain(_ players: Players, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while await players.openCount > 0 {
            guard ContinuousClock.now < deadline else {
                throw BenchError("\(await players.openCount) conversations or closure messages still awaited after \(limit)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Returns once every desk's set-up is confirmed: a request published before its desk's `desk.configure`
    /// would be dead-lettered as for an unknown desk.
    private func configureDesks(_ players: Players) async throws {
        let group = try GroupID("support")
        var setups: [Task<Void, Never>] = []
        for desk in desks.all {
            let settings = DeskSettingsPatch(
                ringMs: desks.ringMs(of: desk), countdownEveryMs: 1_000, autoAccept: false,
                maxOfferAttempts: 3, missesBeforeBreak: 1_000,
                inactivityMs: desk == desks.inactivity ? desks.inactivityMs : 300_000, warningMs: 0)
            var setup: [InboundBody] = [.deskConfigure(settings)]
            for number in 0..<desks.agentsPerDesk {
                let agent = try AgentID("agent-\(number)")
                setup.append(.agentUpsert(AgentProfile(agent: agent, groups: [group], capacity: desks.agentCapacity)))
                setup.append(.agentStatus(agent: agent, status: .online))
            }
            setups.append(await players.send(desk: desk, setup))
        }
        for setup in setups { await setup.value }
    }

    private struct OwnQueues {
        var workstations: String
        var outbound: String
    }

    /// Exclusive queues of this process, bound to the benchmark's desks only.
    private func declareOwnQueues(_ connection: AMQPConnection) async throws -> OwnQueues {
        let base = "switchboard.loadbench.\(UUID().uuidString.prefix(8).lowercased())"
        let queues = OwnQueues(workstations: "\(base).workstations", outbound: "\(base).outbound")
        var topology = Topology()
        for name in [queues.workstations, queues.outbound] {
            topology.queues.append(.init(name, kind: .classic, durable: false, exclusive: true, autoDelete: true))
        }
        for desk in desks.all {
            topology.bindings.append(
                .init(from: ContractExchange.workstations.rawValue, to: .queue(queues.workstations), routingKey: "\(desk).*"))
        }
        topology.bindings.append(
            .init(from: ContractExchange.outbound.rawValue, to: .queue(queues.outbound), routingKey: "\(desks.inactivity).#"))
        try await connection.declare(topology)
        return queues
    }

    private func follow(
        _ queue: String, on connection: AMQPConnection, _ handle: @Sendable (AMQPDelivery) async throws -> Void
    ) async throws {
        for try await delivery in try await connection.consume(queue: queue, prefetch: 2_000, exclusive: true) {
            try await handle(delivery)
            try delivery.ack()
        }
    }

    private func seconds(_ duration: Duration) -> Double {
        duration / .seconds(1)
    }

    private func say(_ text: String) {
        FileHandle.standardError.write(Data("loadbench: \(text)\n".utf8))
    }
}

func writeJSON(_ value: some Encodable, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(value).write(to: URL(fileURLWithPath: path))
}
