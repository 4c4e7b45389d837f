import Foundation
import SwitchboardCommon
import Testing

/// Seeded random schedules of requests, accepts (live, late and foreign), declines, expiries, status changes,
/// transfers, removals, ends, duplicates and restarts from snapshots. After every step the published facts
/// are checked against the invariants of DESIGN.md, and a twin restored from snapshots must produce
/// exactly the same effects.
@Suite struct RouterSimulationTests {
    @Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
    func randomSchedulesKeepEveryInvariant(seed: UInt64) throws {
        var simulation = RouterSimulation(seed: seed)
        for _ in 0..<2_500 {
            try simulation.step()
        }
        #expect(simulation.oracle.assignments > 50, "seed \(seed) should exercise assignments")
        #expect(simulation.oracle.rejections > 20, "seed \(seed) should exercise rejections")
        #expect(simulation.oracle.expiries > 20, "seed \(seed) should exercise expiries")
    }
}

private struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

private struct RouterSimulation {
    let desks = [RouterFixture.acme, RouterFixture.zeta]
    let agents = ["ann", "bob", "cat", "dan", "eve"].map { try! AgentID($0) }
    let groups = [RouterFixture.sales, RouterFixture.billing]
    var random: SplitMix64
    var core = RouterCore(limits: RouterCore.Limits(rememberedMessages: 500, rememberedOffersPerDesk: 50))
    var twin: RouterCore
    var oracle = RouterOracle()
    var now = RouterFixture.t0
    var sent: [InboundMessage] = []
    var messageCount = 0
    var seed: UInt64

    init(seed: UInt64) {
        self.seed = seed
        random = SplitMix64(state: seed)
        twin = core
    }

    func capacity(of agent: AgentID) -> Int { agent.rawValue.count % 2 + (agent.rawValue == "ann" ? 2 : 1) }

    mutating func step() throws {
        if random.chance(5) {
            twin = try JSONDecoder().decode(RouterCore.self, from: JSONEncoder().encode(twin))
        }
        let input = nextInput()
        let effects = core.handle(input, at: now)
        let twinEffects = twin.handle(input, at: now)
        #expect(twinEffects == effects, "seed \(seed): a restored core diverged at step \(messageCount)")
        oracle.check(input, effects, at: now, seed: seed)
        oracle.checkState(of: core, seed: seed)
    }

    mutating func nextInput() -> RouterCore.Input {
        let desk = random.pick(desks)
        let agent = random.pick(agents)
        let conversation = try! ConversationID("c\(random.below(40))")
        let body: InboundBody
        switch random.below(100) {
        case 0..<15:
            return tick()
        case 15..<30:
            body = .conversationRequested(ConversationRequest(
                conversation: conversation, user: try! UserID("u-\(conversation)"),
                group: random.chance(30) ? random.pick(groups) : nil, priority: random.below(3),
                preferredAgent: random.chance(20) ? random.pick(agents) : nil))
        case 30..<45:
            if let live = oracle.liveOffers(on: desk).randomElement(using: &random), !random.chance(15) {
                body = .offerAccept(agent: live.agent, conversation: live.conversation, offer: live.offer)
            } else {
                body = .offerAccept(agent: agent, conversation: conversation, offer: try! OfferToken("o-\(random.below(60) + 1)"))
            }
        case 45..<50:
            if let live = oracle.liveOffers(on: desk).randomElement(using: &random) {
                body = .offerDecline(agent: live.agent, conversation: live.conversation, offer: live.offer, reason: nil)
            } else {
                return tick()
            }
        case 50..<58:
            let served = oracle.served(on: desk).randomElement(using: &random)
            body = .sessionEnd(agent: served?.agent ?? agent, conversation: served?.conversation ?? conversation)
        case 58..<64:
            let served = oracle.served(on: desk).randomElement(using: &random)
            let target: TransferTarget? =
                switch random.below(3) {
                case 0: .agent(random.pick(agents))
                case 1: .group(random.pick(groups))
                default: nil
                }
            body = .sessionTransfer(
                agent: served?.agent ?? agent, conversation: served?.conversation ?? conversation, to: target)
        case 64..<76:
            body = .agentStatus(agent: agent, status: random.pick([.online, .online, .break, .offline]))
        case 76..<82:
            body = .conversationEnded(conversation: conversation, by: random.pick([.user, .admin, .inactivity]))
        case 82..<87:
            body = .agentUpsert(AgentProfile(
                agent: agent, groups: groups.filter { _ in random.chance(50) }, capacity: capacity(of: agent),
                autoAccept: random.chance(20) ? random.chance(50) : nil))
        case 87..<89:
            body = .agentRemove(agent: agent)
        case 89..<92:
            body = .agentSync(agent: agent)
        case 92..<95:
            body = .deskConfigure(DeskSettingsPatch(
                ringMs: Milliseconds(random.below(3) + 1) * 10_000, autoAccept: random.chance(15),
                maxOfferAttempts: random.below(3) + 1, missesBeforeBreak: random.below(3) + 1,
                routing: random.pick(RoutingPolicy.allCases)))
        case 95..<97:
            messageCount += 1
            return .rejectedCommand(
                id: try! MessageID("m-\(messageCount)"), desk: desk, agent: agent, type: "offer.accept",
                conversation: random.chance(50) ? conversation : nil, reason: random.pick([.invalid, .forbidden]))
        case 97..<99:
            if let previous = sent.randomElement(using: &random) {
                return .message(previous)
            }
            return tick()
        default:
            body = .agentSync(agent: agent)
            messageCount += 1
            return .message(InboundMessage(
                id: try! MessageID("m-\(messageCount)"), desk: try! DeskID("nowhere"), at: now, body: body))
        }
        messageCount += 1
        let message = InboundMessage(id: try! MessageID("m-\(messageCount)"), desk: desk, at: now, body: body)
        sent.append(message)
        return .message(message)
    }

    mutating func tick() -> RouterCore.Input {
        now = now + Milliseconds(random.below(20_000))
        return .tick
    }
}

extension Array {
    fileprivate func randomElement(using random: inout SplitMix64) -> Element? {
        isEmpty ? nil : self[random.below(count)]
    }
}

/// A model of what the published facts say, checked against the invariants after every input.
private struct RouterOracle {
    enum Phase: Equatable {
        case waiting
        case ringing(agent: AgentID, offer: OfferToken, expiresAt: Instant)
        case serving(AgentID)
        /// Taken off an agent by the last fact; must be waiting, ringing or serving again by the end of the input.
        case moving
    }

    struct Agent {
        var status: AgentStatus
        var capacity: Int
    }

    struct Ring {
        let agent: AgentID
        let conversation: ConversationID
        let offer: OfferToken
    }

    var phases: [DeskID: [ConversationID: Phase]] = [:]
    /// The time and the reason or mode of each conversation's latest `conversation.queued` or `conversation.assigned`.
    var entered: [DeskID: [ConversationID: (at: Instant, reason: QueueReason?, mode: AssignMode?)]] = [:]
    var agents: [DeskID: [AgentID: Agent]] = [:]
    var configured: Set<DeskID> = []
    var lastSeq: [DeskID: UInt64] = [:]
    var assignments = 0
    var rejections = 0
    var expiries = 0

    func liveOffers(on desk: DeskID) -> [Ring] {
        phases[desk, default: [:]].sorted { $0.key < $1.key }.compactMap { conversation, phase in
            guard case .ringing(let agent, let offer, _) = phase else { return nil }
            return Ring(agent: agent, conversation: conversation, offer: offer)
        }
    }

    func served(on desk: DeskID) -> [(agent: AgentID, conversation: ConversationID)] {
        phases[desk, default: [:]].sorted { $0.key < $1.key }.compactMap { conversation, phase in
            guard case .serving(let agent) = phase else { return nil }
            return (agent, conversation)
        }
    }

    func load(of agent: AgentID, on desk: DeskID) -> Int {
        phases[desk, default: [:]].values.count { phase in
            switch phase {
            case .ringing(let holder, _, _), .serving(let holder): holder == agent
            case .waiting, .moving: false
            }
        }
    }

    mutating func check(_ input: RouterCore.Input, _ effects: [RouterCore.Effect], at now: Instant, seed: UInt64) {
        let context = Comment(rawValue: "seed \(seed), input \(input)")
        var wakeUp: Instant?
        for (index, effect) in effects.enumerated() {
            switch effect {
            case .publish(let event):
                apply(event, at: now, context)
            case .deadLetter:
                if case .message(let message) = input {
                    let expected: Bool =
                        switch message.body {
                        case .messagePosted: true
                        default: !configured.contains(message.desk)
                        }
                    #expect(expected, context)
                }
            case .wakeUp(let at):
                #expect(index == effects.count - 1, "wake-up must come last; \(context)")
                wakeUp = at
            }
        }
        let deadlines = phases.values.flatMap(\.values).compactMap { phase -> Instant? in
            guard case .ringing(_, _, let expiresAt) = phase else { return nil }
            return expiresAt
        }
        #expect(wakeUp == deadlines.min(), "wake-up must be the earliest live ring deadline; \(context)")
        if case .tick = input {
            #expect(deadlines.allSatisfy { $0 > now }, "a tick expires every due ring; \(context)")
        }
        for (desk, conversations) in phases {
            for (conversation, phase) in conversations {
                #expect(phase != .moving, "conversation \(conversation) lost; \(context)")
                switch phase {
                case .ringing(let agent, _, _), .serving(let agent):
                    #expect(agents[desk]?[agent] != nil, "\(conversation) held by a removed agent; \(context)")
                case .waiting, .moving:
                    break
                }
            }
            for (agent, known) in agents[desk, default: [:]] {
                #expect(load(of: agent, on: desk) <= known.capacity, "\(agent) over capacity; \(context)")
            }
        }
        switch input {
        case .message(let message):
            checkAnswered(message, effects, context)
        case .rejectedCommand(let id, let desk, let agent, _, _, let reason):
            let rejections = effects.count { effect in
                guard case .publish(let event) = effect, case .commandRejected(let rejection) = event.body else {
                    return false
                }
                return rejection.command == id && rejection.reason == reason
            }
            let known = configured.contains(desk) && agents[desk]?[agent] != nil
            #expect(rejections == (known ? 1 : 0), "a refused command is answered once, to a known agent; \(context)")
            #expect(
                effects.allSatisfy { effect in
                    if case .publish(let event) = effect { return event.body.type == "command.rejected" }
                    return true
                }, "a refused command changes nothing but its answer; \(context)")
        case .tick:
            break
        }
    }

    /// What `switchboard desk show` reads from the core (`RouterCore.state(of:)`) is what the published facts say.
    func checkState(of core: RouterCore, seed: UInt64) {
        for desk in configured {
            let context = Comment(rawValue: "seed \(seed), desk \(desk)")
            guard let state = core.state(of: desk) else {
                Issue.record("a configured desk has no state; \(context)")
                continue
            }
            let conversations = phases[desk, default: [:]]
            let known = agents[desk, default: [:]]
            #expect(state.lastSeq == lastSeq[desk, default: 0], context)
            #expect(state.agents.map(\.agent) == known.keys.sorted(), context)
            for agent in state.agents {
                #expect(agent.status == known[agent.agent]?.status && agent.capacity == known[agent.agent]?.capacity, context)
                #expect(agent.load == load(of: agent.agent, on: desk), "\(agent.agent)'s load; \(context)")
            }
            #expect(Set(state.waiting.map(\.conversation)) == Set(conversations.filter { $0.value == .waiting }.keys), context)
            #expect(state.waiting.map(\.position) == Array(state.waiting.indices.map { $0 + 1 }), context)
            for waiting in state.waiting {
                let entry = entered[desk]?[waiting.conversation]
                #expect(waiting.since == entry?.at && waiting.reason == entry?.reason && entry?.reason != nil, context)
            }
            #expect(state.rings.count == liveOffers(on: desk).count, context)
            for ring in state.rings {
                #expect(conversations[ring.conversation] == .ringing(agent: ring.agent, offer: ring.offer, expiresAt: ring.expiresAt), context)
            }
            #expect(state.sessions.count == served(on: desk).count, context)
            for session in state.sessions {
                let entry = entered[desk]?[session.conversation]
                #expect(conversations[session.conversation] == .serving(session.agent), context)
                #expect(session.since == entry?.at && session.mode == entry?.mode && entry?.mode != nil, context)
            }
        }
    }

    /// An accept gets exactly one answer: the assignment, one definitive rejection, or (unknown desk) a dead letter.
    private func checkAnswered(_ message: InboundMessage, _ effects: [RouterCore.Effect], _ context: Comment) {
        guard case .offerAccept(_, let conversation, let offer) = message.body else { return }
        let answers = effects.count { effect in
            guard case .publish(let event) = effect else {
                if case .deadLetter = effect { return true }
                return false
            }
            switch event.body {
            case .commandRejected(let rejection): return rejection.command == message.id
            case .conversationAssigned(conversation, _, _, offer, .accepted): return true
            default: return false
            }
        }
        let duplicate = effects.isEmpty || effects.allSatisfy { if case .wakeUp = $0 { true } else { false } }
        #expect(answers == 1 || duplicate, "an accept gets exactly one answer; \(context)")
    }

    private mutating func apply(_ event: RouterEvent, at now: Instant, _ context: Comment) {
        #expect(event.seq == lastSeq[event.desk, default: 0] + 1, "seq gap; \(context)")
        lastSeq[event.desk] = event.seq
        let desk = event.desk
        func phase(_ conversation: ConversationID) -> Phase? { phases[desk]?[conversation] }
        func set(_ conversation: ConversationID, _ phase: Phase?) { phases[desk, default: [:]][conversation] = phase }
        func expectCanTake(_ agent: AgentID) {
            #expect(agents[desk]?[agent]?.status == .online, "\(agent) given work while not online; \(context)")
        }
        switch event.body {
        case .deskConfigured:
            configured.insert(desk)
        case .agentChanged(let agent, let status, let capacity, let load, _, let reason):
            switch reason {
            case .removed:
                agents[desk]?[agent] = nil
            case .command, .missedRings, .assigned, .released:
                agents[desk, default: [:]][agent] = Agent(status: status, capacity: capacity)
                #expect(load == self.load(of: agent, on: desk), "reported load; \(context)")
            }
        case .conversationQueued(let conversation, _, let position, let reason):
            #expect(position >= 1)
            switch phase(conversation) {
            case nil, .moving, .serving: break
            case .waiting, .ringing: Issue.record("queued while waiting or ringing; \(context)")
            }
            set(conversation, .waiting)
            entered[desk, default: [:]][conversation] = (now, reason, nil)
        case .offerMade(let conversation, _, let agent, let offer, let attempt, let expiresAt, let ringMs):
            #expect(attempt >= 1 && expiresAt == now + ringMs, context)
            switch phase(conversation) {
            case nil, .moving, .waiting: break
            case .ringing, .serving: Issue.record("second offer or offer while served; \(context)")
            }
            expectCanTake(agent)
            set(conversation, .ringing(agent: agent, offer: offer, expiresAt: expiresAt))
        case .offerExpired(let conversation, let agent, let offer):
            expiries += 1
            guard case .ringing(agent, offer, let expiresAt) = phase(conversation) else {
                Issue.record("expired offer was not live; \(context)")
                return
            }
            #expect(expiresAt <= now, "expired early; \(context)")
            set(conversation, .moving)
        case .offerDeclined(let conversation, let agent, let offer, _),
             .offerWithdrawn(let conversation, let agent, let offer, _):
            #expect(phase(conversation).map { Self.isRing($0, agent: agent, offer: offer) } == true, context)
            set(conversation, .moving)
        case .conversationAssigned(let conversation, _, let agent, let offer, let mode):
            assignments += 1
            switch mode {
            case .accepted:
                #expect(phase(conversation).map { Self.isRing($0, agent: agent, offer: offer) } == true, context)
            case .autoAccepted:
                #expect(offer == nil, context)
                expectCanTake(agent)
                switch phase(conversation) {
                case nil, .moving, .waiting: break
                case .ringing, .serving: Issue.record("auto-assigned while ringing or served; \(context)")
                }
            case .transferred:
                guard case .serving(let previous) = phase(conversation), previous != agent else {
                    Issue.record("transferred while not served by another agent; \(context)")
                    return
                }
                expectCanTake(agent)
            }
            set(conversation, .serving(agent))
            entered[desk, default: [:]][conversation] = (now, nil, mode)
        case .conversationEnded(let conversation, let agent, _):
            switch phase(conversation) {
            case .waiting, .moving:
                #expect(agent == nil, context)
            case .serving(let server):
                #expect(agent == server, context)
            case .ringing, nil:
                Issue.record("ended while ringing or unknown; \(context)")
            }
            set(conversation, nil)
        case .commandRejected:
            rejections += 1
        case .agentState(let state):
            let rings = Set(liveOffers(on: desk).filter { $0.agent == state.agent }.map(\.offer))
            let sessions = Set(served(on: desk).filter { $0.agent == state.agent }.map(\.conversation))
            #expect(Set(state.rings.map(\.offer)) == rings && Set(state.sessions.map(\.conversation)) == sessions, context)
        }
    }

    private static func isRing(_ phase: Phase, agent: AgentID, offer: OfferToken?) -> Bool {
        guard case .ringing(agent, let live, _) = phase else { return false }
        return live == offer
    }
}
