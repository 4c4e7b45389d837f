import Foundation
import Logging
import Metrics
import SwitchboardAMQP
import SwitchboardCommon

/// Where the gateway writes the text frames of one socket; the socket's writer task drains it.
public struct SocketOutbox: Sendable {
    /// Frames waiting for a slow page; past this the socket is closed rather than let memory grow.
    public static let capacity = 1_000

    let continuation: AsyncStream<String>.Continuation

    /// A new outbox and the frames written to it, in order.
    public static func make() -> (SocketOutbox, AsyncStream<String>) {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        return (SocketOutbox(continuation: continuation), stream)
    }

    /// False when the page is too far behind; the caller closes the socket.
    @discardableResult
    public func send(_ text: String) -> Bool {
        switch continuation.yield(text) {
        case .enqueued: true
        case .dropped, .terminated: false
        @unknown default: false
        }
    }

    /// Ends the frames: the socket's writer returns and the socket closes.
    public func close() {
        continuation.finish()
    }
}

/// The signed-in agents of this gateway: one `AgentSession` per agent, its sockets, its queue
/// consumer and its grace timer. It only runs the effects the sessions return.
public actor SignedInAgents {
    private struct Live {
        let identity: AgentIdentity
        /// Tells this session's callbacks from those of an earlier session of the same agent.
        let generation: UInt64
        var session: AgentSession
        var outboxes: [SocketID: SocketOutbox] = [:]
        var consumer: AMQPConsumer?
        var consumerTask: Task<Void, Never>?
        var graceTask: Task<Void, Never>?
        /// Held while a page is open: tells other gateways this agent is still served (`signOff`).
        var presenceTask: Task<Void, Never>?
        /// Numbers each hold, so that only the latest reports itself held.
        var presenceHold: UInt64 = 0
    }

    private let broker: GatewayBroker
    private let settings: AgentSession.Settings
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let now: @Sendable () -> Instant
    private var live: [String: Live] = [:]
    private var nextGeneration: UInt64 = 0
    private var nextSocket: UInt64 = 0
    private var isShutDown = false
    /// Grace periods that ended, whose sign-off is still being decided or published.
    public private(set) var pendingSignOffs = 0
    /// Runs when a sign-off has found no page of the agent on another gateway, before it publishes `offline`.
    private let beforeSignOff: @Sendable (AgentIdentity) async -> Void

    /// `beforeSignOff` runs when a sign-off has found no page of the agent open elsewhere, before it publishes
    /// `offline` (tests use it to order two gateways' steps).
    public init(
        broker: GatewayBroker, settings: AgentSession.Settings, metrics: GatewayMetrics, logger: Logger,
        now: @escaping @Sendable () -> Instant = Instant.wallClock,
        beforeSignOff: @escaping @Sendable (AgentIdentity) async -> Void = { _ in }
    ) {
        self.broker = broker
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.now = now
        self.beforeSignOff = beforeSignOff
    }

    public enum Opening: Hashable, Sendable {
        case opened(SocketID)
        case shuttingDown
        /// The agent has `AgentSession.Settings.maxPages` pages open here already.
        case tooManyPages(limit: Int)
    }

    /// Registers a socket of `identity`, signing the agent in if it is not yet.
    public func open(_ identity: AgentIdentity, outbox: SocketOutbox) -> Opening {
        guard !isShutDown else { return .shuttingDown }
        let key = identity.routingKey
        if let open = live[key]?.outboxes.count, open >= settings.maxPages {
            return .tooManyPages(limit: settings.maxPages)
        }
        nextSocket += 1
        let socket = SocketID(nextSocket)
        if live[key] == nil {
            nextGeneration += 1
            live[key] = Live(identity: identity, generation: nextGeneration, session: AgentSession(settings: settings))
            startConsuming(identity, generation: nextGeneration)
            logger.info("agent signed in", metadata: ["desk": "\(identity.desk)", "agent": "\(identity.agent)"])
        }
        if live[key]?.outboxes.isEmpty == true { holdPresence(key) }
        live[key]?.outboxes[socket] = outbox
        handle(.socketOpened(socket), for: key)
        updateGauges()
        return .opened(socket)
    }

    public func close(_ socket: SocketID, of identity: AgentIdentity) {
        let key = identity.routingKey
        guard let outbox = live[key]?.outboxes.removeValue(forKey: socket) else { return }
        outbox.close()
        handle(.socketClosed(socket), for: key)
        updateGauges()
    }

    /// Closes every socket and stops every consumer, and leaves every agent's presence as it is: a
    /// gateway stops most often to be restarted or replaced, and its pages reconnect (to it once it is
    /// back, or to another instance) and go on where they were. An agent whose page does not come back
    /// misses its rings and is put on break by the Router, as after a crash of the gateway.
    public func shutDown() {
        isShutDown = true
        let agents = live.values
        live = [:]
        updateGauges()
        for agent in agents {
            agent.graceTask?.cancel()
            agent.presenceTask?.cancel()
            agent.consumer?.cancel()
            agent.consumerTask?.cancel()
            agent.outboxes.values.forEach { $0.close() }
        }
    }

    /// After a reconnect to the broker: every agent's queue went with the lost connection, with whatever was
    /// published to it meanwhile, so each agent's state is asked for again.
    public func brokerReconnected() {
        logger.info("the broker connection is back: asking for every signed-in agent's state", metadata: ["agents": "\(live.count)"])
        for key in live.keys {
            handle(.brokerReconnected, for: key)
        }
    }

    /// The number of agents with a session on this gateway (connected or in their grace period).
    public var sessionCount: Int { live.count }

    /// The number of open pages of all agents.
    public var openSocketCount: Int { live.values.reduce(0) { $0 + $1.outboxes.count } }

    // MARK: - Consuming

    private func startConsuming(_ identity: AgentIdentity, generation: UInt64) {
        let key = identity.routingKey
        live[key]?.consumerTask = Task {
            do {
                let consumer = try await broker.subscribe(identity)
                guard self.subscribed(consumer, key: key, generation: generation) else {
                    consumer.cancel()
                    return
                }
                for try await delivery in consumer {
                    self.received(delivery, key: key, generation: generation)
                    do {
                        try delivery.ack()
                    } catch {
                        // The connection was lost; the queue went with it and a gap will show.
                        logger.debug("an acknowledgement was not sent", metadata: ["error": "\(error)"])
                    }
                }
            } catch {
                self.subscriptionFailed(error, key: key, generation: generation)
            }
        }
    }

    private func subscribed(_ consumer: AMQPConsumer, key: String, generation: UInt64) -> Bool {
        guard live[key]?.generation == generation else { return false }
        live[key]?.consumer = consumer
        handle(.subscribed, for: key)
        return true
    }

    private func received(_ delivery: AMQPDelivery, key: String, generation: UInt64) {
        guard let identity = live[key]?.identity, live[key]?.generation == generation else { return }
        let body = Data(delivery.body)
        let identified: Identified<WorkstationEvent>
        do {
            identified = try WireCodec.decodeWorkstationEvent(body, properties: GatewayBroker.wireProperties(of: delivery))
        } catch {
            metrics.rejected(.invalidEvent)
            logger.warning(
                "a workstation event breaks the contract; it is not relayed",
                metadata: ["agent": "\(identity.agent)", "error": "\(error)"])
            return
        }
        let event = identified.message
        guard event.desk == identity.desk, event.agent == identity.agent else {
            metrics.rejected(.invalidEvent)
            logger.warning(
                "a workstation event for another agent reached this agent's queue; it is not relayed",
                metadata: ["agent": "\(identity.agent)", "event.agent": "\(event.agent)"])
            return
        }
        handle(.event(RelayedEvent(event, id: identified.id, text: String(decoding: body, as: UTF8.self))), for: key)
    }

    /// The queue could not be declared or consumed, or the broker ended the subscription: the pages are
    /// closed so that they reconnect and sign in again from the start.
    private func subscriptionFailed(_ error: any Error, key: String, generation: UInt64) {
        guard let agent = live[key], agent.generation == generation else { return }
        logger.error(
            "the agent's queue cannot be consumed; closing its pages",
            metadata: ["desk": "\(agent.identity.desk)", "agent": "\(agent.identity.agent)", "error": "\(error)"])
        live[key] = nil
        agent.graceTask?.cancel()
        agent.presenceTask?.cancel()
        let why = PageMessages.error(Self.subscriptionFailureText(error))
        agent.outboxes.values.forEach { outbox in
            outbox.send(why)
            outbox.close()
        }
        updateGauges()
    }

    /// What the pages closed by `subscriptionFailed` say while they connect again.
    static func subscriptionFailureText(_ error: any Error) -> String {
        if case AMQPError.tooManyChannels = error {
            return "This gateway is serving as many agents as it can right now. The page keeps trying; "
                + "if it goes on, tell your administrator."
        }
        return "The gateway could not reach your events at the switchboard. The page connects again."
    }

    /// Consumes the agent's presence queue until the task is cancelled. Nothing is ever delivered there;
    /// the consumer itself is the signal, and the connection declares and consumes it again after a
    /// reconnect. Without it another gateway may sign the agent off at the end of its own grace period.
    private func holdPresence(_ key: String) {
        guard let identity = live[key]?.identity, let generation = live[key]?.generation else { return }
        live[key]?.presenceTask?.cancel()
        live[key]?.presenceHold += 1
        let hold = live[key]?.presenceHold
        live[key]?.presenceTask = Task { [broker, logger] in
            do {
                let consumer = try await broker.holdPresence(identity)
                self.presenceHeld(key: key, generation: generation, hold: hold)
                await withTaskCancellationHandler {
                    do {
                        for try await _ in consumer {}
                    } catch {
                        logger.warning("the agent's presence is no longer held", metadata: ["error": "\(error)"])
                    }
                } onCancel: {
                    consumer.cancel()
                }
            } catch {
                logger.warning(
                    "the agent's presence cannot be held; another gateway may sign the agent off",
                    metadata: ["agent": "\(identity.agent)", "error": "\(error)"])
                // The page is served all the same.
                self.presenceHeld(key: key, generation: generation, hold: hold)
            }
        }
    }

    private func presenceHeld(key: String, generation: UInt64, hold: UInt64?) {
        guard let agent = live[key], agent.generation == generation, agent.presenceHold == hold else { return }
        handle(.presenceHeld, for: key)
    }

    // MARK: - Effects

    private func handle(_ input: AgentSession.Input, for key: String) {
        guard var agent = live[key] else { return }
        let effects = agent.session.handle(input, at: now())
        live[key] = agent
        for effect in effects {
            run(effect, for: key)
        }
    }

    private func run(_ effect: AgentSession.Effect, for key: String) {
        guard let agent = live[key] else { return }
        switch effect {
        case .deliver(let text, let sockets):
            metrics.relayedEvents.increment()
            for socket in sockets {
                guard let outbox = agent.outboxes[socket] else { continue }
                if !outbox.send(text) {
                    logger.warning(
                        "a page is too far behind; closing its socket",
                        metadata: ["agent": "\(agent.identity.agent)", "socket": "\(socket)"])
                    outbox.close()
                }
            }
        case .requestSync:
            metrics.syncs.increment()
            let identity = agent.identity
            let generation = agent.generation
            let retry = settings.syncRetryMs
            Task {
                guard await self.publish(.sync, for: identity) == false else { return }
                // Its answer would have settled a gap already passed over: nothing else would ask again.
                try? await Task.sleep(for: .milliseconds(retry))
                self.syncFailed(key: key, generation: generation)
            }
        case .startGraceTimer(let deadline):
            agent.graceTask?.cancel()
            agent.presenceTask?.cancel()
            live[key]?.presenceTask = nil
            let generation = agent.generation
            let wait = max(0, deadline - now())
            live[key]?.graceTask = Task {
                do {
                    try await Task.sleep(for: .milliseconds(wait))
                } catch {
                    return
                }
                self.graceTimerFired(key: key, generation: generation)
            }
        case .signOff(let restoring):
            live[key] = nil
            agent.presenceTask?.cancel()
            agent.consumer?.cancel()
            agent.consumerTask?.cancel()
            agent.outboxes.values.forEach { $0.close() }
            let identity = agent.identity
            pendingSignOffs += 1
            Task {
                await self.signOffUnlessServedElsewhere(identity, restoring: restoring)
                self.pendingSignOffs -= 1
            }
        }
    }

    /// Publishes `agent.status offline` for an agent whose grace period ended here, unless a page of the
    /// agent is open on another gateway (it moved there, or has a second tab there).
    ///
    /// A page that opens elsewhere while this is decided holds the agent's presence before it shows any state
    /// (`AgentSession`). So once `offline` is confirmed, a second look settles it: if a page holds the presence
    /// now, its state may predate the sign-off, and the agent's status is set back to `restoring`; if not, any
    /// page that opens from then on starts from a state that already says offline.
    private func signOffUnlessServedElsewhere(_ identity: AgentIdentity, restoring: AgentStatus?) async {
        let metadata: Logger.Metadata = ["desk": "\(identity.desk)", "agent": "\(identity.agent)"]
        do {
            if try await broker.gatewaysWithPagesOpen(identity) > 0 {
                metrics.handedOver.increment()
                logger.info("the agent's page is open on another gateway; not signed off", metadata: metadata)
                return
            }
        } catch {
            logger.warning(
                "cannot tell whether another gateway serves the agent; signing it off",
                metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        await beforeSignOff(identity)
        metrics.signOffs.increment()
        logger.info("agent signed off after the grace period", metadata: metadata)
        await publishOffline(identity)
        guard let restoring, (try? await broker.gatewaysWithPagesOpen(identity)) ?? 0 > 0 else { return }
        logger.info(
            "a page of the agent opened on another gateway meanwhile; its status is set back",
            metadata: metadata.merging(["status": "\(restoring)"]) { $1 })
        await publish(.status(restoring), for: identity)
    }

    private func graceTimerFired(key: String, generation: UInt64) {
        guard live[key]?.generation == generation else { return }
        handle(.graceTimerFired, for: key)
        updateGauges()
    }

    private func publishOffline(_ identity: AgentIdentity) async {
        await publish(.status(.offline), for: identity)
    }

    /// Publishes a command the gateway itself decided on (sync, offline); a failure is logged.
    /// Whether the broker took it.
    @discardableResult
    private func publish(_ command: PageCommand, for identity: AgentIdentity) async -> Bool {
        do {
            try await broker.publish(command.inboundMessage(for: identity, id: .random(), at: now()))
            return true
        } catch {
            metrics.rejected(.publishFailed)
            logger.error(
                "a command for the agent could not be published",
                metadata: ["agent": "\(identity.agent)", "command": "\(command)", "error": "\(error)"])
            return false
        }
    }

    /// While the broker is away the reconnect asks for every agent's state anyway.
    private func syncFailed(key: String, generation: UInt64) {
        guard live[key]?.generation == generation, broker.isConnected else { return }
        handle(.syncFailed, for: key)
    }

    private func updateGauges() {
        metrics.connectedAgents.record(live.values.filter { !$0.outboxes.isEmpty }.count)
        metrics.openSockets.record(openSocketCount)
        metrics.sessions.record(live.count)
    }
}

extension Instant {
    /// The wall clock, in the contract's milliseconds.
    @Sendable public static func wallClock() -> Instant {
        Instant(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)))
    }
}

extension MessageID {
    /// A new UUID, as every message of the gateway's gets.
    public static func random() -> MessageID {
        // A UUID string is 36 printable characters: always a valid id.
        try! MessageID(UUID().uuidString.lowercased())
    }
}
