import SwitchboardCommon

/// Names shared by the Router tests; each test file aliases the ones it uses privately.
enum RouterFixture {
    static let acme = try! DeskID("acme")
    static let zeta = try! DeskID("zeta")
    static let ann = try! AgentID("ann")
    static let bob = try! AgentID("bob")
    static let cat = try! AgentID("cat")
    static let zed = try! AgentID("zed")
    static let sales = try! GroupID("sales")
    static let billing = try! GroupID("billing")
    static let t0 = Instant(millisecondsSinceEpoch: 1_764_093_600_000)
    static let ringMs = DeskSettings.defaults.ringMs

    static func chat(_ number: Int) -> ConversationID { try! ConversationID("c\(number)") }
    static func user(_ number: Int) -> UserID { try! UserID("u\(number)") }
    static func token(_ number: Int) -> OfferToken { try! OfferToken("o-\(number)") }
}

private let acme = RouterFixture.acme
private let routerT0 = RouterFixture.t0
private let ring = RouterFixture.ringMs
private let chat = RouterFixture.chat
private let user = RouterFixture.user
private let token = RouterFixture.token

/// Drives a `RouterCore` with unique message ids and builds the exact effects expected of it, numbering
/// expected events from the last `seq` the core published for the desk, so a gap or repeat fails the test.
struct RouterHarness {
    var core: RouterCore
    var now = RouterFixture.t0
    private var messageCount = 0
    private(set) var lastMessageID = try! MessageID("none")
    private var lastSeq: [DeskID: UInt64] = [:]
    private var seqBeforeLastInput: [DeskID: UInt64] = [:]

    init(limits: RouterCore.Limits = RouterCore.Limits()) {
        core = RouterCore(limits: limits)
    }

    @discardableResult
    mutating func send(_ body: InboundBody, desk: DeskID = RouterFixture.acme, id: String? = nil) -> [RouterCore.Effect] {
        messageCount += 1
        lastMessageID = try! MessageID(id ?? "m-\(messageCount)")
        let message = InboundMessage(id: lastMessageID, desk: desk, at: now, body: body)
        return record(core.handle(.message(message), at: now))
    }

    @discardableResult
    mutating func tick(at instant: Instant) -> [RouterCore.Effect] {
        now = instant
        return record(core.handle(.tick, at: now))
    }

    private mutating func record(_ effects: [RouterCore.Effect]) -> [RouterCore.Effect] {
        seqBeforeLastInput = lastSeq
        for case .publish(let event) in effects {
            lastSeq[event.desk] = event.seq
        }
        return effects
    }

    /// The events the last input should have published, in order, with consecutive seq numbers.
    func events(_ bodies: RouterEventBody..., desk: DeskID = RouterFixture.acme) -> [RouterCore.Effect] {
        var seq = seqBeforeLastInput[desk, default: 0]
        return bodies.map { body in
            seq += 1
            return .publish(RouterEvent(desk: desk, seq: seq, at: now, body: body))
        }
    }

    // MARK: - Setting up

    @discardableResult
    mutating func configure(_ patch: DeskSettingsPatch = DeskSettingsPatch(), desk: DeskID = RouterFixture.acme) -> [RouterCore.Effect] {
        send(.deskConfigure(patch), desk: desk)
    }

    @discardableResult
    mutating func addAgent(
        _ agent: AgentID, capacity: Int = 1, groups: [GroupID] = [], autoAccept: Bool? = nil, online: Bool = true
    ) -> [RouterCore.Effect] {
        let added = send(.agentUpsert(AgentProfile(agent: agent, groups: groups, capacity: capacity, autoAccept: autoAccept)))
        return online ? send(.agentStatus(agent: agent, status: .online)) : added
    }

    @discardableResult
    mutating func request(
        _ number: Int, group: GroupID? = nil, priority: Int = 0, preferredAgent: AgentID? = nil
    ) -> [RouterCore.Effect] {
        send(.conversationRequested(ConversationRequest(
            conversation: chat(number), user: user(number), group: group, priority: priority,
            preferredAgent: preferredAgent)))
    }

    @discardableResult
    mutating func accept(_ agent: AgentID, _ number: Int, offer: Int) -> [RouterCore.Effect] {
        send(.offerAccept(agent: agent, conversation: chat(number), offer: token(offer)))
    }

    // MARK: - Expected event bodies

    func offerMade(_ number: Int, to agent: AgentID, offer: Int, attempt: Int = 1) -> RouterEventBody {
        .offerMade(
            conversation: chat(number), user: user(number), agent: agent, offer: token(offer), attempt: attempt,
            expiresAt: now + ring, ringMs: ring)
    }

    func queued(_ number: Int, position: Int, _ reason: QueueReason) -> RouterEventBody {
        .conversationQueued(conversation: chat(number), user: user(number), position: position, reason: reason)
    }

    func assigned(_ number: Int, to agent: AgentID, offer: Int?, _ mode: AssignMode) -> RouterEventBody {
        .conversationAssigned(
            conversation: chat(number), user: user(number), agent: agent, offer: offer.map(token), mode: mode)
    }

    func rejected(_ type: String, _ agent: AgentID, _ number: Int?, _ reason: RejectionReason) -> RouterEventBody {
        .commandRejected(CommandRejection(
            command: lastMessageID, commandType: type, agent: agent, conversation: number.map(chat), reason: reason))
    }

    func agentChanged(
        _ agent: AgentID, _ status: AgentStatus, capacity: Int = 1, load: Int = 0, groups: [GroupID] = [],
        _ reason: AgentChangeReason
    ) -> RouterEventBody {
        .agentChanged(agent: agent, status: status, capacity: capacity, load: load, groups: groups, reason: reason)
    }

    var wakeUpAfterRing: RouterCore.Effect { .wakeUp(at: now + ring) }
}
