import OrderedCollections

/// One agent as the Router knows it.
struct RouterAgent: Codable, Hashable, Sendable {
    let id: AgentID
    var status: AgentStatus
    var capacity: Int
    /// Distinct, in the order the last `agent.upsert` named them.
    var groups: [GroupID]
    /// `nil`: the desk's `autoAccept` applies.
    var autoAcceptOverride: Bool?
    /// Expired rings since the last accept; reaching `missesBeforeBreak` puts the agent on break.
    var consecutiveMisses: Int = 0
    /// When the agent was last given a conversation (offered or assigned) or released one; `nil` until then.
    var lastRoutedAt: Instant?
    /// The desk's turn counter when the agent was last given a conversation; 0 until then (round robin).
    var roundRobinTurn: Int64 = 0
    var rings: OrderedSet<ConversationID> = []
    var sessions: OrderedSet<ConversationID> = []
    /// Identifies the agent's current entries in the agent index; older entries are stale.
    var indexVersion: UInt64 = 0

    var load: Int { rings.count + sessions.count }

    /// Online with room for one more conversation.
    var takesOffers: Bool {
        switch status {
        case .online: load < capacity
        case .break, .offline: false
        }
    }

    /// The waiting queues and agent indexes the agent belongs to: each of its groups, then "any group" (`nil`).
    var indexKeys: [GroupID?] { groups.map(Optional.some) + [nil] }

    func belongs(to group: GroupID?) -> Bool {
        guard let group else { return true }
        return groups.contains(group)
    }
}

/// A live ring: one conversation offered to one agent until `expiresAt`.
struct LiveOffer: Codable, Hashable, Sendable {
    /// The per-desk offer counter value the token was made from.
    let number: Int64
    let token: OfferToken
    let agent: AgentID
    let expiresAt: Instant
}

struct RouterConversation: Codable, Hashable, Sendable {
    enum Phase: Codable, Hashable, Sendable {
        /// Taken out of its previous phase by the input being handled and about to be routed again;
        /// never left in this phase once an input is handled.
        case unrouted
        case waiting(ticket: Int64)
        case ringing(LiveOffer)
        case serving(AgentID)
    }

    let id: ConversationID
    let user: UserID
    var group: GroupID?
    let priority: Int
    let preferredAgent: AgentID?
    var phase: Phase
    /// Offers made in the current pass.
    var attempts: Int = 0
    /// Agents this pass must not offer it to: every agent offered it in this pass, and the agent who transferred it.
    var passExcludes: [AgentID] = []
    /// What its latest `conversation.queued` or `conversation.assigned` said: since when it waits or is served,
    /// and why or how. Shown by `switchboard desk show`; `nil` in a snapshot taken before it was kept.
    var entered: PhaseEntry?
}

/// When a conversation last joined the waiting queue or was assigned, and why it waits or how it is served.
struct PhaseEntry: Codable, Hashable, Sendable {
    let at: Instant
    var queueReason: QueueReason?
    var mode: AssignMode?
}

/// An offer that is no longer live, remembered so a late accept gets a precise rejection.
struct FinishedOffer: Codable, Hashable, Sendable {
    let token: OfferToken
    let conversation: ConversationID
    let agent: AgentID
}

/// `<agent> <conversation> <token>`, for snapshots: none of the three holds a space or a line break.
extension FinishedOffer: SnapshotLine {
    var snapshotLine: String { "\(agent.rawValue) \(conversation.rawValue) \(token.rawValue)" }

    init(snapshotLine: String) throws {
        let parts = snapshotLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw SnapshotLineError(expected: "an agent id, a conversation id and an offer token", line: snapshotLine)
        }
        self.init(
            token: try OfferToken(String(parts[2])), conversation: try ConversationID(String(parts[1])),
            agent: try AgentID(String(parts[0])))
    }
}
