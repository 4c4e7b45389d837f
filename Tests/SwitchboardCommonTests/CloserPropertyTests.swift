import Foundation
import PropertyBased
import SwitchboardCommon
import SwitchboardTestSupport
import Testing

/// Random schedules of chat messages, Router facts and timer ticks, checked step by step against a naive
/// reference model of the inactivity rules (linear scans, no timers, no bounds), with one snapshot restore
/// somewhere in the middle.
@Suite struct CloserPropertyTests {
    @Test func theCoreMatchesTheReferenceModelAcrossASnapshotRestore() async {
        await propertyCheckRecordingErrors(count: 200, input: Generator { rng in Schedule.random(&rng) }) { schedule in
            var core = CloserCore()
            var model = CloserModel()
            var now = Universe.start
            var seqByDesk: [DeskID: UInt64] = [:]
            var closures: Set<String> = []
            for (index, step) in schedule.steps.enumerated() {
                if index == schedule.restoreAt {
                    core = try JSONDecoder().decode(CloserCore.self, from: JSONEncoder().encode(core))
                }
                let input: CloserCore.Input
                switch step {
                case .advance(let milliseconds):
                    now = now + milliseconds
                    continue
                case .tick:
                    input = .tick
                case .post(let desk, let conversation, let from, let agent, let delay):
                    let posted = PostedMessage(
                        conversation: Universe.conversations[conversation], from: from,
                        agent: agent.map { Universe.agents[$0] }, sentAt: now + -delay)
                    input = .message(InboundMessage(
                        id: try MessageID("m-\(index)"), desk: Universe.desks[desk], at: now, body: .messagePosted(posted)))
                case .strayMessage:
                    let posted = PostedMessage(conversation: Universe.conversations[0], from: .agent, sentAt: now)
                    input = .message(InboundMessage(
                        id: try MessageID("m-\(index)"), desk: Universe.unknownDesk, at: now, body: .messagePosted(posted)))
                case .router(let desk, let body):
                    let deskID = Universe.desks[desk]
                    seqByDesk[deskID, default: 0] += 1
                    input = .routerEvent(RouterEvent(desk: deskID, seq: seqByDesk[deskID]!, at: now, body: body))
                case .replay(let desk):
                    let deskID = Universe.desks[desk]
                    input = .routerEvent(RouterEvent(
                        desk: deskID, seq: seqByDesk[deskID, default: 0], at: now,
                        body: .conversationEnded(conversation: Universe.conversations[0], agent: nil, reason: .user)))
                }
                var effects = core.handle(input, at: now)
                let expected = model.handle(input, at: now)
                var wakeUp: Instant?
                if case .wakeUp(let at) = effects.last {
                    wakeUp = at
                    effects.removeLast()
                }
                #expect(effects == expected, "step \(index): \(step)")
                // Never late, never missing. It may be early, or with nothing due, when a clock moved later or
                // stopped after its timer was set; then the tick finds nothing to do and the model agrees.
                if case .tick = input, let wakeUp {
                    #expect(wakeUp > now, "step \(index): a tick left a timer due at \(wakeUp)")
                }
                if let earliest = model.earliestAction {
                    #expect(wakeUp != nil && wakeUp! <= earliest, "step \(index): \(step): wake-up \(String(describing: wakeUp)) for \(earliest)")
                }
                for effect in effects {
                    if case .publish(let message) = effect, case .closureMessage(let conversation, _, _, _) = message.body {
                        #expect(closures.insert("\(message.desk)/\(conversation)").inserted, "second closure at step \(index)")
                    }
                }
            }
        }
    }
}

private enum Universe {
    static let desks = [try! DeskID("acme"), try! DeskID("zeta")]
    static let unknownDesk = try! DeskID("nowhere")
    static let conversations = (1...5).map { try! ConversationID("c\($0)") }
    static let user = try! UserID("u1")
    static let agents = [try! AgentID("ann"), try! AgentID("bob")]
    static let start = Instant(millisecondsSinceEpoch: 1_764_093_600_000)
}

private enum Step: Sendable, CustomStringConvertible {
    case advance(Milliseconds)
    case tick
    /// `agent`: an index into `Universe.agents`; `nil` for a user's message or an agent's naming none.
    case post(desk: Int, conversation: Int, from: MessageAuthor, agent: Int?, delay: Milliseconds)
    case strayMessage
    case router(desk: Int, RouterEventBody)
    case replay(desk: Int)

    var description: String {
        switch self {
        case .advance(let milliseconds): "advance \(milliseconds)"
        case .tick: "tick"
        case .post(let desk, let conversation, let from, let agent, let delay):
            "post d\(desk) c\(conversation + 1) \(from)\(agent.map { " \(Universe.agents[$0])" } ?? "") -\(delay)"
        case .strayMessage: "stray message"
        case .router(let desk, let body): "router d\(desk) \(body)"
        case .replay(let desk): "replay d\(desk)"
        }
    }
}

private struct Schedule: Sendable {
    var steps: [Step]
    var restoreAt: Int

    static func random(_ rng: inout some RandomNumberGenerator) -> Schedule {
        var steps: [Step] = Universe.desks.indices.map { .router(desk: $0, configure(&rng)) }
        for _ in 0..<Int.random(in: 20...200, using: &rng) {
            steps.append(.advance(Milliseconds.random(in: 0...12_000, using: &rng)))
            let desk = Int.random(in: 0..<Universe.desks.count, using: &rng)
            let index = Int.random(in: 0..<Universe.conversations.count, using: &rng)
            let conversation = Universe.conversations[index]
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<30:
                let from: MessageAuthor = Bool.random(using: &rng) ? .agent : .user
                steps.append(.post(
                    desk: desk, conversation: index, from: from,
                    agent: from == .agent ? [0, 1, nil].randomElement(using: &rng)! : nil,
                    delay: Milliseconds.random(in: 0...3_000, using: &rng)))
            case 30..<45:
                let mode = [AssignMode.accepted, .autoAccepted, .transferred].randomElement(using: &rng)!
                steps.append(.router(desk: desk, .conversationAssigned(
                    conversation: conversation, user: Universe.user, agent: Universe.agents.randomElement(using: &rng)!,
                    offer: nil, mode: mode)))
            case 45..<50:
                steps.append(.router(desk: desk, .conversationQueued(
                    conversation: conversation, user: Universe.user, position: 1,
                    reason: QueueReason.allCases.randomElement(using: &rng)!)))
            case 50..<55:
                steps.append(.router(desk: desk, .conversationEnded(conversation: conversation, agent: nil, reason: .user)))
            case 55..<58:
                steps.append(.router(desk: desk, configure(&rng)))
            case 58..<60:
                steps.append(.replay(desk: desk))
            case 60..<62:
                steps.append(.strayMessage)
            default:
                steps.append(.tick)
            }
        }
        return Schedule(steps: steps, restoreAt: Int.random(in: 0..<steps.count, using: &rng))
    }

    private static func configure(_ rng: inout some RandomNumberGenerator) -> RouterEventBody {
        var settings = DeskSettings()
        settings.inactivityMs = [0, 10_000, 30_000, 60_000].randomElement(using: &rng)!
        settings.warningMs = [0, 5_000].randomElement(using: &rng)!
        return .deskConfigured(settings: settings)
    }
}

/// The inactivity rules written the obvious way.
private struct CloserModel {
    /// The latest message naming an agent who did not serve the conversation when it arrived.
    struct Held {
        var agent: AgentID
        var at: Int64
    }

    struct Clock {
        var agentAt: Int64 = .min
        var userAt: Int64 = .min
        var held: Held?
        /// Who handed the conversation over last: its messages arriving while it does not serve are dropped.
        var former: AgentID?

        mutating func hold(_ agent: AgentID, _ sentAt: Int64) {
            guard agent != former else { return }
            if held == nil || sentAt >= held!.at { held = Held(agent: agent, at: sentAt) }
        }

        mutating func handOver(by agent: AgentID?) {
            userAt = max(userAt, agentAt)
            guard let agent else { return }
            former = agent
            if held?.agent == agent { held = nil }
        }
    }

    struct Served {
        var user: UserID
        /// `nil` until its first assignment is applied.
        var agent: AgentID?
        var clock: Clock
        var warned = false
    }

    struct Key: Hashable {
        var desk: DeskID
        var conversation: ConversationID
    }

    var settings: [DeskID: DeskSettings] = [:]
    var deskOrder: [DeskID] = []
    var lastSeq: [DeskID: UInt64] = [:]
    var served: [Key: Served] = [:]
    var unassigned: [Key: Clock] = [:]
    /// true: closed for inactivity.
    var ended: [Key: Bool] = [:]

    var earliestAction: Instant? {
        served.compactMap { key, conversation in action(key, conversation)?.at }.min()
            .map { Instant(millisecondsSinceEpoch: $0) }
    }

    func action(_ key: Key, _ conversation: Served) -> (at: Int64, deadline: Int64)? {
        let desk = settings[key.desk] ?? DeskSettings()
        guard desk.inactivityMs > 0, conversation.clock.agentAt > conversation.clock.userAt else { return nil }
        let deadline = conversation.clock.agentAt + desk.inactivityMs
        return (desk.warningMs > 0 && !conversation.warned ? deadline - desk.warningMs : deadline, deadline)
    }

    mutating func handle(_ input: CloserCore.Input, at now: Instant) -> [CloserCore.Effect] {
        switch input {
        case .message(let message):
            guard case .messagePosted(let posted) = message.body else { return [] }
            guard lastSeq[message.desk] != nil else {
                return [.deadLetter(reason: "message.posted: unknown desk \(message.desk)")]
            }
            let key = Key(desk: message.desk, conversation: posted.conversation)
            let sentAt = posted.sentAt.millisecondsSinceEpoch
            if var conversation = served[key] {
                switch posted.from {
                case .agent where posted.agent != nil && posted.agent != conversation.agent:
                    conversation.clock.hold(posted.agent!, sentAt)
                case .agent:
                    if sentAt > conversation.clock.agentAt {
                        conversation.clock.agentAt = sentAt
                        conversation.warned = false
                    }
                case .user:
                    conversation.clock.userAt = max(conversation.clock.userAt, sentAt)
                }
                served[key] = conversation
            } else if ended[key] == nil {
                var clock = unassigned[key] ?? Clock()
                switch posted.from {
                case .agent where posted.agent != nil: clock.hold(posted.agent!, sentAt)
                case .agent: clock.agentAt = max(clock.agentAt, sentAt)
                case .user: clock.userAt = max(clock.userAt, sentAt)
                }
                unassigned[key] = clock
            }
            return []
        case .routerEvent(let event):
            if lastSeq[event.desk] == nil { deskOrder.append(event.desk) }
            guard event.seq > lastSeq[event.desk, default: 0] else { return [] }
            lastSeq[event.desk] = event.seq
            switch event.body {
            case .deskConfigured(let newSettings):
                settings[event.desk] = newSettings
            case .conversationAssigned(let conversationID, let user, let agent, _, let mode):
                let key = Key(desk: event.desk, conversation: conversationID)
                if ended[key] == true { return [] }
                ended[key] = nil
                var conversation = served[key]
                    ?? Served(user: user, agent: nil, clock: unassigned.removeValue(forKey: key) ?? Clock())
                conversation.user = user
                if mode == .transferred {
                    conversation.clock.handOver(by: conversation.agent)
                }
                conversation.agent = agent
                if let held = conversation.clock.held, held.agent == agent, held.at > conversation.clock.agentAt {
                    conversation.clock.agentAt = held.at
                    conversation.warned = false
                }
                conversation.clock.held = nil
                served[key] = conversation
            case .conversationQueued(let conversation, _, _, let reason):
                let key = Key(desk: event.desk, conversation: conversation)
                guard let requeued = served.removeValue(forKey: key) else { return [] }
                var before = requeued.clock
                if reason == .transferred || reason == .agentRemoved {
                    before.handOver(by: requeued.agent)
                }
                var waiting = unassigned[key] ?? Clock()
                waiting.agentAt = max(waiting.agentAt, before.agentAt)
                waiting.userAt = max(waiting.userAt, before.userAt)
                if let held = before.held, held.at >= waiting.held?.at ?? .min { waiting.held = held }
                waiting.former = before.former ?? waiting.former
                unassigned[key] = waiting
            case .conversationEnded(let conversation, _, _):
                let key = Key(desk: event.desk, conversation: conversation)
                served[key] = nil
                unassigned[key] = nil
                ended[key] = ended[key] ?? false
            case .agentChanged, .offerMade, .offerExpired, .offerDeclined, .offerWithdrawn, .commandRejected,
                 .agentState:
                break
            }
            return []
        case .tick:
            let nowMs = now.millisecondsSinceEpoch
            let due = served.compactMap { key, conversation -> (at: Int64, desk: Int, key: Key)? in
                guard let action = action(key, conversation), action.at <= nowMs else { return nil }
                return (action.at, deskOrder.firstIndex(of: key.desk)!, key)
            }.sorted { ($0.at, $0.desk, $0.key.conversation) < ($1.at, $1.desk, $1.key.conversation) }
            var effects: [CloserCore.Effect] = []
            for (_, _, key) in due {
                let conversation = served[key]!
                let desk = settings[key.desk] ?? DeskSettings()
                let deadline = action(key, conversation)!.deadline
                if nowMs >= deadline {
                    served[key] = nil
                    ended[key] = true
                    effects.append(.publish(OutboundMessage(desk: key.desk, at: now, body: .closureMessage(
                        conversation: key.conversation, user: conversation.user, text: desk.closureText,
                        idempotencyKey: "closure:\(key.conversation)"))))
                    effects.append(.send(InboundMessage(
                        id: try! MessageID("inactivity:\(key.desk):\(key.conversation)"), desk: key.desk, at: now,
                        body: .conversationEnded(conversation: key.conversation, by: .inactivity))))
                } else {
                    served[key]!.warned = true
                    effects.append(.publish(OutboundMessage(desk: key.desk, at: now, body: .inactivityWarning(
                        conversation: key.conversation, user: conversation.user, text: desk.warningText,
                        idempotencyKey: "warning:\(key.conversation):\(conversation.clock.agentAt)"))))
                }
            }
            return effects
        }
    }
}
