import OrderedCollections
import SwitchboardCommon

/// A broken invariant, with the step of the schedule where it showed.
public struct Violation: Error, Hashable, Sendable, CustomStringConvertible {
    public var step: Int
    public var message: String

    public var description: String { "step \(step): \(message)" }
}

/// The system as an outside observer sees it through the public messages, and the invariants of
/// DESIGN.md checked against it. It knows nothing of the cores' insides.
struct Oracle {
    enum Phase: Hashable {
        case waiting
        case ringing(agent: AgentID, offer: OfferToken)
        case serving(agent: AgentID)
        /// An offer ended and nothing has happened to the conversation yet. Legal only inside a step.
        case between(String)
    }

    struct AgentModel: Hashable {
        var status: AgentStatus
        var capacity: Int
        var rings: Set<ConversationID> = []
        var sessions: Set<ConversationID> = []
        /// Removed agents stay until the end of the step, by when their conversations must have moved on.
        var removed = false
        var load: Int { rings.count + sessions.count }
    }

    struct ConversationModel: Hashable {
        var user: UserID
        var phase: Phase
    }

    struct WorkstationModel: Hashable {
        var seq: UInt64 = 0
        var rings: [ConversationID: OfferToken] = [:]
        var sessions: Set<ConversationID> = []
    }

    struct CloserModel: Hashable {
        var latestAgentMessage: Instant?
        var latestUserMessage: Instant?
    }

    struct DeskModel {
        var seq: UInt64 = 0
        var settings = DeskSettings.defaults
        var conversations: OrderedDictionary<ConversationID, ConversationModel> = [:]
        var ended: Set<ConversationID> = []
        var agents: OrderedDictionary<AgentID, AgentModel> = [:]
        var workstations: [AgentID: WorkstationModel] = [:]
        /// Offers that rang and stopped, for late clicks: (agent, conversation, offer).
        var stoppedOffers: [(AgentID, ConversationID, OfferToken)] = []
        var closer: [ConversationID: CloserModel] = [:]
        var closures: Set<ConversationID> = []
    }

    var desks: OrderedDictionary<DeskID, DeskModel> = [:]
    var step = 0
    /// How often each kind of message was seen, to show that a run exercised what it checks.
    var tally: [String: Int] = [:]

    func violation(_ message: String) -> Violation { Violation(step: step, message: message) }

    // MARK: Router facts

    mutating func observe(_ event: RouterEvent) throws(Violation) {
        var desk = desks[event.desk] ?? DeskModel()
        defer { desks[event.desk] = desk }
        guard event.seq == desk.seq + 1 else {
            throw violation("desk \(event.desk): Router seq \(event.seq) after \(desk.seq)")
        }
        desk.seq = event.seq
        tally["router " + event.body.type, default: 0] += 1
        if case .commandRejected(let rejection) = event.body {
            tally["rejected \(rejection.commandType) \(rejection.reason.rawValue)", default: 0] += 1
        }
        switch event.body {
        case .deskConfigured(let settings):
            desk.settings = settings
        case .agentChanged(let agent, let status, let capacity, _, _, let reason):
            if reason == .removed {
                desk.agents[agent]?.removed = true
            } else {
                var model = desk.agents[agent] ?? AgentModel(status: status, capacity: capacity)
                model.status = status
                model.capacity = capacity
                model.removed = false
                desk.agents[agent] = model
            }
        case .conversationQueued(let conversation, let user, _, _):
            switch desk.conversations[conversation]?.phase {
            case .ringing(let agent, let offer):
                throw violation("\(conversation) queued while offer \(offer) still rings for \(agent)")
            case .serving(let agent):
                desk.agents[agent]?.sessions.remove(conversation)
            case .waiting, .between, nil:
                break
            }
            desk.conversations[conversation] = ConversationModel(user: user, phase: .waiting)
        case .offerMade(let conversation, let user, let agent, let offer, _, _, _):
            switch desk.conversations[conversation]?.phase {
            case .ringing(let other, let live):
                throw violation("\(conversation) offered to \(agent) while offer \(live) rings for \(other)")
            case .serving(let other):
                throw violation("\(conversation) offered to \(agent) while \(other) serves it")
            case .waiting, .between, nil:
                break
            }
            try admit(conversation, to: agent, in: &desk, what: "offer")
            desk.agents[agent]?.rings.insert(conversation)
            desk.conversations[conversation] = ConversationModel(user: user, phase: .ringing(agent: agent, offer: offer))
        case .offerExpired(let conversation, let agent, let offer):
            try endOffer(conversation, agent: agent, offer: offer, in: &desk, how: "expired")
        case .offerDeclined(let conversation, let agent, let offer, _):
            try endOffer(conversation, agent: agent, offer: offer, in: &desk, how: "declined")
        case .offerWithdrawn(let conversation, let agent, let offer, _):
            try endOffer(conversation, agent: agent, offer: offer, in: &desk, how: "withdrawn")
        case .conversationAssigned(let conversation, let user, let agent, let offer, let mode):
            let phase = desk.conversations[conversation]?.phase
            switch (mode, phase) {
            case (.accepted, .ringing(let ringing, let live)) where ringing == agent && live == offer:
                desk.agents[agent]?.rings.remove(conversation)
            case (.accepted, _):
                throw violation("\(conversation) accepted by \(agent) with offer \(offer?.rawValue ?? "-") but it is \(String(describing: phase))")
            case (.autoAccepted, .waiting), (.autoAccepted, .between), (.autoAccepted, nil):
                try admit(conversation, to: agent, in: &desk, what: "automatic assignment")
            case (.autoAccepted, _):
                throw violation("\(conversation) auto-assigned to \(agent) but it is \(String(describing: phase))")
            case (.transferred, .serving(let previous)):
                desk.agents[previous]?.sessions.remove(conversation)
                try admit(conversation, to: agent, in: &desk, what: "transfer")
            case (.transferred, _):
                throw violation("\(conversation) transferred to \(agent) but it is \(String(describing: phase))")
            }
            desk.agents[agent]?.sessions.insert(conversation)
            desk.conversations[conversation] = ConversationModel(user: user, phase: .serving(agent: agent))
        case .conversationEnded(let conversation, let agent, _):
            switch desk.conversations[conversation]?.phase {
            case .ringing(let ringing, let offer):
                throw violation("\(conversation) ended while offer \(offer) still rings for \(ringing)")
            case .serving(let serving):
                if agent != serving {
                    throw violation("\(conversation) ended naming agent \(agent?.rawValue ?? "-") but \(serving) serves it")
                }
                desk.agents[serving]?.sessions.remove(conversation)
            case .waiting, .between:
                break
            case nil:
                throw violation("\(conversation) ended but was never live")
            }
            desk.conversations[conversation] = nil
            desk.ended.insert(conversation)
        case .commandRejected:
            break
        case .agentState(let state):
            let model = desk.agents[state.agent]
            let rings = Set(state.rings.map(\.conversation))
            let sessions = Set(state.sessions.map(\.conversation))
            if rings != model?.rings ?? [] || sessions != model?.sessions ?? [] {
                throw violation("agent.state for \(state.agent) says rings \(rings.sorted()) sessions \(sessions.sorted()), facts say \(model.map { "\($0.rings.sorted()) \($0.sessions.sorted())" } ?? "unknown agent")")
            }
        }
    }

    private func admit(_ conversation: ConversationID, to agent: AgentID, in desk: inout DeskModel, what: String) throws(Violation) {
        guard let model = desk.agents[agent] else {
            throw violation("\(what) of \(conversation) to unknown agent \(agent)")
        }
        guard !model.removed, model.status == .online else {
            throw violation("\(what) of \(conversation) to \(agent), who is \(model.status)")
        }
        guard model.load < model.capacity else {
            throw violation("\(what) of \(conversation) puts \(agent) over capacity \(model.capacity)")
        }
    }

    private func endOffer(
        _ conversation: ConversationID, agent: AgentID, offer: OfferToken, in desk: inout DeskModel, how: String
    ) throws(Violation) {
        guard case .ringing(let ringing, let live)? = desk.conversations[conversation]?.phase, ringing == agent,
              live == offer
        else {
            throw violation("offer \(offer) of \(conversation) \(how), but it was not the live offer")
        }
        desk.agents[agent]?.rings.remove(conversation)
        desk.conversations[conversation]?.phase = .between("offer \(offer) \(how)")
    }

    // MARK: Workstations

    mutating func observe(_ event: WorkstationEvent) throws(Violation) {
        var desk = desks[event.desk] ?? DeskModel()
        defer { desks[event.desk] = desk }
        var station = desk.workstations[event.agent] ?? WorkstationModel()
        defer { desk.workstations[event.agent] = station }
        tally["workstation " + event.body.type, default: 0] += 1
        if case .countdown(let conversation, let offer, let remaining) = event.body {
            guard event.seq == station.seq else {
                throw violation("countdown for \(event.agent) carries seq \(event.seq), latest is \(station.seq)")
            }
            guard station.rings[conversation] == offer, remaining > 0 else {
                throw violation("countdown \(remaining)ms for \(conversation)/\(offer) on \(event.agent), which is not ringing")
            }
            return
        }
        guard event.seq == station.seq + 1 else {
            throw violation("workstation \(event.agent) seq \(event.seq) after \(station.seq)")
        }
        station.seq = event.seq
        switch event.body {
        case .ring(let conversation, _, let offer, _, _, _):
            if let shown = station.rings[conversation] {
                throw violation("ring \(offer) of \(conversation) on \(event.agent), which still shows offer \(shown)")
            }
            station.rings[conversation] = offer
        case .ringStopped(let conversation, let offer, _):
            guard station.rings[conversation] == offer else {
                throw violation("ring.stopped for \(conversation)/\(offer) on \(event.agent), which was not ringing")
            }
            station.rings[conversation] = nil
            desk.stoppedOffers.append((event.agent, conversation, offer))
            if desk.stoppedOffers.count > 64 { desk.stoppedOffers.removeFirst() }
        case .sessionStarted(let conversation, _, _):
            station.sessions.insert(conversation)
        case .sessionEnded(let conversation, _):
            guard station.sessions.remove(conversation) != nil else {
                throw violation("session.ended for \(conversation) on \(event.agent), which did not serve it")
            }
        case .countdown, .statusChanged, .commandRejected, .state:
            break
        }
    }

    // MARK: Closer

    mutating func observePosted(_ message: PostedMessage, desk deskID: DeskID) {
        var model = desks[deskID]?.closer[message.conversation] ?? CloserModel()
        switch message.from {
        case .agent: model.latestAgentMessage = max(model.latestAgentMessage ?? message.sentAt, message.sentAt)
        case .user: model.latestUserMessage = max(model.latestUserMessage ?? message.sentAt, message.sentAt)
        }
        desks[deskID]?.closer[message.conversation] = model
    }

    mutating func observe(_ message: OutboundMessage, at now: Instant) throws(Violation) {
        tally["outbound " + message.body.type, default: 0] += 1
        guard case .closureMessage(let conversation, _, _, let key) = message.body else { return }
        guard var desk = desks[message.desk] else { throw violation("closure for unknown desk \(message.desk)") }
        defer { desks[message.desk] = desk }
        guard key == "closure:\(conversation)" else { throw violation("closure of \(conversation) with key \(key)") }
        guard desk.closures.insert(conversation).inserted else {
            throw violation("a second closure message for \(conversation)")
        }
        guard case .serving? = desk.conversations[conversation]?.phase else {
            throw violation("closure message for \(conversation), which is not being served")
        }
        let clock = desk.closer[conversation] ?? CloserModel()
        guard let agentMessage = clock.latestAgentMessage else {
            throw violation("closure message for \(conversation), where the agent never wrote")
        }
        if let userMessage = clock.latestUserMessage, userMessage >= agentMessage {
            throw violation("closure message for \(conversation) after the user replied")
        }
        if desk.settings.inactivityMs == 0 || now < agentMessage + desk.settings.inactivityMs {
            throw violation("closure message for \(conversation) at \(now), before its deadline")
        }
    }

    // MARK: Between steps

    mutating func checkSettled(requested: [DeskID: [ConversationID]]) throws(Violation) {
        for (deskID, var desk) in desks {
            for (agent, model) in desk.agents where model.removed {
                guard model.load == 0 else {
                    throw violation("agent \(agent) removed, still holding \(model.rings.sorted()) rings and \(model.sessions.sorted()) sessions")
                }
                desk.agents[agent] = nil
            }
            desks[deskID] = desk
            for (conversation, model) in desk.conversations {
                if case .between(let what) = model.phase {
                    throw violation("\(conversation) lost: \(what), and nothing followed")
                }
            }
            for conversation in requested[deskID] ?? [] where desk.conversations[conversation] == nil && !desk.ended.contains(conversation) {
                throw violation("\(conversation) lost: requested, and the Router said nothing of it")
            }
            for (agent, station) in desk.workstations where desk.agents[agent] == nil {
                if !station.rings.isEmpty || !station.sessions.isEmpty {
                    throw violation("workstation of removed agent \(agent) still shows \(station.rings.keys.sorted()) rings and \(station.sessions.sorted()) sessions")
                }
            }
            for (agent, model) in desk.agents {
                if model.status != .online, !model.rings.isEmpty {
                    throw violation("\(agent) is \(model.status) and still rings with \(model.rings.sorted())")
                }
                let station = desk.workstations[agent] ?? WorkstationModel()
                var live: [ConversationID: OfferToken] = [:]
                for conversation in model.rings {
                    if case .ringing(agent, let offer)? = desk.conversations[conversation]?.phase {
                        live[conversation] = offer
                    }
                }
                if station.rings != live || live.count != model.rings.count {
                    throw violation("workstation \(agent) rings \(station.rings.sorted { $0.key < $1.key }), Router facts \(live.sorted { $0.key < $1.key }) of \(model.rings.sorted())")
                }
                if station.sessions != model.sessions {
                    throw violation("workstation \(agent) sessions \(station.sessions.sorted()), Router facts \(model.sessions.sorted())")
                }
            }
        }
    }
}
