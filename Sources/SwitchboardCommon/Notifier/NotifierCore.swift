import HeapModule

/// Turns Router facts into per-agent workstation events (PROTOCOL.md, "Workstation events"):
/// rings with their countdowns, ring stops, session starts and ends, status changes, rejections and state.
///
/// One value holds every desk of its shard. The core is pure: the shell passes the time in and runs the
/// returned effects in order.
public struct NotifierCore: Codable, Sendable, Equatable {
    public enum Input: Hashable, Sendable {
        case routerEvent(RouterEvent)
        /// A timer fired: every deadline at or before `now` is handled.
        case tick
    }

    public enum Effect: Hashable, Sendable {
        case publish(WorkstationEvent)
        /// The Router's per-desk `seq` skipped from `expected` to `got`. The event is applied anyway (the
        /// event log is authoritative), and every agent of the desk skips one `seq` too, so that each gateway sees
        /// a gap and asks for the state: what the missing facts would have shown is not shown otherwise. The
        /// shell logs and counts it.
        case routerGap(desk: DeskID, expected: UInt64, got: UInt64)
        /// The earliest pending deadline after this step. Always last, present whenever a deadline is pending.
        case wakeUp(at: Instant)
    }

    /// How long past its `expiresAt` a ring the Router never stopped keeps being tracked. After that its
    /// countdowns are over and it is forgotten without inventing a `ring.stopped`.
    public static let staleRingGraceMs: Milliseconds = 5_000

    private var desks: [DeskID: DeskView] = [:]
    /// Derived from `desks` (each live ring's `nextDeadline`), so it is rebuilt on decode rather than stored.
    /// Entries whose ring is gone or rescheduled are skipped when they surface (lazy deletion).
    private var timers = Heap<RingTimer>()

    public init() {}

    public mutating func handle(_ input: Input, at now: Instant) -> [Effect] {
        var effects: [Effect] = []
        switch input {
        case .routerEvent(let event):
            apply(event, at: now, into: &effects)
        case .tick:
            fireTimers(at: now, into: &effects)
        }
        if let next = nextValidDeadline() {
            effects.append(.wakeUp(at: next))
        }
        return effects
    }

    // MARK: - Router facts

    private mutating func apply(_ event: RouterEvent, at now: Instant, into effects: inout [Effect]) {
        let lastRouterSeq = desks[event.desk]?.lastRouterSeq ?? 0
        guard event.seq > lastRouterSeq else { return }
        // Taken out of the dictionary so that the step owns the only reference and mutates it in place.
        var step = DeskStep(deskID: event.desk, desk: desks.removeValue(forKey: event.desk) ?? DeskView(), now: now)
        if event.seq > lastRouterSeq + 1 {
            effects.append(.routerGap(desk: event.desk, expected: lastRouterSeq + 1, got: event.seq))
            for agent in step.desk.agents.keys {
                step.desk.agents[agent]!.seq += 1
            }
        }
        step.desk.lastRouterSeq = event.seq
        step.apply(event.body)
        for conversation in step.rescheduled {
            if let ring = step.desk.rings[conversation] {
                timers.insert(RingTimer(at: ring.nextDeadline, desk: event.desk, conversation: conversation))
            }
        }
        effects.append(contentsOf: step.effects)
        desks[event.desk] = step.desk
    }

    // MARK: - Timers

    private mutating func fireTimers(at now: Instant, into effects: inout [Effect]) {
        while let timer = timers.min, timer.at <= now {
            _ = timers.popMin()
            guard var ring = desks[timer.desk]?.rings[timer.conversation], ring.nextDeadline == timer.at else { continue }
            if now >= ring.expiresAt + Self.staleRingGraceMs {
                desks[timer.desk]?.rings[timer.conversation] = nil
                continue
            }
            if now < ring.expiresAt {
                let agentSeq = desks[timer.desk]?.agents[ring.agent]?.seq ?? 0
                effects.append(.publish(WorkstationEvent(
                    desk: timer.desk, agent: ring.agent, seq: agentSeq, at: now,
                    body: .countdown(conversation: timer.conversation, offer: ring.offer, remainingMs: ring.expiresAt - now))))
            }
            ring.nextDeadline = ring.deadline(after: now)
            desks[timer.desk]?.rings[timer.conversation] = ring
            timers.insert(RingTimer(at: ring.nextDeadline, desk: timer.desk, conversation: timer.conversation))
        }
    }

    /// Drops surfaced timers that no longer match a ring, so the answer depends only on the rings
    /// (and is the same after a snapshot restore).
    private mutating func nextValidDeadline() -> Instant? {
        while let timer = timers.min {
            if let ring = desks[timer.desk]?.rings[timer.conversation], ring.nextDeadline == timer.at {
                return timer.at
            }
            _ = timers.popMin()
        }
        return nil
    }

    // MARK: - Snapshot

    private enum CodingKeys: String, CodingKey {
        case desks
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        desks = try container.decode([DeskID: DeskView].self, forKey: .desks)
        for (deskID, desk) in desks {
            for (conversation, ring) in desk.rings {
                timers.insert(RingTimer(at: ring.nextDeadline, desk: deskID, conversation: conversation))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(desks, forKey: .desks)
    }

    /// Equal when the desks are: the timer heap is an index over them.
    public static func == (lhs: NotifierCore, rhs: NotifierCore) -> Bool {
        lhs.desks == rhs.desks
    }
}

// MARK: - Per-desk state

extension NotifierCore {
    struct DeskView: Codable, Sendable, Equatable {
        var lastRouterSeq: UInt64 = 0
        var countdownEveryMs: Milliseconds = DeskSettings.defaults.countdownEveryMs
        var agents: [AgentID: AgentView] = [:]
        /// The live ring of each ringing conversation (the Router keeps one live offer per conversation).
        var rings: [ConversationID: LiveRing] = [:]
        /// Who serves each conversation in session, so that a re-queue or transfer can close the old session.
        var serving: [ConversationID: AgentID] = [:]
    }

    struct AgentView: Codable, Sendable, Equatable {
        /// The `seq` of the last counted workstation event sent to this agent; 0 before the first.
        var seq: UInt64 = 0
        /// The status last announced with `status.changed`; `nil` before the first sighting.
        var status: AgentStatus?
    }

    struct LiveRing: Codable, Sendable, Equatable {
        var agent: AgentID
        var offer: OfferToken
        /// Countdowns fall at `startedAt + k * countdownEveryMs`, so late timers never make them drift.
        var startedAt: Instant
        var expiresAt: Instant
        /// The desk's cadence when the ring started (0: no countdowns).
        var countdownEveryMs: Milliseconds
        /// The next countdown, or `expiresAt + staleRingGraceMs` when no countdown is left.
        var nextDeadline: Instant

        init(agent: AgentID, offer: OfferToken, startedAt: Instant, expiresAt: Instant, countdownEveryMs: Milliseconds) {
            self.agent = agent
            self.offer = offer
            self.startedAt = startedAt
            self.expiresAt = expiresAt
            self.countdownEveryMs = countdownEveryMs
            self.nextDeadline = startedAt
            self.nextDeadline = deadline(after: startedAt)
        }

        /// The first countdown strictly after `now`, or the stale-ring deadline when none is left before expiry.
        func deadline(after now: Instant) -> Instant {
            let staleAt = expiresAt + NotifierCore.staleRingGraceMs
            guard countdownEveryMs > 0 else { return staleAt }
            let elapsedSteps = (now - startedAt) / countdownEveryMs
            let next = startedAt + (elapsedSteps + 1) * countdownEveryMs
            return next < expiresAt ? next : staleAt
        }
    }

    /// Ordered by time, then desk and conversation, so that timers due together fire in the same order in
    /// every process and after every restore.
    struct RingTimer: Comparable, Sendable {
        var at: Instant
        var desk: DeskID
        var conversation: ConversationID

        static func < (lhs: RingTimer, rhs: RingTimer) -> Bool {
            if lhs.at != rhs.at { return lhs.at < rhs.at }
            if lhs.desk != rhs.desk { return lhs.desk < rhs.desk }
            return lhs.conversation < rhs.conversation
        }
    }
}

// MARK: - Applying one Router fact to one desk

extension NotifierCore {
    /// One Router fact applied to one desk: collects the workstation events in order and the rings whose
    /// timer must be (re)armed.
    struct DeskStep {
        let deskID: DeskID
        var desk: DeskView
        let now: Instant
        var effects: [Effect] = []
        var rescheduled: [ConversationID] = []

        init(deskID: DeskID, desk: DeskView, now: Instant) {
            self.deskID = deskID
            self.desk = desk
            self.now = now
        }

        mutating func apply(_ body: RouterEventBody) {
            switch body {
            case .deskConfigured(let settings):
                desk.countdownEveryMs = settings.countdownEveryMs

            case .agentChanged(let agent, let status, _, _, _, let reason):
                // The first sighting counts as a change, so a workstation always learns its status once.
                guard desk.agents[agent]?.status != status else { return }
                desk.agents[agent, default: AgentView()].status = status
                publish(to: agent, .statusChanged(status: status, reason: reason))

            case .conversationQueued(let conversation, _, _, let reason):
                switch reason {
                case .transferred:
                    endSession(conversation, reason: .transferred)
                case .agentRemoved:
                    endSession(conversation, reason: .agentRemoved)
                case .noAgent, .attemptsExhausted:
                    break
                }

            case .offerMade(let conversation, let user, let agent, let offer, _, let expiresAt, _):
                publish(to: agent, .ring(
                    conversation: conversation, user: user, offer: offer, expiresAt: expiresAt,
                    remainingMs: max(0, expiresAt - now), serverTime: now))
                track(LiveRing(
                    agent: agent, offer: offer, startedAt: now, expiresAt: expiresAt,
                    countdownEveryMs: desk.countdownEveryMs), for: conversation)

            case .offerExpired(let conversation, let agent, let offer):
                stopRing(conversation, agent: agent, offer: offer, reason: .expired)

            case .offerDeclined(let conversation, let agent, let offer, _):
                stopRing(conversation, agent: agent, offer: offer, reason: .declined)

            case .offerWithdrawn(let conversation, let agent, let offer, _):
                stopRing(conversation, agent: agent, offer: offer, reason: .withdrawn)

            case .conversationAssigned(let conversation, let user, let agent, let offer, let mode):
                assign(conversation, user: user, to: agent, offer: offer, mode: mode)

            case .conversationEnded(let conversation, let agent, let reason):
                if let ring = desk.rings.removeValue(forKey: conversation) {
                    publish(to: ring.agent, .ringStopped(conversation: conversation, offer: ring.offer, reason: .withdrawn))
                }
                let knownServer = desk.serving.removeValue(forKey: conversation)
                if let server = agent ?? knownServer {
                    publish(to: server, .sessionEnded(conversation: conversation, reason: Self.sessionEndReason(reason)))
                }

            case .commandRejected(let rejection):
                if let agent = rejection.agent {
                    publish(to: agent, .commandRejected(rejection))
                }

            case .agentState(let state):
                publish(to: state.agent, .state(state))
                resynchronise(with: state)
            }
        }

        private mutating func assign(
            _ conversation: ConversationID, user: UserID, to agent: AgentID, offer: OfferToken?, mode: AssignMode
        ) {
            let ring = desk.rings.removeValue(forKey: conversation)
            switch mode {
            case .accepted:
                if let stoppedOffer = offer ?? ring?.offer {
                    publish(to: agent, .ringStopped(conversation: conversation, offer: stoppedOffer, reason: .accepted))
                }
            case .autoAccepted:
                break
            case .transferred:
                // The old workstation closes the session before the new one opens it.
                if let previous = desk.serving[conversation], previous != agent {
                    publish(to: previous, .sessionEnded(conversation: conversation, reason: .transferred))
                }
            }
            desk.serving[conversation] = agent
            publish(to: agent, .sessionStarted(conversation: conversation, user: user, mode: mode))
        }

        private mutating func endSession(_ conversation: ConversationID, reason: SessionEndReason) {
            guard let server = desk.serving.removeValue(forKey: conversation) else { return }
            publish(to: server, .sessionEnded(conversation: conversation, reason: reason))
        }

        /// The Router's stop is authoritative: it is forwarded even for a ring no longer tracked here.
        private mutating func stopRing(
            _ conversation: ConversationID, agent: AgentID, offer: OfferToken, reason: RingStopReason
        ) {
            if desk.rings[conversation]?.offer == offer {
                desk.rings[conversation] = nil
            }
            publish(to: agent, .ringStopped(conversation: conversation, offer: offer, reason: reason))
        }

        /// `agent.state` is the Router's full view of one agent: rings it lists that are unknown here get
        /// countdowns from now on; this agent's rings it does not list are forgotten. Sessions likewise, and the
        /// status (the page takes it from the state, so a later change back must be announced).
        private mutating func resynchronise(with state: AgentState) {
            desk.agents[state.agent, default: AgentView()].status = state.status
            let listedRings = Set(state.rings.map(\.offer))
            desk.rings = desk.rings.filter { _, ring in ring.agent != state.agent || listedRings.contains(ring.offer) }
            for summary in state.rings where desk.rings[summary.conversation]?.offer != summary.offer {
                track(LiveRing(
                    agent: state.agent, offer: summary.offer, startedAt: now, expiresAt: summary.expiresAt,
                    countdownEveryMs: desk.countdownEveryMs), for: summary.conversation)
            }
            let listedSessions = Set(state.sessions.map(\.conversation))
            desk.serving = desk.serving.filter { conversation, server in
                server != state.agent || listedSessions.contains(conversation)
            }
            for session in state.sessions {
                desk.serving[session.conversation] = state.agent
            }
        }

        private static func sessionEndReason(_ reason: EndReason) -> SessionEndReason {
            switch reason {
            case .agent: .agent
            case .user: .user
            case .admin: .admin
            case .inactivity: .inactivity
            }
        }

        private mutating func track(_ ring: LiveRing, for conversation: ConversationID) {
            desk.rings[conversation] = ring
            rescheduled.append(conversation)
        }

        private mutating func publish(to agent: AgentID, _ body: WorkstationEventBody) {
            var view = desk.agents[agent] ?? AgentView()
            view.seq += 1
            desk.agents[agent] = view
            effects.append(.publish(WorkstationEvent(desk: deskID, agent: agent, seq: view.seq, at: now, body: body)))
        }
    }
}

