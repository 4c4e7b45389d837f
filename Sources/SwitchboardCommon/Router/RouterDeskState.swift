/// One desk as the Router holds it, for people to read (`switchboard desk show`): its settings, agents,
/// waiting queue, live rings and sessions. A copy: it does not change with the core.
public struct RouterDeskState: Hashable, Sendable {
    public struct Agent: Hashable, Sendable {
        public let agent: AgentID
        public let status: AgentStatus
        public let capacity: Int
        /// Live rings and sessions.
        public let load: Int
        public let groups: [GroupID]
    }

    public struct Waiting: Hashable, Sendable {
        public let conversation: ConversationID
        public let user: UserID
        public let group: GroupID?
        public let priority: Int
        /// 1-based, in the desk's whole queue: priority, then order.
        public let position: Int
        /// From its latest `conversation.queued`; `nil` for a conversation that already waited when the Router
        /// last started from a snapshot written by a version that did not keep it.
        public let reason: QueueReason?
        public let since: Instant?
    }

    public struct Ring: Hashable, Sendable {
        public let conversation: ConversationID
        public let user: UserID
        public let agent: AgentID
        public let offer: OfferToken
        /// Offers made in the conversation's current pass, this one included.
        public let attempt: Int
        public let expiresAt: Instant
    }

    public struct Session: Hashable, Sendable {
        public let conversation: ConversationID
        public let user: UserID
        public let agent: AgentID
        /// From its `conversation.assigned`; `nil` as for `Waiting.reason`.
        public let mode: AssignMode?
        public let since: Instant?
    }

    public let desk: DeskID
    public let settings: DeskSettings
    /// The `seq` of the desk's latest event.
    public let lastSeq: UInt64
    /// By agent id.
    public let agents: [Agent]
    /// By position.
    public let waiting: [Waiting]
    /// By conversation id.
    public let rings: [Ring]
    /// By conversation id.
    public let sessions: [Session]
}

extension RouterDesk {
    var state: RouterDeskState {
        let agents = agents.values.sorted { $0.id < $1.id }.map { agent in
            RouterDeskState.Agent(
                agent: agent.id, status: agent.status, capacity: agent.capacity, load: agent.load, groups: agent.groups)
        }
        var waiting: [(WaitingTicket, RouterConversation)] = []
        var rings: [RouterDeskState.Ring] = []
        var sessions: [RouterDeskState.Session] = []
        for conversation in conversations.values {
            switch conversation.phase {
            case .unrouted:
                break
            case .waiting(let ticket):
                waiting.append(
                    (WaitingTicket(priority: conversation.priority, ticket: ticket, conversation: conversation.id),
                     conversation))
            case .ringing(let offer):
                rings.append(
                    RouterDeskState.Ring(
                        conversation: conversation.id, user: conversation.user, agent: offer.agent, offer: offer.token,
                        attempt: conversation.attempts, expiresAt: offer.expiresAt))
            case .serving(let agent):
                sessions.append(
                    RouterDeskState.Session(
                        conversation: conversation.id, user: conversation.user, agent: agent,
                        mode: conversation.entered?.mode, since: conversation.entered?.at))
            }
        }
        return RouterDeskState(
            desk: id, settings: settings, lastSeq: lastSeq, agents: agents,
            waiting: waiting.sorted { $0.0 < $1.0 }.enumerated().map { index, entry in
                let conversation = entry.1
                return RouterDeskState.Waiting(
                    conversation: conversation.id, user: conversation.user, group: conversation.group,
                    priority: conversation.priority, position: index + 1, reason: conversation.entered?.queueReason,
                    since: conversation.entered?.at)
            },
            rings: rings.sorted { $0.conversation < $1.conversation },
            sessions: sessions.sorted { $0.conversation < $1.conversation })
    }
}
