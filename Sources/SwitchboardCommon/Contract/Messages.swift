// The messages of PROTOCOL.md as typed values. Wire encoding and validation live in `WireCodec`.

public enum AgentStatus: String, Hashable, Sendable, CaseIterable {
    case online, `break`, offline
}

public enum EndedBy: String, Hashable, Sendable, CaseIterable {
    case user, admin, inactivity
}

public enum MessageAuthor: String, Hashable, Sendable, CaseIterable {
    case user, agent
}

public enum TransferTarget: Hashable, Sendable {
    case agent(AgentID)
    case group(GroupID)
}

// MARK: - Inbound (`switchboard.in`)

public struct ConversationRequest: Hashable, Sendable {
    public var conversation: ConversationID
    public var user: UserID
    public var group: GroupID?
    public var priority: Int
    public var preferredAgent: AgentID?
    /// Opaque to Switchboard; kept as encoded JSON so it round-trips unchanged.
    public var attributes: JSONValue?

    public init(
        conversation: ConversationID, user: UserID, group: GroupID? = nil, priority: Int = 0,
        preferredAgent: AgentID? = nil, attributes: JSONValue? = nil
    ) {
        self.conversation = conversation
        self.user = user
        self.group = group
        self.priority = priority
        self.preferredAgent = preferredAgent
        self.attributes = attributes
    }
}

public struct PostedMessage: Hashable, Sendable {
    public var conversation: ConversationID
    public var from: MessageAuthor
    public var agent: AgentID?
    public var sentAt: Instant

    public init(conversation: ConversationID, from: MessageAuthor, agent: AgentID? = nil, sentAt: Instant) {
        self.conversation = conversation
        self.from = from
        self.agent = agent
        self.sentAt = sentAt
    }
}

public struct AgentProfile: Hashable, Sendable {
    public var agent: AgentID
    public var groups: [GroupID]
    public var capacity: Int
    /// `nil`: the desk's default.
    public var autoAccept: Bool?

    public init(agent: AgentID, groups: [GroupID], capacity: Int, autoAccept: Bool? = nil) {
        self.agent = agent
        self.groups = groups
        self.capacity = capacity
        self.autoAccept = autoAccept
    }
}

public enum InboundBody: Hashable, Sendable {
    // From the chat platform.
    case conversationRequested(ConversationRequest)
    case conversationEnded(conversation: ConversationID, by: EndedBy)
    case messagePosted(PostedMessage)
    // From workstation gateways, on behalf of one agent.
    case agentStatus(agent: AgentID, status: AgentStatus)
    case offerAccept(agent: AgentID, conversation: ConversationID, offer: OfferToken)
    case offerDecline(agent: AgentID, conversation: ConversationID, offer: OfferToken, reason: String?)
    case sessionEnd(agent: AgentID, conversation: ConversationID)
    case sessionTransfer(agent: AgentID, conversation: ConversationID, to: TransferTarget?)
    case agentSync(agent: AgentID)
    // From admins and ops.
    case deskConfigure(DeskSettingsPatch)
    case agentUpsert(AgentProfile)
    case agentRemove(agent: AgentID)
}

public struct InboundMessage: Hashable, Sendable {
    public var id: MessageID
    public var desk: DeskID
    public var at: Instant
    public var body: InboundBody
    /// The broker-validated AMQP `user_id` of the publisher, when the message carried one. Not in the body.
    public var publisher: String?

    public init(id: MessageID, desk: DeskID, at: Instant, body: InboundBody, publisher: String? = nil) {
        self.id = id
        self.desk = desk
        self.at = at
        self.body = body
        self.publisher = publisher
    }
}

// MARK: - Router events (`switchboard.events`)

public enum AgentChangeReason: String, Hashable, Sendable, CaseIterable {
    case command, missedRings, removed, assigned, released
}

public enum QueueReason: String, Hashable, Sendable, CaseIterable {
    case noAgent, attemptsExhausted, transferred, agentRemoved
}

public enum WithdrawReason: String, Hashable, Sendable, CaseIterable {
    /// `agentOnBreak`: an agent who goes on break (by command or after missed rings) takes no new offers,
    /// and its live rings are withdrawn and re-offered so no conversation waits on an absent agent.
    /// `agentChanged`: an `agent.upsert` took the agent out of the conversation's group, or lowered its capacity
    /// below its sessions and live rings (the newest rings are withdrawn), so the ring could no longer be accepted.
    case conversationEnded, agentOffline, agentRemoved, agentOnBreak, agentChanged
}

public enum AssignMode: String, Hashable, Sendable, CaseIterable {
    case accepted, autoAccepted, transferred
}

public enum EndReason: String, Hashable, Sendable, CaseIterable {
    case agent, user, admin, inactivity
}

public enum RejectionReason: String, Hashable, Sendable, CaseIterable {
    case offerExpired, offerNotYours, unknownConversation, unknownAgent, invalid, forbidden
    case notServing, agentUnavailable, unknownDesk
}

public struct CommandRejection: Hashable, Sendable {
    /// The rejected message's id.
    public var command: MessageID
    public var commandType: String
    public var agent: AgentID?
    public var conversation: ConversationID?
    public var reason: RejectionReason

    public init(
        command: MessageID, commandType: String, agent: AgentID? = nil, conversation: ConversationID? = nil,
        reason: RejectionReason
    ) {
        self.command = command
        self.commandType = commandType
        self.agent = agent
        self.conversation = conversation
        self.reason = reason
    }
}

public struct RingSummary: Hashable, Sendable {
    public var conversation: ConversationID
    public var user: UserID
    public var offer: OfferToken
    public var expiresAt: Instant

    public init(conversation: ConversationID, user: UserID, offer: OfferToken, expiresAt: Instant) {
        self.conversation = conversation
        self.user = user
        self.offer = offer
        self.expiresAt = expiresAt
    }
}

public struct SessionSummary: Hashable, Sendable {
    public var conversation: ConversationID
    public var user: UserID

    public init(conversation: ConversationID, user: UserID) {
        self.conversation = conversation
        self.user = user
    }
}

public struct AgentState: Hashable, Sendable {
    public var agent: AgentID
    public var status: AgentStatus
    public var rings: [RingSummary]
    public var sessions: [SessionSummary]

    public init(agent: AgentID, status: AgentStatus, rings: [RingSummary], sessions: [SessionSummary]) {
        self.agent = agent
        self.status = status
        self.rings = rings
        self.sessions = sessions
    }
}

public enum RouterEventBody: Hashable, Sendable {
    case deskConfigured(settings: DeskSettings)
    case agentChanged(
        agent: AgentID, status: AgentStatus, capacity: Int, load: Int, groups: [GroupID], reason: AgentChangeReason)
    case conversationQueued(conversation: ConversationID, user: UserID, position: Int, reason: QueueReason)
    case offerMade(
        conversation: ConversationID, user: UserID, agent: AgentID, offer: OfferToken, attempt: Int,
        expiresAt: Instant, ringMs: Milliseconds)
    case offerExpired(conversation: ConversationID, agent: AgentID, offer: OfferToken)
    case offerDeclined(conversation: ConversationID, agent: AgentID, offer: OfferToken, reason: String?)
    case offerWithdrawn(conversation: ConversationID, agent: AgentID, offer: OfferToken, reason: WithdrawReason)
    case conversationAssigned(
        conversation: ConversationID, user: UserID, agent: AgentID, offer: OfferToken?, mode: AssignMode)
    case conversationEnded(conversation: ConversationID, agent: AgentID?, reason: EndReason)
    case commandRejected(CommandRejection)
    case agentState(AgentState)
}

/// A Router fact. Its message `id` is assigned when it is published (derived from the journal position).
public struct RouterEvent: Hashable, Sendable {
    public var desk: DeskID
    /// Per-desk sequence number without gaps, starting at 1.
    public var seq: UInt64
    public var at: Instant
    public var body: RouterEventBody

    public init(desk: DeskID, seq: UInt64, at: Instant, body: RouterEventBody) {
        self.desk = desk
        self.seq = seq
        self.at = at
        self.body = body
    }
}

// MARK: - Workstation events (`switchboard.workstations`, routing key `<desk>.<agent>`)

public enum RingStopReason: String, Hashable, Sendable, CaseIterable {
    case accepted, expired, declined, withdrawn
}

/// Why a session closed on one agent's workstation: the conversation ended, or it moved away from this agent.
public enum SessionEndReason: String, Hashable, Sendable, CaseIterable {
    case agent, user, admin, inactivity, transferred, agentRemoved
}

public enum WorkstationEventBody: Hashable, Sendable {
    case ring(
        conversation: ConversationID, user: UserID, offer: OfferToken, expiresAt: Instant, remainingMs: Milliseconds,
        serverTime: Instant)
    case countdown(conversation: ConversationID, offer: OfferToken, remainingMs: Milliseconds)
    case ringStopped(conversation: ConversationID, offer: OfferToken, reason: RingStopReason)
    case sessionStarted(conversation: ConversationID, user: UserID, mode: AssignMode)
    case sessionEnded(conversation: ConversationID, reason: SessionEndReason)
    case statusChanged(status: AgentStatus, reason: AgentChangeReason)
    case commandRejected(CommandRejection)
    case state(AgentState)
}

public struct WorkstationEvent: Hashable, Sendable {
    public var desk: DeskID
    public var agent: AgentID
    /// Per-agent sequence number without gaps; `countdown` repeats the latest without counting.
    public var seq: UInt64
    public var at: Instant
    public var body: WorkstationEventBody

    public init(desk: DeskID, agent: AgentID, seq: UInt64, at: Instant, body: WorkstationEventBody) {
        self.desk = desk
        self.agent = agent
        self.seq = seq
        self.at = at
        self.body = body
    }
}

// MARK: - Outbound to the chat platform (`switchboard.outbound`, routing key `<desk>.<type>`)

public enum OutboundBody: Hashable, Sendable {
    case closureMessage(conversation: ConversationID, user: UserID, text: String, idempotencyKey: String)
    case inactivityWarning(conversation: ConversationID, user: UserID, text: String, idempotencyKey: String)
}

public struct OutboundMessage: Hashable, Sendable {
    public var desk: DeskID
    public var at: Instant
    public var body: OutboundBody

    public init(desk: DeskID, at: Instant, body: OutboundBody) {
        self.desk = desk
        self.at = at
        self.body = body
    }
}
