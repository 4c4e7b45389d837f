import HeapModule

/// The Router's rules for one shard of desks: desks and their settings, agents, the waiting queue, offers
/// and their deadlines. Pure and deterministic: the shell feeds it inputs with the current time and carries
/// out the effects. Its `Codable` form is the shard's snapshot.
///
/// Decisions beyond PROTOCOL.md:
/// - An agent going on break (by command or after missed rings) has its live rings withdrawn
///   (`offer.withdrawn` reason `agentOnBreak`) and re-offered, as when it goes offline.
/// - An `agent.upsert` that takes an agent out of a ringing conversation's group, or lowers its capacity below
///   its sessions and live rings, withdraws those rings (the newest beyond capacity; reason `agentChanged`) and
///   re-offers them: a ring is never left that accepting would break.
/// - `agent.changed` reports changes of status or profile only (reasons `command`, `missedRings`, `removed`),
///   never load changes alone: load follows from the offer, assignment and end events.
///   An `agent.status` naming the agent's current status changes nothing and emits nothing.
/// - A new agent (`agent.upsert` of an unknown agent) starts `offline`.
/// - A request joins the tail of its priority; a conversation that already waited or was served
///   (ring ran out, attempts exhausted, transferred, its agent removed) joins the head of its priority.
///   `position` is 1-based in the desk's whole queue (priority, then order).
/// - An offer counts as the agent's assignment for `longestIdle`: idle time runs from the agent's last offer,
///   automatic assignment, transfer-in or release. `roundRobin` gives the turn to the eligible agent who was
///   given a conversation least recently (never: first, ties by agent id), so agents take turns in a stable order.
/// - A transferred conversation's new pass never offers it back to the agent who transferred it.
/// - A freed agent continues passes after its own ring expired or was declined (conversations already offered
///   to it are skipped) and starts new passes when it comes online, gets more room or finishes a session.
public struct RouterCore: Codable, Sendable, Equatable {
    public enum Input: Hashable, Sendable {
        case message(InboundMessage)
        /// A timer fired: every ring whose deadline is at or before `now` expires.
        case tick
        /// An agent's command the shell refused, of which these fields could still be read: `invalid` when it
        /// broke the contract, `forbidden` when its broker user may not send agent commands for its desk. The
        /// shell dead-letters the message; the core answers the agent with `command.rejected` and `reason` when
        /// the desk and the agent exist, so the rejection takes the desk's next `seq`, and changes nothing else.
        ///
        /// An invalid command's id is remembered (it stays invalid, so a redelivery is answered once). A
        /// forbidden one's is not: it must not stop the same id coming from an allowed user, or the message
        /// being taken when requeued after its user was allowed.
        case rejectedCommand(
            id: MessageID, desk: DeskID, agent: AgentID, type: String, conversation: ConversationID?,
            reason: RejectionReason)
    }

    public enum Effect: Hashable, Sendable {
        /// A fact for `switchboard.events`; `seq` per desk, gapless from 1.
        case publish(RouterEvent)
        /// The input being handled is bad input; the shell dead-letters it with this reason.
        case deadLetter(reason: String)
        /// The earliest pending ring deadline; last in the effects, present whenever a ring is live.
        case wakeUp(at: Instant)

        var isDeadLetter: Bool {
            switch self {
            case .deadLetter: true
            case .publish, .wakeUp: false
            }
        }
    }

    public struct Limits: CoreLimits {
        /// Message ids remembered per shard to drop duplicate deliveries.
        public var rememberedMessages: Int
        /// Finished offers remembered per desk so that a late accept gets a precise rejection.
        public var rememberedOffersPerDesk: Int

        public init(rememberedMessages: Int = 100_000, rememberedOffersPerDesk: Int = 10_000) {
            self.rememberedMessages = rememberedMessages
            self.rememberedOffersPerDesk = rememberedOffersPerDesk
        }

        public static var described: [CoreLimitDescription<Self>] {
            [
                .init(
                    "rememberedMessages", \.rememberedMessages,
                    summary: "message ids a Router shard remembers to drop duplicate deliveries"),
                .init(
                    "rememberedOffersPerDesk", \.rememberedOffersPerDesk,
                    summary: "finished offers remembered per desk, so a late accept is told offerExpired or offerNotYours"
                        + " (an older one of the desk's own is still offerExpired)"),
            ]
        }
    }

    private var desks: [DeskID: RouterDesk] = [:]
    private var seenMessages: BoundedRecall<MessageID, Bool>
    private var rememberedOffersPerDesk: Int
    /// Derived from the desks' live rings; may hold stale deadlines, dropped when they come up.
    private var deadlines = Heap<RingDeadline>()

    public init(limits: Limits = Limits()) {
        seenMessages = BoundedRecall(limit: limits.rememberedMessages)
        rememberedOffersPerDesk = limits.rememberedOffersPerDesk
    }

    /// What the core remembers at most.
    public var limits: Limits {
        Limits(rememberedMessages: seenMessages.limit, rememberedOffersPerDesk: rememberedOffersPerDesk)
    }

    /// Changes what the core remembers at most; a smaller limit forgets the oldest entries beyond it at once.
    /// Not an input a message can cause: the runtime journals a change, so every reader makes it at the same
    /// entry.
    public mutating func changeLimits(to limits: Limits) {
        seenMessages.changeLimit(to: limits.rememberedMessages)
        rememberedOffersPerDesk = limits.rememberedOffersPerDesk
        for id in desks.keys {
            desks[id]!.finishedOffers.changeLimit(to: limits.rememberedOffersPerDesk)
        }
    }

    public mutating func handle(_ input: Input, at now: Instant) -> [Effect] {
        var effects: [Effect] = []
        switch input {
        case .message(let message):
            if !seenMessages.contains(message.id) {
                handle(message, at: now, into: &effects)
                // A dead-lettered message is not remembered: once requeued (say, after its desk was configured)
                // it is taken like any other.
                if !effects.contains(where: \.isDeadLetter) {
                    seenMessages.remember(message.id, true)
                }
            }
        case .tick:
            expireRings(dueBy: now, into: &effects)
        case .rejectedCommand(let id, let desk, let agent, let type, let conversation, let reason):
            if !seenMessages.contains(id) {
                if reason != .forbidden {
                    seenMessages.remember(id, true)
                }
                let command = AgentCommand(id: id, type: type, agent: agent, conversation: conversation)
                reject(command, reason, on: desk, at: now, into: &effects)
            }
        }
        if let next = nextDeadline() {
            effects.append(.wakeUp(at: next))
        }
        return effects
    }

    // MARK: - Messages

    private mutating func handle(_ message: InboundMessage, at now: Instant, into effects: inout [Effect]) {
        func command(_ agent: AgentID, _ conversation: ConversationID? = nil) -> AgentCommand {
            AgentCommand(id: message.id, type: message.body.type, agent: agent, conversation: conversation)
        }
        switch message.body {
        case .messagePosted:
            effects.append(.deadLetter(reason: "message.posted is for the Closer; the Router does not take it"))
        case .deskConfigure(let patch):
            // A partial patch is valid alone; the rule across fields holds for the settings it would produce.
            do throws(ContractError) {
                try patch.applied(to: desks[message.desk]?.settings ?? .defaults).checkWarningPrecedesClose()
            } catch {
                var refusal = error
                refusal.messageType = message.body.type
                effects.append(.deadLetter(reason: "\(refusal) (with the desk's other settings)"))
                return
            }
            if desks[message.desk] == nil {
                desks[message.desk] = RouterDesk(
                    id: message.desk, settings: .defaults, finishedOfferLimit: rememberedOffersPerDesk)
            }
            onDesk(message, at: now, into: &effects) { desk, out in desk.configure(patch, &out) }
        case .conversationRequested(let request):
            onDesk(message, at: now, into: &effects) { desk, out in desk.request(request, &out) }
        case .conversationEnded(let conversation, let by):
            onDesk(message, at: now, into: &effects) { desk, out in desk.endConversation(conversation, by: by, &out) }
        case .agentStatus(let agent, let status):
            let command = command(agent)
            onDesk(message, at: now, into: &effects) { desk, out in desk.setStatus(command, to: status, &out) }
        case .offerAccept(let agent, let conversation, let offer):
            let command = command(agent, conversation)
            onDesk(message, at: now, into: &effects) { desk, out in desk.accept(command, offer: offer, &out) }
        case .offerDecline(let agent, let conversation, let offer, let reason):
            let command = command(agent, conversation)
            onDesk(message, at: now, into: &effects) { desk, out in
                desk.decline(command, offer: offer, reason: reason, &out)
            }
        case .sessionEnd(let agent, let conversation):
            let command = command(agent, conversation)
            onDesk(message, at: now, into: &effects) { desk, out in desk.endSession(command, &out) }
        case .sessionTransfer(let agent, let conversation, let target):
            let command = command(agent, conversation)
            onDesk(message, at: now, into: &effects) { desk, out in desk.transfer(command, to: target, &out) }
        case .agentSync(let agent):
            let command = command(agent)
            onDesk(message, at: now, into: &effects) { desk, out in desk.sync(command, &out) }
        case .agentUpsert(let profile):
            onDesk(message, at: now, into: &effects) { desk, out in desk.upsert(profile, &out) }
        case .agentRemove(let agent):
            let command = command(agent)
            onDesk(message, at: now, into: &effects) { desk, out in desk.remove(command, &out) }
        }
    }

    /// Runs `change` on the message's desk, or dead-letters the message when the desk was never configured.
    private mutating func onDesk(
        _ message: InboundMessage, at now: Instant, into effects: inout [Effect],
        _ change: (inout RouterDesk, inout DeskOutput) -> Void
    ) {
        guard desks[message.desk] != nil else {
            effects.append(.deadLetter(reason: "unknown desk \(message.desk): a desk exists once it received desk.configure"))
            return
        }
        var out = DeskOutput(at: now)
        change(&desks[message.desk]!, &out)
        collect(out, into: &effects)
        for deadline in out.deadlines {
            deadlines.insert(deadline)
        }
    }

    /// Nothing to answer when the desk or the agent is unknown: the command is only dead-lettered.
    private mutating func reject(
        _ command: AgentCommand, _ reason: RejectionReason, on desk: DeskID, at now: Instant,
        into effects: inout [Effect]
    ) {
        guard desks[desk]?.agents[command.agent] != nil else { return }
        var out = DeskOutput(at: now)
        desks[desk]!.rejectRefused(command, reason, &out)
        collect(out, into: &effects)
    }

    private func collect(_ out: DeskOutput, into effects: inout [Effect]) {
        effects.reserveCapacity(effects.count + out.events.count + 1)
        for event in out.events {
            effects.append(.publish(event))
        }
    }

    // MARK: - Deadlines

    private mutating func expireRings(dueBy now: Instant, into effects: inout [Effect]) {
        // Rings made while expiring wait for the next tick, even with a zero ring time, so one tick always ends.
        var madeNow: [RingDeadline] = []
        while let due = deadlines.min, due.at <= now {
            _ = deadlines.popMin()
            guard desks[due.desk]?.isLive(due) == true else { continue }
            var out = DeskOutput(at: now)
            desks[due.desk]!.expire(due.conversation, offerNumber: due.offer, &out)
            collect(out, into: &effects)
            madeNow.append(contentsOf: out.deadlines)
        }
        for deadline in madeNow {
            deadlines.insert(deadline)
        }
    }

    /// The earliest live deadline, dropping stale ones on the way.
    private mutating func nextDeadline() -> Instant? {
        while let next = deadlines.min {
            if desks[next.desk]?.isLive(next) == true {
                return next.at
            }
            _ = deadlines.popMin()
        }
        return nil
    }

    // MARK: - Reading

    /// A desk as it is now; `nil` when it was never configured here.
    public func state(of desk: DeskID) -> RouterDeskState? {
        desks[desk]?.state
    }

    // MARK: - Snapshot

    /// Equal when their snapshots hold the same state (compared by value: encoded bytes vary with
    /// dictionary order). The timer heap is derived from the desks.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.desks == rhs.desks && lhs.seenMessages == rhs.seenMessages
            && lhs.rememberedOffersPerDesk == rhs.rememberedOffersPerDesk
    }

    private enum CodingKeys: String, CodingKey {
        case desks, seenMessages, rememberedOffersPerDesk
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        desks = try container.decode([DeskID: RouterDesk].self, forKey: .desks)
        seenMessages = try BoundedRecall(
            restoring: container.decode(BoundedRecall<MessageID, Bool>.Snapshot.self, forKey: .seenMessages))
        rememberedOffersPerDesk = try container.decode(Int.self, forKey: .rememberedOffersPerDesk)
        for id in desks.keys {
            desks[id]!.rebuildIndexes()
        }
        deadlines = Heap(desks.values.flatMap(\.liveDeadlines))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(desks, forKey: .desks)
        try container.encode(seenMessages.snapshot(), forKey: .seenMessages)
        try container.encode(rememberedOffersPerDesk, forKey: .rememberedOffersPerDesk)
    }
}
