import Foundation
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime

/// The demo's people and its display. Users ask for help and answer or go quiet; agents accept, let a
/// ring expire or click too late, write, and press End Session. Everything goes through `switchboard.in`;
/// everything shown comes back from `switchboard.events`, `switchboard.workstations` and `switchboard.outbound`.
actor DemoRun {
    /// What a simulated agent does with a ring.
    enum RingChoice {
        case accept(after: Duration)
        case letExpire
        case acceptLate
    }

    /// How a session goes once it started.
    enum SessionChoice {
        /// The user answers the agent (the inactivity clock stops), the agent answers back, then the user goes quiet.
        case userReplies
        /// The user never answers: warning, then the automatic close.
        case userGoesQuiet
        /// The agent presses End Session.
        case agentEnds
    }

    private static let ringingDesk = try! DeskID("demo")
    private static let automaticDesk = try! DeskID("auto")
    private static let agents: [(desk: DeskID, agent: AgentID, capacity: Int)] = [
        (ringingDesk, try! AgentID("alice"), 2), (ringingDesk, try! AgentID("bob"), 1),
        (ringingDesk, try! AgentID("carol"), 1), (automaticDesk, try! AgentID("dave"), 2),
        (automaticDesk, try! AgentID("erin"), 1),
    ]
    /// Agents played by people on the agent page (`make up` prints their sign-in links): upserted here so
    /// they get rings from the demo's traffic once they choose online, and never simulated.
    private static let humanAgents: [(desk: DeskID, agent: AgentID, capacity: Int)] = [
        (ringingDesk, try! AgentID("frank"), 2), (automaticDesk, try! AgentID("grace"), 2),
    ]

    private let connection: AMQPConnection
    private let terminal: Terminal
    private let settings: DemoSettings
    private let factory = InboundMessageFactory()
    /// Conversation ids of this run start with it, so facts about earlier runs' conversations are left out. Drawn
    /// afresh for every run, seed or not: the services remember ids (the Closer, conversations it closed; the
    /// Router, message ids it took), so a run reusing an earlier run's ids would see its inactivity closes ignored.
    private let runPrefix = "c\(String(UInt64.random(in: 0..<(36 * 36 * 36 * 36 * 36 * 36)), radix: 36))-"
    private var random: SeededGenerator
    /// The first rings and sessions go by a script, so that every part of the flow shows within the first minute
    /// whatever the seed: a ring that expires (and is offered to another agent), a click on Accept after the ring
    /// expired, accepts, then a user who goes quiet until the close, one who replies, and an End Session. After
    /// that the people choose at random. (`nil`: accept well before the ring expires.)
    private var ringScript: [RingChoice?] = [.letExpire, .acceptLate, nil, nil]
    private var sessionScript: [SessionChoice] = [.userGoesQuiet, .userReplies, .agentEnds]
    private var publisher: AMQPPublisher?
    private var tally = DemoTally()
    private var open: [ConversationID: (desk: DeskID, user: UserID)] = [:]
    private var next = 1
    /// What the simulated people will do next; each removes itself once done.
    private var pending: [UInt64: Task<Void, Never>] = [:]
    private var nextPending: UInt64 = 0
    /// Message ids shown lately: a service that takes over publishes again what its predecessor may have published
    /// (same ids), and a fact is shown, counted and acted on once.
    private var seen = BoundedRecall<String, Bool>(limit: 10_000)
    /// Conversations an earlier run left open (it was killed, or could not end them) that this run ended.
    private var leftoversEnded: Set<ConversationID> = []
    /// The set-up the Router has yet to show (each desk configured, each simulated agent online): the first user
    /// asks once it has all been shown, so the screen tells the story in order.
    private var setUpUnseen: Set<String> = []

    init(connection: AMQPConnection, terminal: Terminal, settings: DemoSettings, seed: UInt64) {
        self.connection = connection
        self.terminal = terminal
        self.settings = settings
        self.random = SeededGenerator(seed: seed)
    }

    // MARK: Running

    func play() async throws {
        publisher = try await connection.publisher(confirmWindow: 64)
        let queues = try await declareOwnQueues()
        try await setUpDesks()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.follow(queues.events) { try await self.onRouterEvent($0) } }
            group.addTask { try await self.follow(queues.workstations) { try await self.onWorkstationEvent($0) } }
            group.addTask { try await self.follow(queues.outbound) { try await self.onOutbound($0) } }
            group.addTask { try await self.requestConversations() }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Ends this run's open conversations (so the next run starts with free agents) and prints the summary. The
    /// ends are published before anything is written: a terminal or pipe gone with the interrupt must not stop them.
    func finish() async {
        pending.values.forEach { $0.cancel() }
        let leftOpen = open
        var notEnded = 0
        if !leftOpen.isEmpty, let publisher {
            for (conversation, entry) in leftOpen {
                do {
                    try await publish(publisher, desk: entry.desk, .conversationEnded(conversation: conversation, by: .admin))
                } catch {
                    notEnded += 1
                }
            }
            tally.endedOnExit = leftOpen.count - notEnded
            tally.notEndedOnExit = notEnded
            terminal.line(.dim, "ended \(leftOpen.count - notEnded) open conversation(s)")
        }
        if notEnded > 0 {
            terminal.line(.bad, "✖ could not end \(notEnded) conversation(s); the next run ends them")
        }
        print("")
        print(tally.summary)
    }

    private struct OwnQueues {
        var events: String
        var workstations: String
        var outbound: String
    }

    /// Exclusive, auto-delete queues of this process: the services' queues are never touched.
    private func declareOwnQueues() async throws -> OwnQueues {
        let base = "switchboard.demo.\(UUID().uuidString.prefix(8).lowercased())"
        let queues = OwnQueues(events: "\(base).events", workstations: "\(base).workstations", outbound: "\(base).outbound")
        var topology = Topology()
        for name in [queues.events, queues.workstations, queues.outbound] {
            topology.queues.append(.init(name, kind: .classic, durable: false, exclusive: true, autoDelete: true))
        }
        topology.bindings = [
            .init(from: ContractExchange.events.rawValue, to: .queue(queues.events), routingKey: "#"),
            .init(from: ContractExchange.outbound.rawValue, to: .queue(queues.outbound), routingKey: "#"),
        ]
        for desk in [Self.ringingDesk, Self.automaticDesk] {
            topology.bindings.append(
                .init(from: ContractExchange.workstations.rawValue, to: .queue(queues.workstations), routingKey: "\(desk).*"))
        }
        try await connection.declare(topology)
        return queues
    }

    private func setUpDesks() async throws {
        let publisher = try requirePublisher()
        let ringing = DeskSettingsPatch(
            ringMs: settings.ringMs, countdownEveryMs: 1_000, autoAccept: false, maxOfferAttempts: 3,
            missesBeforeBreak: 1_000, inactivityMs: settings.inactivityMs, warningMs: settings.warningMs)
        var automatic = ringing
        automatic.autoAccept = true
        setUpUnseen = Set([Self.ringingDesk, Self.automaticDesk].map { Self.setUpKey($0) })
            .union(Self.agents.map { Self.setUpKey($0.desk, $0.agent) })
        try await publish(publisher, desk: Self.ringingDesk, .deskConfigure(ringing))
        try await publish(publisher, desk: Self.automaticDesk, .deskConfigure(automatic))
        for entry in Self.agents {
            let profile = AgentProfile(agent: entry.agent, groups: [try GroupID("support")], capacity: entry.capacity)
            try await publish(publisher, desk: entry.desk, .agentUpsert(profile))
            try await publish(publisher, desk: entry.desk, .agentStatus(agent: entry.agent, status: .online))
        }
        for entry in Self.humanAgents {
            let profile = AgentProfile(agent: entry.agent, groups: [try GroupID("support")], capacity: entry.capacity)
            try await publish(publisher, desk: entry.desk, .agentUpsert(profile))
        }
        // What an earlier run left with the agents (rings, sessions) comes back in their states and is ended there;
        // what it left waiting is ended when it is offered.
        for entry in Self.agents + Self.humanAgents {
            try await publish(publisher, desk: entry.desk, .agentSync(agent: entry.agent))
        }
        terminal.line(
            .action,
            "→ desk demo: rings of \(EventLine.seconds(settings.ringMs)), agents alice (2), bob, carol; "
                + "desk auto: automatic service, agents dave (2), erin; both close after \(EventLine.seconds(settings.inactivityMs)) "
                + "of user silence (warning \(EventLine.seconds(settings.warningMs)) before); "
                + "frank (demo) and grace (auto) are yours on the agent page: sign in, choose online")
    }

    private static func setUpKey(_ desk: DeskID, _ agent: AgentID? = nil) -> String {
        agent.map { "\(desk)/\($0)" } ?? "\(desk)"
    }

    private func requestConversations() async throws {
        let publisher = try requirePublisher()
        let capacity = Self.agents.reduce(0) { $0 + $1.capacity }
        // A Router that is slow to show the set-up (catching up after a restart) holds the traffic back for 10 s
        // at most: its events show when they come.
        let shown = ContinuousClock.now + .seconds(10)
        while !setUpUnseen.isEmpty, ContinuousClock.now < shown {
            try await Task.sleep(for: .milliseconds(50))
        }
        while true {
            // Enough to keep every agent busy and a short queue, not a flood.
            if open.count < capacity + 2 {
                let number = next
                next += 1
                let desk = number % 3 == 0 ? Self.automaticDesk : Self.ringingDesk
                let conversation = try ConversationID("\(runPrefix)\(number)")
                let user = try UserID("user\(number)")
                open[conversation] = (desk, user)
                tally.requested += 1
                terminal.line(.action, "→ \(user) asks for a human on desk \(desk) (\(conversation))")
                try await publish(publisher, desk: desk, .conversationRequested(ConversationRequest(conversation: conversation, user: user)))
            }
            try await Task.sleep(for: .milliseconds(settings.everyMs))
        }
    }

    private nonisolated func follow(_ queue: String, _ handle: @Sendable (AMQPDelivery) async throws -> Void) async throws {
        for try await delivery in try await connection.consume(queue: queue, prefetch: 100, exclusive: true) {
            try await handle(delivery)
            try delivery.ack()
        }
    }

    // MARK: Facts

    /// Whether a message with this id has not been shown lately; remembers it.
    private func isNew(_ id: MessageID) -> Bool {
        guard !seen.contains(id.rawValue) else { return false }
        seen.remember(id.rawValue, true)
        return true
    }

    private func isOurs(_ conversation: ConversationID) -> Bool {
        conversation.rawValue.hasPrefix(runPrefix)
    }

    /// Desks `demo` and `auto` are the demo's own: a conversation there that is not this run's was left open by an
    /// earlier run (killed, or without a broker at its end). It would ring the agents and hold their room for good
    /// (nothing plays its people), so it is ended.
    private func endLeftover(_ conversation: ConversationID, desk: DeskID) {
        guard !isOurs(conversation), leftoversEnded.insert(conversation).inserted else { return }
        terminal.line(.dim, "  ending \(conversation), left open by an earlier run")
        later(.zero) { demo in
            try await demo.publish(desk: desk, .conversationEnded(conversation: conversation, by: .admin))
        }
    }

    private func onRouterEvent(_ delivery: AMQPDelivery) throws {
        guard let decoded = try? WireCodec.decodeRouterEvent(Data(delivery.body)),
            decoded.message.desk == Self.ringingDesk || decoded.message.desk == Self.automaticDesk,
            isNew(decoded.id)
        else { return }
        let event = decoded.message
        switch event.body {
        case .deskConfigured(let settings):
            setUpUnseen.remove(Self.setUpKey(event.desk))
            terminal.line(.dim, "  desk \(event.desk) configured: \(EventLine.describe(settings))")
        case .agentChanged(let agent, let status, let capacity, let load, _, let reason):
            if status == .online { setUpUnseen.remove(Self.setUpKey(event.desk, agent)) }
            switch reason {
            case .command, .missedRings, .removed:
                terminal.line(.dim, "  \(agent) (\(event.desk)) is \(status.rawValue), \(load)/\(capacity) (\(reason.rawValue))")
            case .assigned, .released:
                break
            }
        case .conversationQueued(let conversation, _, let position, let reason):
            guard isOurs(conversation) else { return endLeftover(conversation, desk: event.desk) }
            terminal.line(.dim, "… \(conversation) waits, position \(position) (\(reason.rawValue))")
        case .offerMade(let conversation, _, let agent, _, let attempt, _, let ringMs):
            guard isOurs(conversation) else { return endLeftover(conversation, desk: event.desk) }
            tally.count(event.body)
            let again = attempt > 1 ? "re-offered: " : ""
            terminal.line(.ring, "🔔 \(again)\(conversation) rings \(agent) for \(EventLine.seconds(ringMs)) (attempt \(attempt))")
        case .offerExpired(let conversation, let agent, _):
            guard isOurs(conversation) else { return }
            tally.count(event.body)
            terminal.line(.bad, "⌛ \(agent) did not answer \(conversation): the ring expired, it is offered to another agent once one is free")
        case .offerDeclined(let conversation, let agent, _, _), .offerWithdrawn(let conversation, let agent, _, _):
            guard isOurs(conversation) else { return }
            terminal.line(.dim, "  \(conversation) no longer rings \(agent)")
        case .conversationAssigned(let conversation, _, let agent, _, let mode):
            guard isOurs(conversation) else { return endLeftover(conversation, desk: event.desk) }
            tally.count(event.body)
            switch mode {
            case .accepted: terminal.line(.good, "✔ \(agent) accepted \(conversation): the session starts")
            case .autoAccepted: terminal.line(.good, "⚡ \(conversation) starts at \(agent) at once: automatic service, no ring")
            case .transferred: terminal.line(.good, "✔ \(conversation) transferred to \(agent)")
            }
        case .conversationEnded(let conversation, let agent, let reason):
            guard isOurs(conversation) else { return }
            tally.count(event.body)
            open[conversation] = nil
            let byWhom = switch reason {
            case .agent: "\(agent.map(\.rawValue) ?? "the agent") pressed End Session"
            case .user: "the user left"
            case .admin: "an admin closed it"
            case .inactivity: "the user stayed silent"
            }
            terminal.line(.end, "■ \(conversation) ended: \(byWhom)")
        case .commandRejected(let rejection):
            guard let conversation = rejection.conversation else {
                // A simulated agent's own command (its status, say) refused: the demo cannot play that agent.
                if let agent = rejection.agent, Self.agents.contains(where: { $0.desk == event.desk && $0.agent == agent }) {
                    terminal.line(.bad, "✖ \(rejection.commandType) by \(agent) rejected (\(rejection.reason.rawValue))")
                }
                return
            }
            guard isOurs(conversation) else { return }
            tally.count(event.body)
            let who = rejection.agent.map(\.rawValue) ?? "someone"
            switch rejection.reason {
            case .offerExpired:
                terminal.line(.bad, "✖ \(who) clicked Accept too late for \(conversation): rejected (offerExpired)")
            case .offerNotYours, .unknownConversation, .unknownAgent, .invalid, .forbidden, .notServing, .agentUnavailable,
                .unknownDesk:
                terminal.line(.bad, "✖ \(rejection.commandType) by \(who) for \(conversation) rejected (\(rejection.reason.rawValue))")
            }
        case .agentState(let state):
            for conversation in state.rings.map(\.conversation) + state.sessions.map(\.conversation) {
                endLeftover(conversation, desk: event.desk)
            }
        }
    }

    private func onWorkstationEvent(_ delivery: AMQPDelivery) throws {
        guard let decoded = try? WireCodec.decodeWorkstationEvent(Data(delivery.body)),
            !Self.humanAgents.contains(where: { $0.desk == decoded.message.desk && $0.agent == decoded.message.agent }),
            isNew(decoded.id)
        else { return }
        let event = decoded.message
        switch event.body {
        case .ring(let conversation, _, let offer, _, let remainingMs, _):
            guard isOurs(conversation) else { return }
            decideRing(desk: event.desk, agent: event.agent, conversation: conversation, offer: offer, remainingMs: remainingMs)
        case .countdown(let conversation, _, let remainingMs):
            guard isOurs(conversation) else { return }
            let seconds = (remainingMs + 500) / 1000
            // Every other second, then each of the last three: a countdown a person can follow without a flood.
            if seconds > 0, seconds <= 3 || seconds % 2 == 0 {
                terminal.line(.ring, "   ⏳ \(event.agent): \(conversation) \(seconds)s left")
            }
        case .sessionStarted(let conversation, let user, _):
            guard isOurs(conversation) else { return }
            playSession(desk: event.desk, agent: event.agent, conversation: conversation, user: user)
        case .statusChanged(let status, let reason):
            terminal.line(.dim, "  \(event.agent)'s workstation: now \(status.rawValue) (\(reason.rawValue))")
        case .ringStopped, .sessionEnded, .commandRejected, .state:
            // The Router's facts already show these, once.
            break
        }
    }

    private func onOutbound(_ delivery: AMQPDelivery) throws {
        guard let decoded = try? WireCodec.decodeOutbound(Data(delivery.body)), isNew(decoded.id) else {
            return
        }
        let message = decoded.message
        switch message.body {
        case .inactivityWarning(let conversation, let user, let text, _):
            guard isOurs(conversation) else { return }
            tally.count(message.body)
            terminal.line(.warning, "⚠ warning to \(user) in \(conversation): \"\(text)\"")
        case .closureMessage(let conversation, let user, let text, _):
            guard isOurs(conversation) else { return }
            tally.count(message.body)
            terminal.line(.warning, "✉ closure message to \(user) in \(conversation): \"\(text)\"")
        }
    }

    // MARK: The simulated people

    private func decideRing(desk: DeskID, agent: AgentID, conversation: ConversationID, offer: OfferToken, remainingMs: Milliseconds) {
        let choice: RingChoice
        if ringScript.isEmpty {
            let roll = Int.random(in: 0..<100, using: &random)
            choice =
                if roll < 55 { .accept(after: .milliseconds(Int.random(in: 1_000...3_000, using: &random))) }
                else if roll < 80 { .letExpire }
                else { .acceptLate }
        } else {
            choice = ringScript.removeFirst() ?? .accept(after: min(.seconds(2), .milliseconds(remainingMs / 3)))
        }
        let accept = InboundBody.offerAccept(agent: agent, conversation: conversation, offer: offer)
        switch choice {
        case .accept(let delay):
            later(delay) { demo in
                await demo.say(.action, "→ \(agent) clicks Accept on \(conversation)")
                try await demo.publish(desk: desk, accept)
            }
        case .letExpire:
            break
        case .acceptLate:
            later(.milliseconds(remainingMs + 700)) { demo in
                await demo.say(.action, "→ \(agent) clicks Accept on \(conversation), after the ring expired")
                try await demo.publish(desk: desk, accept)
            }
        }
    }

    private func playSession(desk: DeskID, agent: AgentID, conversation: ConversationID, user: UserID) {
        let choice: SessionChoice
        if sessionScript.isEmpty {
            let roll = Int.random(in: 0..<100, using: &random)
            choice = roll < 35 ? .userReplies : roll < 70 ? .userGoesQuiet : .agentEnds
        } else {
            choice = sessionScript.removeFirst()
        }
        let silence = settings.inactivityMs
        // Halfway between the agent's message and the warning (or the close): well clear of both on a busy machine.
        let reply = max(500, (silence - settings.warningMs) / 2)
        later(.seconds(1)) { demo in
            await demo.say(.action, "→ \(agent) writes to \(user) in \(conversation): the inactivity clock starts (\(EventLine.seconds(silence)))")
            try await demo.post(desk: desk, conversation: conversation, from: .agent, agent: agent)
        }
        switch choice {
        case .userReplies:
            later(.milliseconds(1_000 + reply)) { demo in
                await demo.countReply()
                await demo.say(.action, "→ \(user) replies in \(conversation): the clock stops")
                try await demo.post(desk: desk, conversation: conversation, from: .user, agent: nil)
            }
            later(.milliseconds(2_000 + reply)) { demo in
                await demo.say(.action, "→ \(agent) answers \(user) in \(conversation): the clock starts again")
                try await demo.post(desk: desk, conversation: conversation, from: .agent, agent: agent)
            }
        case .userGoesQuiet:
            break
        case .agentEnds:
            later(.seconds(4)) { demo in
                await demo.say(.action, "→ \(agent) presses End Session on \(conversation)")
                try await demo.publish(desk: desk, .sessionEnd(agent: agent, conversation: conversation))
            }
        }
    }

    // MARK: Plumbing

    private func later(_ delay: Duration, _ action: @escaping @Sendable (DemoRun) async throws -> Void) {
        nextPending += 1
        let id = nextPending
        pending[id] = Task { [weak self] in
            guard (try? await Task.sleep(for: delay)) != nil, let self else { return }
            do {
                try await action(self)
            } catch {
                await self.say(.bad, "✖ could not publish: \(error)")
            }
            await self.done(id)
        }
    }

    private func done(_ id: UInt64) {
        pending[id] = nil
    }

    private func say(_ tone: Terminal.Tone, _ text: String) {
        terminal.line(tone, text)
    }

    private func countReply() {
        tally.userReplies += 1
    }

    private func post(desk: DeskID, conversation: ConversationID, from author: MessageAuthor, agent: AgentID?) async throws {
        let posted = PostedMessage(conversation: conversation, from: author, agent: agent, sentAt: WallClock.now())
        try await publish(desk: desk, .messagePosted(posted))
    }

    private func publish(desk: DeskID, _ body: InboundBody) async throws {
        try await publish(try requirePublisher(), desk: desk, body)
    }

    private func publish(_ publisher: AMQPPublisher, desk: DeskID, _ body: InboundBody) async throws {
        // With the connection's broker user as `user_id`: the Router takes agent commands only with one it allows.
        try await publisher.publish(try factory.message(desk: desk, body).publishedAs(connection.configuration.user))
    }

    private func requirePublisher() throws -> AMQPPublisher {
        guard let publisher else { throw CancellationError() }
        return publisher
    }
}
