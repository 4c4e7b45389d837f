import Foundation
import PropertyBased
import SwitchboardCommon
import SwitchboardTestSupport
import Testing

/// Random streams of Router facts (including duplicates, gaps and stops of unknown offers) and timer ticks.
/// A copy restored from a snapshot at a random point must continue exactly like the original, and the
/// workstation stream must keep its invariants throughout.
@Suite struct NotifierPropertyTests {
    @Test func snapshotsAreTransparentAndTheWorkstationStreamKeepsItsInvariants() async {
        await propertyCheckRecordingErrors(count: 200, input: Generator { rng in NotifierSchedule.random(&rng) }) { schedule in
            var original = NotifierCore()
            var restored: NotifierCore?
            var checker = WorkstationStreamChecker()
            var now = NotifierUniverse.start
            var seq: UInt64 = 0
            for (index, step) in schedule.steps.enumerated() {
                if index == schedule.restoreAt {
                    restored = try JSONDecoder().decode(NotifierCore.self, from: JSONEncoder().encode(original))
                    #expect(restored == original)
                }
                let input: NotifierCore.Input
                switch step {
                case .advance(let milliseconds):
                    now = now + milliseconds
                    continue
                case .tick:
                    input = .tick
                case .event(let seqChange, let body):
                    switch seqChange {
                    case .next: seq += 1
                    case .skip(let count): seq += UInt64(count) + 1
                    case .repeatLast: break
                    }
                    input = .routerEvent(RouterEvent(desk: NotifierUniverse.desk, seq: max(seq, 1), at: now, body: body))
                }
                let effects = original.handle(input, at: now)
                if restored != nil {
                    #expect(restored!.handle(input, at: now) == effects, "step \(index): \(step)")
                }
                checker.check(effects, after: input, at: now, step: index)
            }
        }
    }
}

private enum NotifierUniverse {
    static let desk = try! DeskID("acme")
    static let agents = ["ann", "bob", "cy"].map { try! AgentID($0) }
    static let conversations = (1...4).map { try! ConversationID("c\($0)") }
    static let user = try! UserID("u1")
    static let start = Instant(millisecondsSinceEpoch: 1_764_093_600_000)
}

private enum NotifierStep: Sendable, CustomStringConvertible {
    enum SeqChange: Sendable {
        case next
        case skip(Int)
        case repeatLast
    }

    case advance(Milliseconds)
    case tick
    case event(SeqChange, RouterEventBody)

    var description: String {
        switch self {
        case .advance(let milliseconds): "advance \(milliseconds)"
        case .tick: "tick"
        case .event(let change, let body): "event \(change) \(body)"
        }
    }
}

private struct NotifierSchedule: Sendable {
    var steps: [NotifierStep]
    var restoreAt: Int

    static func random(_ rng: inout some RandomNumberGenerator) -> NotifierSchedule {
        var steps: [NotifierStep] = []
        var offers: [(conversation: ConversationID, agent: AgentID, offer: OfferToken, expiresAt: Instant)] = []
        var now = NotifierUniverse.start
        for index in 0..<Int.random(in: 20...250, using: &rng) {
            let advance = Milliseconds.random(in: 0...2_500, using: &rng)
            now = now + advance
            steps.append(.advance(advance))
            let agent = NotifierUniverse.agents.randomElement(using: &rng)!
            let conversation = NotifierUniverse.conversations.randomElement(using: &rng)!
            let known = offers.randomElement(using: &rng)
            let body: RouterEventBody
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<35:
                steps.append(.tick)
                continue
            case 35..<38:
                var settings = DeskSettings()
                settings.countdownEveryMs = [0, 500, 1_000, 2_500].randomElement(using: &rng)!
                body = .deskConfigured(settings: settings)
            case 38..<43:
                body = .agentChanged(
                    agent: agent, status: AgentStatus.allCases.randomElement(using: &rng)!, capacity: 2, load: 0,
                    groups: [], reason: AgentChangeReason.allCases.randomElement(using: &rng)!)
            case 43..<47:
                body = .conversationQueued(
                    conversation: conversation, user: NotifierUniverse.user, position: 1,
                    reason: QueueReason.allCases.randomElement(using: &rng)!)
            case 47..<62:
                let offer = try! OfferToken("o\(index)")
                let ringMs: Milliseconds = [1_000, 5_000, 30_000].randomElement(using: &rng)!
                offers.append((conversation, agent, offer, now + ringMs))
                body = .offerMade(
                    conversation: conversation, user: NotifierUniverse.user, agent: agent, offer: offer, attempt: 1,
                    expiresAt: now + ringMs, ringMs: ringMs)
            case 62..<70:
                guard let known else { continue }
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: body = .offerExpired(conversation: known.conversation, agent: known.agent, offer: known.offer)
                case 1: body = .offerDeclined(conversation: known.conversation, agent: known.agent, offer: known.offer, reason: nil)
                default:
                    body = .offerWithdrawn(
                        conversation: known.conversation, agent: known.agent, offer: known.offer, reason: .agentOffline)
                }
            case 70..<80:
                let mode = AssignMode.allCases.randomElement(using: &rng)!
                if let known, mode == .accepted {
                    body = .conversationAssigned(
                        conversation: known.conversation, user: NotifierUniverse.user, agent: known.agent,
                        offer: known.offer, mode: mode)
                } else {
                    body = .conversationAssigned(
                        conversation: conversation, user: NotifierUniverse.user, agent: agent, offer: nil, mode: mode)
                }
            case 80..<86:
                body = .conversationEnded(
                    conversation: conversation, agent: Bool.random(using: &rng) ? agent : nil,
                    reason: EndReason.allCases.randomElement(using: &rng)!)
            case 86..<89:
                body = .commandRejected(CommandRejection(
                    command: try! MessageID("cmd-\(index)"), commandType: "offer.accept",
                    agent: Bool.random(using: &rng) ? agent : nil, conversation: conversation, reason: .offerExpired))
            default:
                let rings = offers.filter { $0.agent == agent && Bool.random(using: &rng) }.map {
                    RingSummary(conversation: $0.conversation, user: NotifierUniverse.user, offer: $0.offer, expiresAt: $0.expiresAt)
                }
                body = .agentState(AgentState(agent: agent, status: .online, rings: rings, sessions: []))
            }
            let change: NotifierStep.SeqChange =
                switch Int.random(in: 0..<20, using: &rng) {
                case 0: .repeatLast
                case 1: .skip(Int.random(in: 1...3, using: &rng))
                default: .next
                }
            steps.append(.event(change, body))
        }
        return NotifierSchedule(steps: steps, restoreAt: Int.random(in: 0..<steps.count, using: &rng))
    }
}

/// What a gateway may rely on, checked over the whole stream.
private struct WorkstationStreamChecker {
    var lastSeq: [AgentID: UInt64] = [:]
    /// Rings the agent was told about (by `ring` or `state`) and not told stopped, by offer.
    var toldRings: [String: (agent: AgentID, expiresAt: Instant)] = [:]

    mutating func check(_ effects: [NotifierCore.Effect], after input: NotifierCore.Input, at now: Instant, step: Int) {
        var countedDown: Set<String> = []
        for (position, effect) in effects.enumerated() {
            switch effect {
            case .wakeUp(let at):
                #expect(position == effects.count - 1, "step \(step): wakeUp not last")
                if input == .tick {
                    #expect(at > now, "step \(step): wakeUp \(at) not after the tick at \(now)")
                }
            case .routerGap:
                #expect(input != .tick, "step \(step): gap reported on a tick")
                // Every agent of the desk (one desk here) skips one seq, so its gateway sees a gap too.
                for agent in lastSeq.keys { lastSeq[agent]! += 1 }
            case .publish(let event):
                #expect(event.at == now)
                if case .countdown(_, let offer, let remainingMs) = event.body {
                    #expect(event.seq == lastSeq[event.agent], "step \(step): countdown seq \(event.seq)")
                    #expect(countedDown.insert(offer.rawValue).inserted, "step \(step): two countdowns for \(offer)")
                    guard let ring = toldRings[offer.rawValue] else {
                        Issue.record("step \(step): countdown for \(offer), which is not ringing")
                        continue
                    }
                    #expect(ring.agent == event.agent)
                    #expect(remainingMs == ring.expiresAt - now && remainingMs > 0, "step \(step): remaining \(remainingMs)")
                    continue
                }
                #expect(event.seq == lastSeq[event.agent, default: 0] + 1, "step \(step): seq \(event.seq) for \(event.agent)")
                lastSeq[event.agent] = event.seq
                switch event.body {
                case .ring(_, _, let offer, let expiresAt, _, _):
                    toldRings[offer.rawValue] = (event.agent, expiresAt)
                case .ringStopped(_, let offer, _):
                    toldRings[offer.rawValue] = nil
                case .state(let state):
                    for ring in state.rings {
                        toldRings[ring.offer.rawValue] = (state.agent, ring.expiresAt)
                    }
                case .countdown, .sessionStarted, .sessionEnded, .statusChanged, .commandRejected:
                    break
                }
            }
        }
    }
}
