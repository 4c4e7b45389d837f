import Foundation
import PropertyBased
import SwitchboardCommon
import SwitchboardTestSupport
import Testing

/// Round trips over generated values: whatever valid message we build, the wire form gives it back unchanged.
@Suite struct ContractPropertyTests {
    static let identifierAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

    static let identifierCharacter = Gen<Character?>.element(of: identifierAlphabet).map { $0! }
    static let validIdentifier = identifierCharacter.string(of: 1...64)

    @Test func validIdentifiersAreAcceptedAndRoundTrip() async {
        await propertyCheckRecordingErrors(count: 300, input: Self.validIdentifier) { raw in
            let agent = try AgentID(raw)
            #expect(agent.rawValue == raw)
            let data = try JSONEncoder().encode(agent)
            #expect(try JSONDecoder().decode(AgentID.self, from: data) == agent)
        }
    }

    @Test func identifiersWithAnyOtherCharacterAreRejected() async {
        let outsider = Gen<Character>.character(in: " "..."~").filter { !Self.identifierAlphabet.contains($0) }
        await propertyCheck(count: 300, input: Self.validIdentifier, outsider, Gen.int(in: 0...64)) { raw, bad, offset in
            var characters = Array(raw)
            characters.insert(bad, at: min(offset, characters.count))
            #expect(throws: ContractError(field: "conversation", problem: "must match [A-Za-z0-9_-]{1,64}")) {
                try ConversationID(String(characters))
            }
        }
    }

    @Test func identifiersLongerThan64AreRejected() async {
        let tooLong = Self.identifierCharacter.string(of: 65...200)
        await propertyCheck(count: 100, input: tooLong) { raw in
            #expect(throws: ContractError.self) { try GroupID(raw) }
        }
    }

    @Test func inboundMessagesRoundTrip() async {
        await propertyCheckRecordingErrors(count: 500, input: Generator { rng in Arbitrary.inbound(&rng) }) { message in
            let data = try WireCodec.encode(message)
            #expect(try WireCodec.decodeInbound(data) == message)
            #expect(try WireCodec.decodeSnapshot(InboundMessage.self, from: WireCodec.encodeSnapshot(message)) == message)
        }
    }

    @Test func routerEventsRoundTrip() async {
        await propertyCheckRecordingErrors(count: 500, input: Generator { rng in Arbitrary.routerEvent(&rng) }) { event in
            let data = try WireCodec.encode(event.message, id: event.id)
            #expect(try WireCodec.decodeRouterEvent(data) == event)
            #expect(try WireCodec.decodeSnapshot(RouterEvent.self, from: WireCodec.encodeSnapshot(event.message)) == event.message)
        }
    }

    @Test func workstationEventsRoundTrip() async {
        await propertyCheckRecordingErrors(count: 500, input: Generator { rng in Arbitrary.workstationEvent(&rng) }) { event in
            let data = try WireCodec.encode(event.message, id: event.id)
            #expect(try WireCodec.decodeWorkstationEvent(data) == event)
        }
    }

    @Test func outboundMessagesRoundTrip() async {
        await propertyCheckRecordingErrors(count: 300, input: Generator { rng in Arbitrary.outbound(&rng) }) { message in
            let data = try WireCodec.encode(message.message, id: message.id)
            #expect(try WireCodec.decodeOutbound(data) == message)
        }
    }

    /// Bad input is data: damaged bytes decode or fail with a `ContractError`, never anything else.
    @Test func damagedBodiesFailCleanly() async {
        let bodies = ContractSamples.inboundFixtures.map { try! $0.data() }
        let damage = zip(Gen.int(in: 0..<bodies.count), Gen.int(in: 0...10_000).array(of: 1...4), Gen.uint8())
        await propertyCheck(count: 500, input: damage) { choice, positions, byte in
            var data = bodies[choice]
            for position in positions { data[data.startIndex + position % data.count] = byte }
            do throws(ContractError) {
                _ = try WireCodec.decodeInbound(data)
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }
}

/// Valid contract values built from a seeded random source.
enum Arbitrary {
    static func identifier<Kind>(_ rng: inout some RandomNumberGenerator) -> Identifier<Kind> {
        let length = Int.random(in: 1...64, using: &rng)
        let raw = String((0..<length).map { _ in ContractPropertyTests.identifierAlphabet.randomElement(using: &rng)! })
        return try! Identifier(raw)
    }

    static func messageID(_ rng: inout some RandomNumberGenerator) -> MessageID {
        let length = Int.random(in: 1...128, using: &rng)
        let raw = String((0..<length).map { _ in Character(UnicodeScalar(UInt8.random(in: 0x21...0x7E, using: &rng))) })
        return try! MessageID(raw)
    }

    static func offer(_ rng: inout some RandomNumberGenerator) -> OfferToken {
        try! OfferToken(messageID(&rng).rawValue)
    }

    static func instant(_ rng: inout some RandomNumberGenerator) -> Instant {
        // Years 1970 to 9999: RFC 3339 has four-digit years.
        Instant(millisecondsSinceEpoch: Int64.random(in: 0...253_402_300_799_999, using: &rng))
    }

    /// Any text, including characters JSON must escape.
    static func text(_ rng: inout some RandomNumberGenerator, maxLength: Int = 40) -> String {
        let pieces: [String] = ["a", "Z", "7", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "é", "ß", "中", "😀", "\u{2028}"]
        let length = Int.random(in: 1...maxLength, using: &rng)
        return (0..<length).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    static func optional<Source: RandomNumberGenerator, Value>(_ rng: inout Source, _ make: (inout Source) -> Value)
        -> Value?
    {
        Bool.random(using: &rng) ? make(&rng) : nil
    }

    static func count(_ rng: inout some RandomNumberGenerator) -> Int { Int.random(in: 0...Int(Int32.max), using: &rng) }

    static func duration(_ rng: inout some RandomNumberGenerator, from lower: Milliseconds = 0) -> Milliseconds {
        Milliseconds.random(in: lower...365 * 24 * 3_600_000, using: &rng)
    }

    static func json(_ rng: inout some RandomNumberGenerator, depth: Int) -> JSONValue {
        let choice = Int.random(in: 0..<(depth > 0 ? 7 : 5), using: &rng)
        switch choice {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .number(Double(Int32.random(in: .min ... .max, using: &rng)))
        case 3: return .number(Double.random(in: -1e9...1e9, using: &rng))
        case 4: return .string(text(&rng))
        case 5: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in json(&rng, depth: depth - 1) })
        default: return attributes(&rng, depth: depth - 1)
        }
    }

    static func attributes(_ rng: inout some RandomNumberGenerator, depth: Int = 3) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for _ in 0..<Int.random(in: 0...4, using: &rng) { object[text(&rng, maxLength: 8)] = json(&rng, depth: depth) }
        return .object(object)
    }

    static func settings(_ rng: inout some RandomNumberGenerator) -> DeskSettings {
        var settings = DeskSettings()
        settings.ringMs = duration(&rng, from: 1)
        settings.countdownEveryMs = duration(&rng)
        settings.autoAccept = Bool.random(using: &rng)
        settings.maxOfferAttempts = Int.random(in: 1...1_000, using: &rng)
        settings.missesBeforeBreak = Int.random(in: 1...1_000, using: &rng)
        settings.routing = RoutingPolicy.allCases.randomElement(using: &rng)!
        settings.inactivityMs = duration(&rng)
        settings.closureText = text(&rng)
        settings.warningMs = settings.inactivityMs > 0 ? Milliseconds.random(in: 0..<settings.inactivityMs, using: &rng) : duration(&rng)
        settings.warningText = text(&rng)
        return settings
    }

    static func patch(_ rng: inout some RandomNumberGenerator) -> DeskSettingsPatch {
        let full = settings(&rng)
        func maybe<Value>(_ value: Value) -> Value? { Bool.random(using: &rng) ? value : nil }
        return DeskSettingsPatch(
            ringMs: maybe(full.ringMs), countdownEveryMs: maybe(full.countdownEveryMs), autoAccept: maybe(full.autoAccept),
            maxOfferAttempts: maybe(full.maxOfferAttempts), missesBeforeBreak: maybe(full.missesBeforeBreak),
            routing: maybe(full.routing), inactivityMs: maybe(full.inactivityMs), closureText: maybe(full.closureText),
            warningMs: maybe(full.warningMs), warningText: maybe(full.warningText))
    }

    static func rejection(_ rng: inout some RandomNumberGenerator, agent fixedAgent: AgentID?? = .none) -> CommandRejection {
        let agent: AgentID? = fixedAgent ?? optional(&rng) { identifier(&$0) }
        return CommandRejection(
            command: messageID(&rng), commandType: text(&rng), agent: agent,
            conversation: optional(&rng) { identifier(&$0) }, reason: RejectionReason.allCases.randomElement(using: &rng)!)
    }

    static func agentState(_ rng: inout some RandomNumberGenerator, agent: AgentID) -> AgentState {
        AgentState(
            agent: agent, status: AgentStatus.allCases.randomElement(using: &rng)!,
            rings: (0..<Int.random(in: 0...3, using: &rng)).map { _ in
                RingSummary(conversation: identifier(&rng), user: identifier(&rng), offer: offer(&rng), expiresAt: instant(&rng))
            },
            sessions: (0..<Int.random(in: 0...3, using: &rng)).map { _ in
                SessionSummary(conversation: identifier(&rng), user: identifier(&rng))
            })
    }

    static func inbound(_ rng: inout some RandomNumberGenerator) -> InboundMessage {
        let body: InboundBody =
            switch Int.random(in: 0..<12, using: &rng) {
            case 0:
                .conversationRequested(
                    ConversationRequest(
                        conversation: identifier(&rng), user: identifier(&rng), group: optional(&rng) { identifier(&$0) },
                        priority: Int(Int32.random(in: .min ... .max, using: &rng)),
                        preferredAgent: optional(&rng) { identifier(&$0) }, attributes: optional(&rng) { attributes(&$0) }))
            case 1: .conversationEnded(conversation: identifier(&rng), by: EndedBy.allCases.randomElement(using: &rng)!)
            case 2:
                .messagePosted(
                    PostedMessage(
                        conversation: identifier(&rng), from: MessageAuthor.allCases.randomElement(using: &rng)!,
                        agent: optional(&rng) { identifier(&$0) }, sentAt: instant(&rng)))
            case 3: .agentStatus(agent: identifier(&rng), status: AgentStatus.allCases.randomElement(using: &rng)!)
            case 4: .offerAccept(agent: identifier(&rng), conversation: identifier(&rng), offer: offer(&rng))
            case 5:
                .offerDecline(
                    agent: identifier(&rng), conversation: identifier(&rng), offer: offer(&rng),
                    reason: optional(&rng) { text(&$0) })
            case 6: .sessionEnd(agent: identifier(&rng), conversation: identifier(&rng))
            case 7:
                .sessionTransfer(
                    agent: identifier(&rng), conversation: identifier(&rng),
                    to: [nil, .agent(identifier(&rng)), .group(identifier(&rng))].randomElement(using: &rng)!)
            case 8: .agentSync(agent: identifier(&rng))
            case 9: .deskConfigure(patch(&rng))
            case 10:
                .agentUpsert(
                    AgentProfile(
                        agent: identifier(&rng), groups: (0..<Int.random(in: 0...5, using: &rng)).map { _ in identifier(&rng) },
                        capacity: Int.random(in: 1...1_000, using: &rng), autoAccept: [nil, true, false].randomElement(using: &rng)!))
            default: .agentRemove(agent: identifier(&rng))
            }
        return InboundMessage(id: messageID(&rng), desk: identifier(&rng), at: instant(&rng), body: body)
    }

    static func routerEvent(_ rng: inout some RandomNumberGenerator) -> Identified<RouterEvent> {
        let body: RouterEventBody =
            switch Int.random(in: 0..<11, using: &rng) {
            case 0: .deskConfigured(settings: settings(&rng))
            case 1:
                .agentChanged(
                    agent: identifier(&rng), status: AgentStatus.allCases.randomElement(using: &rng)!, capacity: count(&rng),
                    load: count(&rng), groups: (0..<Int.random(in: 0...5, using: &rng)).map { _ in identifier(&rng) },
                    reason: AgentChangeReason.allCases.randomElement(using: &rng)!)
            case 2:
                .conversationQueued(
                    conversation: identifier(&rng), user: identifier(&rng), position: count(&rng),
                    reason: QueueReason.allCases.randomElement(using: &rng)!)
            case 3:
                .offerMade(
                    conversation: identifier(&rng), user: identifier(&rng), agent: identifier(&rng), offer: offer(&rng),
                    attempt: count(&rng), expiresAt: instant(&rng), ringMs: duration(&rng, from: 1))
            case 4: .offerExpired(conversation: identifier(&rng), agent: identifier(&rng), offer: offer(&rng))
            case 5:
                .offerDeclined(
                    conversation: identifier(&rng), agent: identifier(&rng), offer: offer(&rng), reason: optional(&rng) { text(&$0) })
            case 6:
                .offerWithdrawn(
                    conversation: identifier(&rng), agent: identifier(&rng), offer: offer(&rng),
                    reason: WithdrawReason.allCases.randomElement(using: &rng)!)
            case 7:
                .conversationAssigned(
                    conversation: identifier(&rng), user: identifier(&rng), agent: identifier(&rng),
                    offer: optional(&rng) { offer(&$0) }, mode: AssignMode.allCases.randomElement(using: &rng)!)
            case 8:
                .conversationEnded(
                    conversation: identifier(&rng), agent: optional(&rng) { identifier(&$0) },
                    reason: EndReason.allCases.randomElement(using: &rng)!)
            case 9: .commandRejected(rejection(&rng))
            default: .agentState(agentState(&rng, agent: identifier(&rng)))
            }
        return Identified(
            id: messageID(&rng),
            message: RouterEvent(desk: identifier(&rng), seq: UInt64.random(in: .min ... .max, using: &rng), at: instant(&rng), body: body))
    }

    /// The body's own `agent` in `command.rejected` and `state` is the workstation's agent (see `WorkstationEvent`).
    static func workstationEvent(_ rng: inout some RandomNumberGenerator) -> Identified<WorkstationEvent> {
        let agent: AgentID = identifier(&rng)
        let body: WorkstationEventBody =
            switch Int.random(in: 0..<8, using: &rng) {
            case 0:
                .ring(
                    conversation: identifier(&rng), user: identifier(&rng), offer: offer(&rng), expiresAt: instant(&rng),
                    remainingMs: duration(&rng), serverTime: instant(&rng))
            case 1: .countdown(conversation: identifier(&rng), offer: offer(&rng), remainingMs: duration(&rng))
            case 2:
                .ringStopped(conversation: identifier(&rng), offer: offer(&rng), reason: RingStopReason.allCases.randomElement(using: &rng)!)
            case 3:
                .sessionStarted(conversation: identifier(&rng), user: identifier(&rng), mode: AssignMode.allCases.randomElement(using: &rng)!)
            case 4: .sessionEnded(conversation: identifier(&rng), reason: SessionEndReason.allCases.randomElement(using: &rng)!)
            case 5:
                .statusChanged(
                    status: AgentStatus.allCases.randomElement(using: &rng)!, reason: AgentChangeReason.allCases.randomElement(using: &rng)!)
            case 6: .commandRejected(rejection(&rng, agent: .some(agent)))
            default: .state(agentState(&rng, agent: agent))
            }
        return Identified(
            id: messageID(&rng),
            message: WorkstationEvent(
                desk: identifier(&rng), agent: agent, seq: UInt64.random(in: .min ... .max, using: &rng), at: instant(&rng), body: body))
    }

    static func outbound(_ rng: inout some RandomNumberGenerator) -> Identified<OutboundMessage> {
        let conversation: ConversationID = identifier(&rng)
        let user: UserID = identifier(&rng)
        let body: OutboundBody =
            Bool.random(using: &rng)
            ? .closureMessage(conversation: conversation, user: user, text: text(&rng, maxLength: 2_000), idempotencyKey: text(&rng))
            : .inactivityWarning(conversation: conversation, user: user, text: text(&rng, maxLength: 2_000), idempotencyKey: text(&rng))
        return Identified(id: messageID(&rng), message: OutboundMessage(desk: identifier(&rng), at: instant(&rng), body: body))
    }
}
