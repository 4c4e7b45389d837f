import HeapModule
import OrderedCollections

/// The facts one input produces on one desk, and the ring deadlines it sets.
struct DeskOutput {
    let at: Instant
    var events: [RouterEvent] = []
    var deadlines: [RingDeadline] = []
}

/// An agent's command being handled, for `command.rejected`.
struct AgentCommand {
    let id: MessageID
    let type: String
    let agent: AgentID
    let conversation: ConversationID?
}

/// Whether a freed agent continues the current passes of waiting conversations or starts new ones.
enum PassMode {
    /// After the agent's own ring expired or was declined: conversations whose pass already offered
    /// it to this agent are skipped, so a missed or refused ring does not come straight back.
    case continuingPass
    /// After the agent came online, got more room, or finished a session: every conversation it takes
    /// starts a new pass (PROTOCOL.md: "a new pass starts when an agent frees up or comes online").
    case newPass
}

/// Where a conversation joins the waiting queue within its priority.
enum QueuePlacement {
    /// New requests.
    case tail
    /// Conversations that already waited or were served: rings that ran out, transfers, removed agents' sessions.
    case head
}

/// One desk's state and rules.
struct RouterDesk: Codable, Sendable, Equatable {
    let id: DeskID
    var settings: DeskSettings
    var lastSeq: UInt64 = 0
    var agents: [AgentID: RouterAgent] = [:]
    var conversations: [ConversationID: RouterConversation] = [:]
    var nextOfferNumber: Int64 = 1
    var nextTailTicket: Int64 = 1
    var nextHeadTicket: Int64 = 0
    var roundRobinTurns: Int64 = 0
    var lastIndexVersion: UInt64 = 0
    var finishedOffers: BoundedRecall<OfferToken, FinishedOffer>

    var agentIndex = AgentIndex()
    var waiting = WaitingQueues()

    /// Conversations skipped at most per queue while looking for one a freed agent was not yet offered;
    /// keeps the cost of one input bounded when an agent refused many waiting conversations.
    static let skipLimit = 64

    private enum CodingKeys: String, CodingKey {
        case id, settings, lastSeq, agents, conversations, nextOfferNumber, nextTailTicket, nextHeadTicket
        case roundRobinTurns, lastIndexVersion, finishedOffers
    }

    /// Equal when their encoded fields are; the indexes are derived from them.
    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.id == rhs.id && lhs.settings == rhs.settings && lhs.lastSeq == rhs.lastSeq && lhs.agents == rhs.agents
            && lhs.conversations == rhs.conversations && lhs.nextOfferNumber == rhs.nextOfferNumber
            && lhs.nextTailTicket == rhs.nextTailTicket && lhs.nextHeadTicket == rhs.nextHeadTicket
            && lhs.roundRobinTurns == rhs.roundRobinTurns && lhs.lastIndexVersion == rhs.lastIndexVersion
            && lhs.finishedOffers == rhs.finishedOffers
    }

    init(id: DeskID, settings: DeskSettings, finishedOfferLimit: Int) {
        self.id = id
        self.settings = settings
        self.finishedOffers = BoundedRecall(limit: finishedOfferLimit)
    }

    // `Codable` is written out for `finishedOffers`, thousands of entries per desk: here, where their types are
    // known, their snapshot form is written and read by code compiled for those types, not generically
    // (`BoundedRecall`).

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(DeskID.self, forKey: .id)
        settings = try container.decode(DeskSettings.self, forKey: .settings)
        lastSeq = try container.decode(UInt64.self, forKey: .lastSeq)
        agents = try container.decode([AgentID: RouterAgent].self, forKey: .agents)
        conversations = try container.decode([ConversationID: RouterConversation].self, forKey: .conversations)
        nextOfferNumber = try container.decode(Int64.self, forKey: .nextOfferNumber)
        nextTailTicket = try container.decode(Int64.self, forKey: .nextTailTicket)
        nextHeadTicket = try container.decode(Int64.self, forKey: .nextHeadTicket)
        roundRobinTurns = try container.decode(Int64.self, forKey: .roundRobinTurns)
        lastIndexVersion = try container.decode(UInt64.self, forKey: .lastIndexVersion)
        finishedOffers = try BoundedRecall(
            restoring: container.decode(BoundedRecall<OfferToken, FinishedOffer>.Snapshot.self, forKey: .finishedOffers))
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(settings, forKey: .settings)
        try container.encode(lastSeq, forKey: .lastSeq)
        try container.encode(agents, forKey: .agents)
        try container.encode(conversations, forKey: .conversations)
        try container.encode(nextOfferNumber, forKey: .nextOfferNumber)
        try container.encode(nextTailTicket, forKey: .nextTailTicket)
        try container.encode(nextHeadTicket, forKey: .nextHeadTicket)
        try container.encode(roundRobinTurns, forKey: .roundRobinTurns)
        try container.encode(lastIndexVersion, forKey: .lastIndexVersion)
        try container.encode(finishedOffers.snapshot(), forKey: .finishedOffers)
    }

    // MARK: - Inputs

    mutating func configure(_ patch: DeskSettingsPatch, _ out: inout DeskOutput) {
        let previousRouting = settings.routing
        settings = patch.applied(to: settings)
        if settings.routing != previousRouting {
            rebuildAgentIndex()
        }
        emit(.deskConfigured(settings: settings), &out)
    }

    mutating func upsert(_ profile: AgentProfile, _ out: inout DeskOutput) {
        let groups = Array(OrderedSet(profile.groups))
        if agents[profile.agent] == nil {
            agents[profile.agent] = RouterAgent(
                id: profile.agent, status: .offline, capacity: profile.capacity, groups: groups,
                autoAcceptOverride: profile.autoAccept)
        } else {
            agents[profile.agent]!.capacity = profile.capacity
            agents[profile.agent]!.groups = groups
            agents[profile.agent]!.autoAcceptOverride = profile.autoAccept
        }
        let withdrawn = withdrawRings(
            of: profile.agent, only: ringsBeyondProfile(of: agents[profile.agent]!), reason: .agentChanged, &out)
        reindex(profile.agent)
        emitAgentChanged(profile.agent, .command, &out)
        for conversation in withdrawn {
            route(conversation, whenNoAgent: .head, &out)
        }
        serveWaiting(for: profile.agent, mode: .newPass, &out)
    }

    /// The agent's live rings its profile no longer allows, so that accepting one could not put the agent in a
    /// group it left or over its capacity: rings of a group it left, then the newest beyond its capacity.
    private func ringsBeyondProfile(of agent: RouterAgent) -> [ConversationID] {
        var load = agent.sessions.count
        var beyond: [ConversationID] = []
        for conversationID in agent.rings {
            if agent.belongs(to: conversations[conversationID]!.group), load < agent.capacity {
                load += 1
            } else {
                beyond.append(conversationID)
            }
        }
        return beyond
    }

    mutating func remove(_ command: AgentCommand, _ out: inout DeskOutput) {
        guard agents[command.agent] != nil else { return reject(command, .unknownAgent, &out) }
        let withdrawn = withdrawRings(of: command.agent, reason: .agentRemoved, &out)
        let removed = agents.removeValue(forKey: command.agent)!
        emit(
            .agentChanged(
                agent: removed.id, status: .offline, capacity: removed.capacity, load: 0, groups: removed.groups,
                reason: .removed),
            &out)
        for conversation in withdrawn {
            route(conversation, whenNoAgent: .head, &out)
        }
        for conversation in removed.sessions {
            requeue(conversation, group: conversations[conversation]!.group, excluding: [], reason: .agentRemoved, &out)
        }
    }

    mutating func setStatus(_ command: AgentCommand, to status: AgentStatus, _ out: inout DeskOutput) {
        guard let agent = agents[command.agent] else { return reject(command, .unknownAgent, &out) }
        guard agent.status != status else { return }
        switch status {
        case .online:
            agents[agent.id]!.status = .online
            agents[agent.id]!.consecutiveMisses = 0
            reindex(agent.id)
            emitAgentChanged(agent.id, .command, &out)
            serveWaiting(for: agent.id, mode: .newPass, &out)
        case .break:
            stopOffers(to: agent.id, status: .break, withdrawing: .agentOnBreak, reason: .command, &out)
        case .offline:
            stopOffers(to: agent.id, status: .offline, withdrawing: .agentOffline, reason: .command, &out)
        }
    }

    mutating func sync(_ command: AgentCommand, _ out: inout DeskOutput) {
        guard let agent = agents[command.agent] else { return reject(command, .unknownAgent, &out) }
        let rings = agent.rings.compactMap { conversation -> RingSummary? in
            guard let current = conversations[conversation], case .ringing(let offer) = current.phase else { return nil }
            return RingSummary(conversation: conversation, user: current.user, offer: offer.token, expiresAt: offer.expiresAt)
        }
        let sessions = agent.sessions.compactMap { conversation in
            conversations[conversation].map { SessionSummary(conversation: conversation, user: $0.user) }
        }
        emit(.agentState(AgentState(agent: agent.id, status: agent.status, rings: rings, sessions: sessions)), &out)
    }

    /// A command of a known agent that the shell refused before it reached the desk (invalid or forbidden).
    mutating func rejectRefused(_ command: AgentCommand, _ reason: RejectionReason, _ out: inout DeskOutput) {
        reject(command, reason, &out)
    }

    mutating func request(_ request: ConversationRequest, _ out: inout DeskOutput) {
        guard conversations[request.conversation] == nil else { return }
        conversations[request.conversation] = RouterConversation(
            id: request.conversation, user: request.user, group: request.group, priority: request.priority,
            preferredAgent: request.preferredAgent, phase: .unrouted)
        route(request.conversation, whenNoAgent: .tail, &out)
    }

    mutating func accept(_ command: AgentCommand, offer token: OfferToken, _ out: inout DeskOutput) {
        let conversationID = command.conversation!
        switch check(token, of: conversationID, by: command.agent) {
        case .rejected(let reason):
            reject(command, reason, &out)
        case .live(let offer):
            let conversation = conversations[conversationID]!
            emit(
                .conversationAssigned(
                    conversation: conversationID, user: conversation.user, agent: offer.agent, offer: offer.token,
                    mode: .accepted),
                &out)
            finish(offer, of: conversationID)
            conversations[conversationID]!.phase = .serving(offer.agent)
            agents[offer.agent]!.rings.remove(conversationID)
            agents[offer.agent]!.sessions.append(conversationID)
            agents[offer.agent]!.consecutiveMisses = 0
        }
    }

    mutating func decline(_ command: AgentCommand, offer token: OfferToken, reason: String?, _ out: inout DeskOutput) {
        let conversationID = command.conversation!
        switch check(token, of: conversationID, by: command.agent) {
        case .rejected(let rejection):
            reject(command, rejection, &out)
        case .live(let offer):
            emit(.offerDeclined(conversation: conversationID, agent: offer.agent, offer: offer.token, reason: reason), &out)
            finish(offer, of: conversationID)
            conversations[conversationID]!.phase = .unrouted
            agents[offer.agent]!.rings.remove(conversationID)
            reindex(offer.agent)
            route(conversationID, whenNoAgent: .head, &out)
            serveWaiting(for: offer.agent, mode: .continuingPass, &out)
        }
    }

    mutating func endSession(_ command: AgentCommand, _ out: inout DeskOutput) {
        guard let conversation = servedConversation(for: command, &out) else { return }
        emit(.conversationEnded(conversation: conversation.id, agent: command.agent, reason: .agent), &out)
        conversations.removeValue(forKey: conversation.id)
        release(conversation.id, from: command.agent, at: out.at)
        serveWaiting(for: command.agent, mode: .newPass, &out)
    }

    mutating func transfer(_ command: AgentCommand, to target: TransferTarget?, _ out: inout DeskOutput) {
        guard let conversation = servedConversation(for: command, &out) else { return }
        switch target {
        case .agent(let receiver):
            guard receiver != command.agent else { return reject(command, .invalid, &out) }
            guard let receiving = agents[receiver] else { return reject(command, .unknownAgent, &out) }
            guard receiving.takesOffers else { return reject(command, .agentUnavailable, &out) }
            release(conversation.id, from: command.agent, at: out.at)
            conversations[conversation.id]!.phase = .serving(receiver)
            agents[receiver]!.sessions.append(conversation.id)
            agents[receiver]!.lastRoutedAt = out.at
            reindex(receiver)
            emit(
                .conversationAssigned(
                    conversation: conversation.id, user: conversation.user, agent: receiver, offer: nil,
                    mode: .transferred),
                &out)
        case .group(let group):
            release(conversation.id, from: command.agent, at: out.at)
            requeue(conversation.id, group: group, excluding: [command.agent], reason: .transferred, &out)
        case nil:
            release(conversation.id, from: command.agent, at: out.at)
            requeue(conversation.id, group: conversation.group, excluding: [command.agent], reason: .transferred, &out)
        }
        serveWaiting(for: command.agent, mode: .continuingPass, &out)
    }

    /// `conversation.ended` from the platform ends the conversation whatever its phase; an unknown or
    /// already ended conversation is left alone, so redelivery and races with `session.end` are harmless.
    mutating func endConversation(_ conversationID: ConversationID, by: EndedBy, _ out: inout DeskOutput) {
        guard let conversation = conversations.removeValue(forKey: conversationID) else { return }
        let reason: EndReason =
            switch by {
            case .user: .user
            case .admin: .admin
            case .inactivity: .inactivity
            }
        switch conversation.phase {
        case .unrouted:
            emit(.conversationEnded(conversation: conversationID, agent: nil, reason: reason), &out)
        case .waiting:
            waiting.forget(priority: conversation.priority)
            emit(.conversationEnded(conversation: conversationID, agent: nil, reason: reason), &out)
        case .ringing(let offer):
            emit(
                .offerWithdrawn(
                    conversation: conversationID, agent: offer.agent, offer: offer.token, reason: .conversationEnded),
                &out)
            finish(offer, of: conversationID)
            emit(.conversationEnded(conversation: conversationID, agent: nil, reason: reason), &out)
            agents[offer.agent]!.rings.remove(conversationID)
            reindex(offer.agent)
            serveWaiting(for: offer.agent, mode: .newPass, &out)
        case .serving(let agent):
            emit(.conversationEnded(conversation: conversationID, agent: agent, reason: reason), &out)
            release(conversationID, from: agent, at: out.at)
            serveWaiting(for: agent, mode: .newPass, &out)
        }
    }

    /// A ring's deadline passed: the offer expires, the conversation moves on, the agent's miss is counted.
    mutating func expire(_ conversationID: ConversationID, offerNumber: Int64, _ out: inout DeskOutput) {
        guard let conversation = conversations[conversationID], case .ringing(let offer) = conversation.phase,
              offer.number == offerNumber
        else { return }
        emit(.offerExpired(conversation: conversationID, agent: offer.agent, offer: offer.token), &out)
        finish(offer, of: conversationID)
        conversations[conversationID]!.phase = .unrouted
        agents[offer.agent]!.rings.remove(conversationID)
        agents[offer.agent]!.consecutiveMisses += 1
        reindex(offer.agent)
        route(conversationID, whenNoAgent: .head, &out)
        if agents[offer.agent]!.consecutiveMisses >= settings.missesBeforeBreak {
            stopOffers(to: offer.agent, status: .break, withdrawing: .agentOnBreak, reason: .missedRings, &out)
        } else {
            serveWaiting(for: offer.agent, mode: .continuingPass, &out)
        }
    }

    func isLive(_ deadline: RingDeadline) -> Bool {
        guard case .ringing(let offer) = conversations[deadline.conversation]?.phase else { return false }
        return offer.number == deadline.offer
    }

    /// Deadlines of every live ring, for rebuilding the timer heap after a snapshot is loaded.
    var liveDeadlines: [RingDeadline] {
        conversations.values.compactMap { conversation in
            guard case .ringing(let offer) = conversation.phase else { return nil }
            return RingDeadline(at: offer.expiresAt, desk: id, offer: offer.number, conversation: conversation.id)
        }
    }

    // MARK: - Routing

    /// Offers the conversation to the best eligible agent (or assigns it at once under automatic service);
    /// with no eligible agent, or after `maxOfferAttempts` offers in this pass, it waits in the queue.
    private mutating func route(_ conversationID: ConversationID, whenNoAgent placement: QueuePlacement, _ out: inout DeskOutput) {
        let conversation = conversations[conversationID]!
        if conversation.attempts >= settings.maxOfferAttempts {
            let position = enqueue(conversationID, at: .head)
            emit(
                .conversationQueued(
                    conversation: conversationID, user: conversation.user, position: position, reason: .attemptsExhausted),
                &out)
            // An agent free all along, not rung with it in this pass, takes the head of the queue at once (a new
            // pass): it would otherwise wait there until an agent frees up, while newer requests got that agent.
            if let agent = bestAgent(for: conversation) {
                serveWaiting(for: agent, mode: .continuingPass, &out)
            }
        } else if let agent = bestAgent(for: conversation) {
            give(conversationID, to: agent, &out)
        } else {
            let position = enqueue(conversationID, at: placement)
            emit(
                .conversationQueued(conversation: conversationID, user: conversation.user, position: position, reason: .noAgent),
                &out)
        }
    }

    /// Puts a conversation that was being served back at the head of the queue, with a new pass, then offers it.
    private mutating func requeue(
        _ conversationID: ConversationID, group: GroupID?, excluding excluded: [AgentID], reason: QueueReason,
        _ out: inout DeskOutput
    ) {
        conversations[conversationID]!.group = group
        conversations[conversationID]!.attempts = 0
        conversations[conversationID]!.passExcludes = excluded
        let position = enqueue(conversationID, at: .head)
        let conversation = conversations[conversationID]!
        emit(
            .conversationQueued(conversation: conversationID, user: conversation.user, position: position, reason: reason),
            &out)
        if let agent = bestAgent(for: conversation) {
            waiting.forget(priority: conversation.priority)
            give(conversationID, to: agent, &out)
        }
    }

    /// Gives the agent waiting conversations, best first, while it takes offers.
    private mutating func serveWaiting(for agentID: AgentID, mode: PassMode, _ out: inout DeskOutput) {
        while waiting.count > 0, let agent = agents[agentID], agent.takesOffers,
              let conversationID = takeBestWaiting(for: agent, mode: mode)
        {
            let exhausted = conversations[conversationID]!.attempts >= settings.maxOfferAttempts
            switch mode {
            case .newPass:
                startPass(conversationID)
            case .continuingPass where exhausted:
                startPass(conversationID)
            case .continuingPass:
                break
            }
            give(conversationID, to: agentID, &out)
        }
    }

    private mutating func startPass(_ conversationID: ConversationID) {
        conversations[conversationID]!.attempts = 0
        conversations[conversationID]!.passExcludes = []
    }

    /// The preferred agent when eligible, else the best eligible agent of the conversation's group by the desk's policy.
    private mutating func bestAgent(for conversation: RouterConversation) -> AgentID? {
        if let preferred = conversation.preferredAgent, let agent = agents[preferred], agent.takesOffers,
           agent.belongs(to: conversation.group), !conversation.passExcludes.contains(preferred)
        {
            return preferred
        }
        guard var heap = agentIndex.heaps.removeValue(forKey: conversation.group) else { return nil }
        var skipped: [AgentRankEntry] = []
        var chosen: AgentID?
        while let top = heap.min {
            guard let agent = agents[top.agent], agent.indexVersion == top.version, agent.takesOffers else {
                _ = heap.popMin()
                agentIndex.entryCount -= 1
                continue
            }
            if conversation.passExcludes.contains(top.agent) {
                skipped.append(heap.removeMin())
                continue
            }
            chosen = top.agent
            break
        }
        for entry in skipped {
            heap.insert(entry)
        }
        if !heap.isEmpty {
            agentIndex.heaps[conversation.group] = heap
        }
        return chosen
    }

    /// Takes the best waiting conversation the agent can be given out of the queue (its phase is left for the caller).
    private mutating func takeBestWaiting(for agent: RouterAgent, mode: PassMode) -> ConversationID? {
        var best: WaitingTicket?
        for key in agent.indexKeys {
            guard var heap = waiting.heaps.removeValue(forKey: key) else { continue }
            var skipped: [WaitingTicket] = []
            while let top = heap.min {
                guard case .waiting(let ticket) = conversations[top.conversation]?.phase, ticket == top.ticket else {
                    _ = heap.popMin()
                    waiting.ticketCount -= 1
                    continue
                }
                let refusedHere: Bool =
                    switch mode {
                    case .continuingPass: conversations[top.conversation]!.passExcludes.contains(agent.id)
                    case .newPass: false
                    }
                if refusedHere {
                    guard skipped.count < Self.skipLimit else { break }
                    skipped.append(heap.removeMin())
                    continue
                }
                if best.map({ top < $0 }) ?? true {
                    best = top
                }
                break
            }
            for ticket in skipped {
                heap.insert(ticket)
            }
            if !heap.isEmpty {
                waiting.heaps[key] = heap
            }
        }
        guard let best else { return nil }
        waiting.forget(priority: best.priority)
        conversations[best.conversation]!.phase = .unrouted
        return best.conversation
    }

    /// Rings the agent with the conversation, or assigns it at once when automatic service applies.
    private mutating func give(_ conversationID: ConversationID, to agentID: AgentID, _ out: inout DeskOutput) {
        roundRobinTurns += 1
        conversations[conversationID]!.attempts += 1
        conversations[conversationID]!.passExcludes.append(agentID)
        agents[agentID]!.roundRobinTurn = roundRobinTurns
        agents[agentID]!.lastRoutedAt = out.at
        let conversation = conversations[conversationID]!
        if agents[agentID]!.autoAcceptOverride ?? settings.autoAccept {
            conversations[conversationID]!.phase = .serving(agentID)
            agents[agentID]!.sessions.append(conversationID)
            emit(
                .conversationAssigned(
                    conversation: conversationID, user: conversation.user, agent: agentID, offer: nil, mode: .autoAccepted),
                &out)
        } else {
            let number = nextOfferNumber
            nextOfferNumber += 1
            let offer = LiveOffer(
                number: number, token: Self.token(number), agent: agentID, expiresAt: out.at + settings.ringMs)
            conversations[conversationID]!.phase = .ringing(offer)
            agents[agentID]!.rings.append(conversationID)
            emit(
                .offerMade(
                    conversation: conversationID, user: conversation.user, agent: agentID, offer: offer.token,
                    attempt: conversation.attempts, expiresAt: offer.expiresAt, ringMs: settings.ringMs),
                &out)
            out.deadlines.append(
                RingDeadline(at: offer.expiresAt, desk: id, offer: number, conversation: conversationID))
        }
        reindex(agentID)
    }

    /// Puts the agent on break or offline: its rings are withdrawn and offered to others.
    private mutating func stopOffers(
        to agentID: AgentID, status: AgentStatus, withdrawing withdrawReason: WithdrawReason,
        reason: AgentChangeReason, _ out: inout DeskOutput
    ) {
        agents[agentID]!.status = status
        agents[agentID]!.consecutiveMisses = 0
        let withdrawn = withdrawRings(of: agentID, reason: withdrawReason, &out)
        reindex(agentID)
        emitAgentChanged(agentID, reason, &out)
        for conversation in withdrawn {
            route(conversation, whenNoAgent: .head, &out)
        }
    }

    /// Ends the agent's live rings of the conversations `only` names (default: every one); returns their
    /// conversations, in ring order, to be routed again.
    private mutating func withdrawRings(
        of agentID: AgentID, only: [ConversationID]? = nil, reason: WithdrawReason, _ out: inout DeskOutput
    ) -> [ConversationID] {
        let rings = only ?? Array(agents[agentID]!.rings)
        for conversationID in rings {
            agents[agentID]!.rings.remove(conversationID)
            guard case .ringing(let offer) = conversations[conversationID]!.phase else { continue }
            emit(.offerWithdrawn(conversation: conversationID, agent: agentID, offer: offer.token, reason: reason), &out)
            finish(offer, of: conversationID)
            conversations[conversationID]!.phase = .unrouted
        }
        return rings
    }

    /// The agent stops serving the conversation and counts as idle from now.
    private mutating func release(_ conversationID: ConversationID, from agentID: AgentID, at now: Instant) {
        agents[agentID]!.sessions.remove(conversationID)
        agents[agentID]!.lastRoutedAt = now
        reindex(agentID)
    }

    /// The conversation the command's agent serves, or nil after rejecting the command.
    private mutating func servedConversation(for command: AgentCommand, _ out: inout DeskOutput) -> RouterConversation? {
        guard agents[command.agent] != nil else {
            reject(command, .unknownAgent, &out)
            return nil
        }
        guard let conversation = conversations[command.conversation!] else {
            reject(command, .unknownConversation, &out)
            return nil
        }
        guard case .serving(command.agent) = conversation.phase else {
            reject(command, .notServing, &out)
            return nil
        }
        return conversation
    }

    // MARK: - Offers

    private enum OfferCheck {
        case live(LiveOffer)
        case rejected(RejectionReason)
    }

    /// Whether `token` is the conversation's live offer to `agent`; if not, the definitive reason why.
    private func check(_ token: OfferToken, of conversationID: ConversationID, by agent: AgentID) -> OfferCheck {
        guard agents[agent] != nil else { return .rejected(.unknownAgent) }
        let conversation = conversations[conversationID]
        if case .ringing(let offer) = conversation?.phase, offer.token == token {
            return offer.agent == agent ? .live(offer) : .rejected(.offerNotYours)
        }
        if let finished = finishedOffers[token] {
            guard finished.conversation == conversationID else { return .rejected(.invalid) }
            return finished.agent == agent ? .rejected(.offerExpired) : .rejected(.offerNotYours)
        }
        let ringingElsewhere = conversations.values.contains { other in
            if case .ringing(let offer) = other.phase { return offer.token == token }
            return false
        }
        if ringingElsewhere {
            // Live, for another conversation: the command mixes up two rings.
            return .rejected(.invalid)
        }
        if wasIssued(token) {
            // Issued here, no longer live, and too old to be remembered: it is over, whoever it was for.
            return .rejected(.offerExpired)
        }
        return conversation == nil ? .rejected(.unknownConversation) : .rejected(.invalid)
    }

    private mutating func finish(_ offer: LiveOffer, of conversationID: ConversationID) {
        finishedOffers.remember(offer.token, FinishedOffer(token: offer.token, conversation: conversationID, agent: offer.agent))
    }

    private static let tokenPrefix = "o-"

    /// Offer tokens are `o-<n>`, n counting the desk's offers from 1: deterministic, and never reused.
    private static func token(_ number: Int64) -> OfferToken {
        do {
            return try OfferToken(tokenPrefix + String(number))
        } catch {
            preconditionFailure("o-<number> is always a valid offer token")
        }
    }

    private func wasIssued(_ token: OfferToken) -> Bool {
        guard token.rawValue.hasPrefix(Self.tokenPrefix),
              let number = Int64(token.rawValue.dropFirst(Self.tokenPrefix.count))
        else { return false }
        return (1..<nextOfferNumber).contains(number) && Self.token(number) == token
    }

    // MARK: - Queue and indexes

    /// Places the conversation in the waiting queue; returns its 1-based position in the desk's queue.
    private mutating func enqueue(_ conversationID: ConversationID, at placement: QueuePlacement) -> Int {
        let conversation = conversations[conversationID]!
        let ticket: Int64
        let ahead: Int
        switch placement {
        case .tail:
            ticket = nextTailTicket
            nextTailTicket += 1
            ahead = waiting.countAhead(of: conversation.priority, includingEqual: true)
        case .head:
            ticket = nextHeadTicket
            nextHeadTicket -= 1
            ahead = waiting.countAhead(of: conversation.priority, includingEqual: false)
        }
        conversations[conversationID]!.phase = .waiting(ticket: ticket)
        waiting.add(
            WaitingTicket(priority: conversation.priority, ticket: ticket, conversation: conversationID),
            group: conversation.group)
        // Rebuilding visits every conversation, so it waits until at least that many tickets went stale.
        if waiting.ticketCount > 2 * waiting.count + conversations.count + 4096 {
            rebuildWaitingQueues()
        }
        return ahead + 1
    }

    /// Gives the agent a new index version and, if it takes offers, fresh entries at its current rank.
    private mutating func reindex(_ agentID: AgentID) {
        lastIndexVersion += 1
        agents[agentID]!.indexVersion = lastIndexVersion
        let agent = agents[agentID]!
        guard agent.takesOffers else { return }
        let entry = AgentRankEntry(agent: agent, policy: settings.routing)
        for key in agent.indexKeys {
            agentIndex.heaps[key, default: Heap()].insert(entry)
        }
        agentIndex.entryCount += agent.groups.count + 1
        // Rebuilding visits every agent, so it waits until at least that many entries were added since the last one.
        if agentIndex.entryCount > 2 * agentIndex.entryCountAfterRebuild + agents.count + 4096 {
            rebuildAgentIndex()
        }
    }

    /// Rebuilds the derived indexes from agents and conversations (after decoding, or to drop stale entries).
    mutating func rebuildIndexes() {
        rebuildAgentIndex()
        rebuildWaitingQueues()
    }

    private mutating func rebuildAgentIndex() {
        var entries: [GroupID?: [AgentRankEntry]] = [:]
        var count = 0
        for agent in agents.values where agent.takesOffers {
            let entry = AgentRankEntry(agent: agent, policy: settings.routing)
            for key in agent.indexKeys {
                entries[key, default: []].append(entry)
                count += 1
            }
        }
        agentIndex = AgentIndex(heaps: entries.mapValues { Heap($0) }, entryCount: count, entryCountAfterRebuild: count)
    }

    private mutating func rebuildWaitingQueues() {
        var rebuilt = WaitingQueues()
        var tickets: [GroupID?: [WaitingTicket]] = [:]
        for conversation in conversations.values {
            guard case .waiting(let ticket) = conversation.phase else { continue }
            tickets[conversation.group, default: []].append(
                WaitingTicket(priority: conversation.priority, ticket: ticket, conversation: conversation.id))
            rebuilt.count += 1
            rebuilt.ticketCount += 1
            rebuilt.countByPriority[conversation.priority, default: 0] += 1
        }
        rebuilt.heaps = tickets.mapValues { Heap($0) }
        waiting = rebuilt
    }

    // MARK: - Events

    private mutating func emit(_ body: RouterEventBody, _ out: inout DeskOutput) {
        lastSeq += 1
        out.events.append(RouterEvent(desk: id, seq: lastSeq, at: out.at, body: body))
        switch body {
        case .conversationQueued(let conversation, _, _, let reason):
            conversations[conversation]?.entered = PhaseEntry(at: out.at, queueReason: reason)
        case .conversationAssigned(let conversation, _, _, _, let mode):
            conversations[conversation]?.entered = PhaseEntry(at: out.at, mode: mode)
        default:
            break
        }
    }

    private mutating func emitAgentChanged(_ agentID: AgentID, _ reason: AgentChangeReason, _ out: inout DeskOutput) {
        let agent = agents[agentID]!
        emit(
            .agentChanged(
                agent: agent.id, status: agent.status, capacity: agent.capacity, load: agent.load, groups: agent.groups,
                reason: reason),
            &out)
    }

    private mutating func reject(_ command: AgentCommand, _ reason: RejectionReason, _ out: inout DeskOutput) {
        emit(
            .commandRejected(
                CommandRejection(
                    command: command.id, commandType: command.type, agent: command.agent,
                    conversation: command.conversation, reason: reason)),
            &out)
    }
}
