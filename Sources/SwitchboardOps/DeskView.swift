import SwitchboardCommon

/// One desk's state as the Router's facts on `switchboard.events` describe it: a pure fold, so any reader
/// of `switchboard.events.log` can rebuild it from `first` without asking a service.
public struct DeskView: Hashable, Sendable {
    public struct Agent: Hashable, Sendable {
        public var status: AgentStatus
        public var capacity: Int
        public var load: Int
        public var groups: [GroupID]
    }

    public struct Waiting: Hashable, Sendable {
        public var user: UserID
        public var position: Int
        public var reason: QueueReason
        public var since: Instant
    }

    public struct Ring: Hashable, Sendable {
        public var user: UserID
        public var agent: AgentID
        public var offer: OfferToken
        public var attempt: Int
        public var expiresAt: Instant
    }

    public struct Session: Hashable, Sendable {
        public var user: UserID
        public var agent: AgentID
        public var mode: AssignMode
        public var since: Instant
    }

    public let desk: DeskID
    /// `nil` until a `desk.configured` fact was seen.
    public private(set) var settings: DeskSettings?
    public private(set) var agents: [AgentID: Agent] = [:]
    public private(set) var waiting: [ConversationID: Waiting] = [:]
    public private(set) var rings: [ConversationID: Ring] = [:]
    public private(set) var sessions: [ConversationID: Session] = [:]
    /// The last fact's `seq`; 0 before any.
    public private(set) var lastSeq: UInt64 = 0

    public init(desk: DeskID) {
        self.desk = desk
    }

    /// Folds one fact in; facts of other desks are ignored.
    public mutating func apply(_ event: RouterEvent) {
        guard event.desk == desk else { return }
        lastSeq = event.seq
        switch event.body {
        case .deskConfigured(let settings):
            self.settings = settings
        case .agentChanged(let agent, let status, let capacity, let load, let groups, let reason):
            switch reason {
            case .removed:
                agents[agent] = nil
            case .command, .missedRings, .assigned, .released:
                agents[agent] = Agent(status: status, capacity: capacity, load: load, groups: groups)
            }
        case .conversationQueued(let conversation, let user, let position, let reason):
            rings[conversation] = nil
            sessions[conversation] = nil
            waiting[conversation] = Waiting(user: user, position: position, reason: reason, since: event.at)
        case .offerMade(let conversation, let user, let agent, let offer, let attempt, let expiresAt, _):
            waiting[conversation] = nil
            rings[conversation] = Ring(user: user, agent: agent, offer: offer, attempt: attempt, expiresAt: expiresAt)
        case .offerExpired(let conversation, _, let offer), .offerDeclined(let conversation, _, let offer, _),
            .offerWithdrawn(let conversation, _, let offer, _):
            if rings[conversation]?.offer == offer { rings[conversation] = nil }
        case .conversationAssigned(let conversation, let user, let agent, _, let mode):
            waiting[conversation] = nil
            rings[conversation] = nil
            sessions[conversation] = Session(user: user, agent: agent, mode: mode, since: event.at)
        case .conversationEnded(let conversation, _, _):
            waiting[conversation] = nil
            rings[conversation] = nil
            sessions[conversation] = nil
        case .commandRejected, .agentState:
            break
        }
    }
}
