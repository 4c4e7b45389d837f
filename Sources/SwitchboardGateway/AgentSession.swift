import SwitchboardCommon

/// Names one open WebSocket of the gateway.
public struct SocketID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "socket-\(rawValue)" }
}

/// A workstation event on its way to the page: the Notifier's JSON body unchanged, with what the
/// session needs to check the order.
public struct RelayedEvent: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Counts in the agent's `seq`.
        case counted
        /// Ephemeral: repeats the latest `seq` without counting.
        case countdown
        /// The answer to `agent.sync`: the agent's full state, from which the `seq` starts again.
        case state
    }

    public var seq: UInt64
    public var kind: Kind
    /// The message id: the same for every publication of the same event (a Notifier that took over publishes
    /// the tail of its journal again, with the same ids).
    public var id: String
    /// The body exactly as published, sent to the page as one text frame.
    public var text: String
    /// The agent's status, when the event tells it (`status.changed`, `state`).
    public var status: AgentStatus?

    public init(seq: UInt64, kind: Kind, id: String, text: String, status: AgentStatus? = nil) {
        self.seq = seq
        self.kind = kind
        self.id = id
        self.text = text
        self.status = status
    }

    public init(_ event: WorkstationEvent, id: MessageID, text: String) {
        let kind: Kind
        switch event.body {
        case .countdown: kind = .countdown
        case .state: kind = .state
        case .ring, .ringStopped, .sessionStarted, .sessionEnded, .statusChanged, .commandRejected: kind = .counted
        }
        let status: AgentStatus?
        switch event.body {
        case .statusChanged(let changed, _): status = changed
        case .state(let state): status = state.status
        default: status = nil
        }
        self.init(seq: event.seq, kind: kind, id: id.rawValue, text: text, status: status)
    }
}

/// One signed-in agent on this gateway, as a pure state machine: which of its sockets are open, the
/// `seq` it expects next, the grace period after its last socket closed and the events that arrived
/// meanwhile. The shell feeds it inputs with the wall-clock time and runs the effects it returns.
///
/// Lifecycle: created when the agent's first socket opens; `subscribed` once its queue is bound (a sync
/// asked for before that waits, or its answer could arrive before the binding and be lost); `signedOff`
/// when the grace period ran out with no socket, after which the shell drops it and every input is ignored.
///
/// A sync also waits until the agent's presence is held (`presenceHeld`; the shell lets it go with the grace
/// period): a page's first state is then never older than the moment other gateways can see it open, so a
/// sign-off by another gateway either comes before that state, which shows it, or is set back (`signOff`).
public struct AgentSession: Sendable {
    public struct Settings: Hashable, Sendable {
        /// How long a session outlives its last socket before the agent is signed off.
        public var graceMs: Milliseconds
        /// A sync asked for by a gap is not asked for again sooner than this while its answer is awaited.
        public var syncRetryMs: Milliseconds
        /// Events kept for a reconnect within the grace period; beyond it they are dropped and the sync
        /// that every reconnect asks for covers them.
        public var bufferLimit: Int
        /// Pages of one agent open at once on this gateway; one more is refused. Each page asks for the agent's
        /// state when it opens, so without a bound one sign-in link could keep the Router answering syncs.
        public var maxPages: Int
        /// The latest counted events and states whose ids are kept, so that one published again is recognised.
        public var rememberedEvents: Int

        public init(
            graceMs: Milliseconds, syncRetryMs: Milliseconds = 5_000, bufferLimit: Int = 1_000,
            maxPages: Int = GatewayConfiguration.defaultMaxPagesPerAgent, rememberedEvents: Int = 256
        ) {
            self.graceMs = graceMs
            self.syncRetryMs = syncRetryMs
            self.bufferLimit = bufferLimit
            self.maxPages = maxPages
            self.rememberedEvents = rememberedEvents
        }
    }

    public enum Input: Hashable, Sendable {
        case socketOpened(SocketID)
        case socketClosed(SocketID)
        /// The agent's queue is bound and consumed.
        case subscribed
        /// The agent's presence is held again (or cannot be), after the first socket opened or a grace period.
        case presenceHeld
        case event(RelayedEvent)
        /// The timer of `Effect.startGraceTimer` fired (possibly after a reconnect made it moot).
        case graceTimerFired
        /// The broker connection came back. The agent's queue went with the lost connection and is bound again,
        /// but what was published for the agent meanwhile is gone, and a gap shows only when a later event comes.
        case brokerReconnected
        /// The `agent.sync` of `Effect.requestSync` could not be published (fed a while after the failure).
        case syncFailed
    }

    public enum Effect: Hashable, Sendable {
        /// Send one text frame to each of these sockets, in the order the effects come.
        case deliver(String, to: [SocketID])
        /// Publish `agent.sync` for this agent.
        case requestSync
        /// Feed `graceTimerFired` at this time.
        case startGraceTimer(at: Instant)
        /// Publish `agent.status offline` for this agent, stop consuming its queue and forget the session. If a
        /// page of the agent opened on another gateway meanwhile, set its status back to `restoring` (the
        /// last one this gateway relayed; `nil` if none, or offline).
        case signOff(restoring: AgentStatus?)
    }

    public enum Phase: Hashable, Sendable {
        /// At least one socket is open.
        case connected
        /// No socket is open; the agent is signed off at this time unless one opens before.
        case grace(until: Instant)
        case signedOff
    }

    public let settings: Settings
    public private(set) var phase: Phase = .connected
    /// Open sockets, in the order they opened.
    public private(set) var sockets: [SocketID] = []
    /// The `seq` of the last counted event relayed; `nil` before the first.
    public private(set) var lastSeq: UInt64?
    public private(set) var isSubscribed = false
    public private(set) var isPresenceHeld = false
    /// The agent's status as the last event that told it said.
    public private(set) var lastStatus: AgentStatus?
    /// Events that arrived during the grace period, in order.
    public private(set) var buffered: [String] = []
    private var bufferOverflowed = false
    private var syncPending = false
    private var syncRequestedAt: Instant?
    /// The ids of the latest counted events and states relayed, by `seq` (hashed: only compared).
    private var relayedIDs: [UInt64: Int] = [:]

    public init(settings: Settings) {
        self.settings = settings
    }

    public mutating func handle(_ input: Input, at now: Instant) -> [Effect] {
        switch phase {
        case .signedOff:
            return []
        case .connected, .grace:
            break
        }
        switch input {
        case .socketOpened(let socket):
            return socketOpened(socket, at: now)
        case .socketClosed(let socket):
            return socketClosed(socket, at: now)
        case .subscribed:
            isSubscribed = true
            return pendingSync(at: now)
        case .presenceHeld:
            isPresenceHeld = true
            return pendingSync(at: now)
        case .event(let event):
            return received(event, at: now)
        case .brokerReconnected:
            // The Notifier's journal may have started again with the broker (its data lost): ids it publishes
            // from now on can repeat earlier ones for other events.
            relayedIDs = [:]
            return requestSync(at: now, force: true)
        case .syncFailed:
            // Not forced: the retries of several failed requests collapse into one per `syncRetryMs`.
            return requestSync(at: now, force: false)
        case .graceTimerFired:
            guard case .grace(let deadline) = phase, now >= deadline else { return [] }
            phase = .signedOff
            buffered = []
            return [.signOff(restoring: lastStatus == .offline ? nil : lastStatus)]
        }
    }

    // MARK: - Sockets

    /// Every new socket starts from the server's truth: a sync is asked for even when buffered events
    /// are replayed first, since the page may have been reloaded and know nothing.
    private mutating func socketOpened(_ socket: SocketID, at now: Instant) -> [Effect] {
        var effects: [Effect] = []
        switch phase {
        case .grace:
            effects = buffered.map { .deliver($0, to: [socket]) }
            buffered = []
            bufferOverflowed = false
            phase = .connected
        case .connected, .signedOff:
            break
        }
        if !sockets.contains(socket) { sockets.append(socket) }
        effects += requestSync(at: now, force: true)
        return effects
    }

    private mutating func socketClosed(_ socket: SocketID, at now: Instant) -> [Effect] {
        guard sockets.contains(socket) else { return [] }
        sockets.removeAll { $0 == socket }
        guard sockets.isEmpty else { return [] }
        let deadline = now + settings.graceMs
        phase = .grace(until: deadline)
        // The shell lets the presence go with the grace period.
        isPresenceHeld = false
        return [.startGraceTimer(at: deadline)]
    }

    // MARK: - Events

    private mutating func received(_ event: RelayedEvent, at now: Instant) -> [Effect] {
        var effects: [Effect] = []
        switch event.kind {
        case .state:
            // One relayed already, published again (a Notifier that took over publishes its journal's tail
            // again): taking it would set the sequence back and relay the events after it a second time.
            if isRelayedAlready(event) { return [] }
            lastSeq = event.seq
            syncRequestedAt = nil
            remember(event)
        case .counted:
            if let lastSeq, event.seq <= lastSeq {
                // Published again: nothing new. Otherwise a Notifier whose numbering started again: drop it
                // and let a state answer settle it.
                if isRelayedAlready(event) { return [] }
                return requestSync(at: now, force: false)
            }
            if let lastSeq, event.seq > lastSeq + 1 {
                effects += requestSync(at: now, force: false)
            }
            lastSeq = event.seq
            remember(event)
        case .countdown:
            if let lastSeq, event.seq < lastSeq { return [] }
            if let lastSeq, event.seq > lastSeq {
                // The countdown names a counted event this gateway never saw.
                effects += requestSync(at: now, force: false)
            }
            lastSeq = event.seq
        }
        if let status = event.status { lastStatus = status }
        return relay(event) + effects
    }

    private func isRelayedAlready(_ event: RelayedEvent) -> Bool {
        relayedIDs[event.seq] == event.id.hashValue
    }

    private mutating func remember(_ event: RelayedEvent) {
        relayedIDs[event.seq] = event.id.hashValue
        // Amortised: the window is cut back to its size once it holds twice as many.
        guard relayedIDs.count > 2 * settings.rememberedEvents else { return }
        let oldestKept = event.seq - min(event.seq, UInt64(settings.rememberedEvents))
        relayedIDs = relayedIDs.filter { seq, _ in seq > oldestKept && seq <= event.seq }
    }

    private mutating func relay(_ event: RelayedEvent) -> [Effect] {
        switch phase {
        case .connected:
            return [.deliver(event.text, to: sockets)]
        case .grace:
            // A countdown is stale by the time the page is back; the state answer brings the live rings.
            guard event.kind != .countdown, !bufferOverflowed else { return [] }
            if buffered.count >= settings.bufferLimit {
                buffered = []
                bufferOverflowed = true
                return []
            }
            buffered.append(event.text)
            return []
        case .signedOff:
            return []
        }
    }

    /// A sync's answer reaches the page (the queue is bound) and shows the presence other gateways see.
    private var canSync: Bool { isSubscribed && isPresenceHeld }

    /// The sync asked for while the queue was not bound or the presence not held, once both are.
    private mutating func pendingSync(at now: Instant) -> [Effect] {
        guard syncPending, canSync else { return [] }
        syncPending = false
        syncRequestedAt = now
        return [.requestSync]
    }

    /// `force`: a new socket needs the state whatever was asked before.
    private mutating func requestSync(at now: Instant, force: Bool) -> [Effect] {
        guard canSync else {
            syncPending = true
            return []
        }
        if !force, let asked = syncRequestedAt, now - asked < settings.syncRetryMs { return [] }
        syncRequestedAt = now
        return [.requestSync]
    }
}
