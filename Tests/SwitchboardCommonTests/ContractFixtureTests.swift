import Foundation
import SwitchboardCommon
import Testing

/// Golden files: every message type of PROTOCOL.md as JSON, decoded to the exact expected value and
/// re-encoded to the same JSON object.
@Suite struct ContractFixtureTests {
    @Test(arguments: ContractSamples.inboundFixtures)
    func inboundFixture(_ fixture: Fixture<InboundMessage>) throws {
        let data = try fixture.data()
        let decoded = try WireCodec.decodeInbound(data)
        #expect(decoded == fixture.expected)
        try expectSameJSON(WireCodec.encode(decoded), data)
    }

    @Test(arguments: ContractSamples.routerEventFixtures)
    func routerEventFixture(_ fixture: Fixture<Identified<RouterEvent>>) throws {
        let data = try fixture.data()
        let decoded = try WireCodec.decodeRouterEvent(data)
        #expect(decoded == fixture.expected)
        try expectSameJSON(WireCodec.encode(decoded.message, id: decoded.id), data)
    }

    @Test(arguments: ContractSamples.workstationEventFixtures)
    func workstationEventFixture(_ fixture: Fixture<Identified<WorkstationEvent>>) throws {
        let data = try fixture.data()
        let decoded = try WireCodec.decodeWorkstationEvent(data)
        #expect(decoded == fixture.expected)
        try expectSameJSON(WireCodec.encode(decoded.message, id: decoded.id), data)
    }

    @Test(arguments: ContractSamples.outboundFixtures)
    func outboundFixture(_ fixture: Fixture<Identified<OutboundMessage>>) throws {
        let data = try fixture.data()
        let decoded = try WireCodec.decodeOutbound(data)
        #expect(decoded == fixture.expected)
        try expectSameJSON(WireCodec.encode(decoded.message, id: decoded.id), data)
    }

    @Test func everyMessageTypeHasAFixture() throws {
        let folders = ["inbound": 12, "events": 11, "workstations": 8, "outbound": 2]
        for (folder, count) in folders {
            let url = try #require(Bundle.module.url(forResource: "Fixtures/\(folder)", withExtension: nil))
            let files = try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.hasSuffix(".json") }
            #expect(files.count == count, "\(folder)")
        }
        #expect(ContractSamples.inboundFixtures.count == 12)
        #expect(ContractSamples.routerEventFixtures.count == 11)
        #expect(ContractSamples.workstationEventFixtures.count == 8)
        #expect(ContractSamples.outboundFixtures.count == 2)
    }
}

/// One golden file and the value it must decode to.
struct Fixture<Value: Sendable>: Sendable, CustomTestStringConvertible {
    let path: String
    let expected: Value

    var testDescription: String { path }

    func data() throws -> Data {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(path)", withExtension: nil))
        return try Data(contentsOf: url)
    }
}

/// Compares two JSON documents as parsed values, so key order and whitespace do not matter.
func expectSameJSON(_ actual: Data, _ expected: Data, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let actualValue = try JSONDecoder().decode(JSONValue.self, from: actual)
    let expectedValue = try JSONDecoder().decode(JSONValue.self, from: expected)
    #expect(actualValue == expectedValue, sourceLocation: sourceLocation)
}

/// Typed values for the fixtures, written out in full.
enum ContractSamples {
    static let desk = try! DeskID("acme")
    static let alice = try! AgentID("alice")
    static let bob = try! AgentID("bob")
    static let conversation = try! ConversationID("c-1001")
    static let otherConversation = try! ConversationID("c-1002")
    static let user = try! UserID("u-42")
    static let otherUser = try! UserID("u-43")
    static let billing = try! GroupID("billing")
    static let sales = try! GroupID("sales")
    static let offer = try! OfferToken("of-7f3a-2")
    static let otherOffer = try! OfferToken("of-8a01-1")
    static let at = Instant(rfc3339: "2026-11-25T18:00:00.123Z")!
    static let expiresAt = Instant(rfc3339: "2026-11-25T18:00:20.123Z")!
    static let otherExpiresAt = Instant(rfc3339: "2026-11-25T18:00:25.000Z")!
    static let sentAt = Instant(rfc3339: "2026-11-25T17:59:58.500Z")!

    static func id(_ raw: String) -> MessageID { try! MessageID(raw) }

    static var settings: DeskSettings {
        var settings = DeskSettings()
        settings.ringMs = 20_000
        settings.autoAccept = true
        settings.routing = .leastBusy
        settings.inactivityMs = 600_000
        settings.warningMs = 60_000
        return settings
    }

    static let agentState = AgentState(
        agent: alice, status: .online,
        rings: [RingSummary(conversation: otherConversation, user: otherUser, offer: otherOffer, expiresAt: otherExpiresAt)],
        sessions: [SessionSummary(conversation: conversation, user: user)])

    static let inboundFixtures: [Fixture<InboundMessage>] = [
        inbound(
            "conversation.requested", "in-0001",
            .conversationRequested(
                ConversationRequest(
                    conversation: conversation, user: user, group: billing, priority: 5, preferredAgent: alice,
                    attributes: .object([
                        "channel": .string("web"), "tags": .array([.string("vip"), .string("fr")]),
                        "score": .number(3.5), "nested": .object(["ok": .bool(true), "none": .null]),
                    ])))),
        inbound("conversation.ended", "in-0002", .conversationEnded(conversation: conversation, by: .inactivity)),
        inbound(
            "message.posted", "in-0003",
            .messagePosted(PostedMessage(conversation: conversation, from: .agent, agent: alice, sentAt: sentAt))),
        inbound("agent.status", "in-0004", .agentStatus(agent: alice, status: .break)),
        inbound("offer.accept", "in-0005", .offerAccept(agent: alice, conversation: conversation, offer: offer)),
        inbound(
            "offer.decline", "in-0006",
            .offerDecline(agent: alice, conversation: conversation, offer: offer, reason: "in a call")),
        inbound("session.end", "in-0007", .sessionEnd(agent: alice, conversation: conversation)),
        inbound(
            "session.transfer", "in-0008", .sessionTransfer(agent: alice, conversation: conversation, to: .group(sales))),
        inbound("agent.sync", "in-0009", .agentSync(agent: alice)),
        inbound(
            "desk.configure", "in-0010",
            .deskConfigure(
                DeskSettingsPatch(
                    ringMs: 20_000, autoAccept: true, routing: .leastBusy, inactivityMs: 600_000, warningMs: 60_000))),
        inbound(
            "agent.upsert", "in-0011",
            .agentUpsert(AgentProfile(agent: alice, groups: [billing, sales], capacity: 3, autoAccept: false))),
        inbound("agent.remove", "in-0012", .agentRemove(agent: bob)),
    ]

    static let routerEventFixtures: [Fixture<Identified<RouterEvent>>] = [
        event("desk.configured", 1, .deskConfigured(settings: settings)),
        event(
            "agent.changed", 2,
            .agentChanged(
                agent: alice, status: .online, capacity: 3, load: 1, groups: [billing, sales], reason: .command)),
        event("conversation.queued", 3, .conversationQueued(conversation: conversation, user: user, position: 4, reason: .noAgent)),
        event(
            "offer.made", 4,
            .offerMade(
                conversation: conversation, user: user, agent: alice, offer: offer, attempt: 2, expiresAt: expiresAt,
                ringMs: 20_000)),
        event("offer.expired", 5, .offerExpired(conversation: conversation, agent: alice, offer: offer)),
        event("offer.declined", 6, .offerDeclined(conversation: conversation, agent: alice, offer: offer, reason: "in a call")),
        event(
            "offer.withdrawn", 7,
            .offerWithdrawn(conversation: conversation, agent: alice, offer: offer, reason: .agentOffline)),
        event(
            "conversation.assigned", 8,
            .conversationAssigned(conversation: conversation, user: user, agent: alice, offer: offer, mode: .accepted)),
        event("conversation.ended", 9, .conversationEnded(conversation: conversation, agent: alice, reason: .inactivity)),
        event(
            "command.rejected", 10,
            .commandRejected(
                CommandRejection(
                    command: id("in-0005"), commandType: "offer.accept", agent: alice, conversation: conversation,
                    reason: .offerExpired))),
        event("agent.state", 11, .agentState(agentState)),
    ]

    static let workstationEventFixtures: [Fixture<Identified<WorkstationEvent>>] = [
        workstation(
            "ring", 1,
            .ring(
                conversation: conversation, user: user, offer: offer, expiresAt: expiresAt, remainingMs: 20_000,
                serverTime: at)),
        workstation("countdown", 1, .countdown(conversation: conversation, offer: offer, remainingMs: 19_000)),
        workstation("ring.stopped", 2, .ringStopped(conversation: conversation, offer: offer, reason: .accepted)),
        workstation("session.started", 3, .sessionStarted(conversation: conversation, user: user, mode: .autoAccepted)),
        workstation("session.ended", 4, .sessionEnded(conversation: conversation, reason: .transferred)),
        workstation("status.changed", 5, .statusChanged(status: .break, reason: .missedRings)),
        workstation(
            "command.rejected", 6,
            .commandRejected(
                CommandRejection(
                    command: id("in-0005"), commandType: "offer.accept", agent: alice, conversation: conversation,
                    reason: .offerNotYours))),
        workstation("state", 7, .state(agentState)),
    ]

    static let outboundFixtures: [Fixture<Identified<OutboundMessage>>] = [
        Fixture(
            path: "outbound/closure.message.json",
            expected: Identified(
                id: id("out-closure-c-1001"),
                message: OutboundMessage(
                    desk: desk, at: at,
                    body: .closureMessage(
                        conversation: conversation, user: user, text: DeskSettings.defaults.closureText,
                        idempotencyKey: "closure:c-1001")))),
        Fixture(
            path: "outbound/inactivity.warning.json",
            expected: Identified(
                id: id("out-warning-c-1001"),
                message: OutboundMessage(
                    desk: desk, at: at,
                    body: .inactivityWarning(
                        conversation: conversation, user: user, text: DeskSettings.defaults.warningText,
                        idempotencyKey: "warning:c-1001:2026-11-25T17:59:58.500Z")))),
    ]

    private static func inbound(_ type: String, _ messageID: String, _ body: InboundBody) -> Fixture<InboundMessage> {
        Fixture(path: "inbound/\(type).json", expected: InboundMessage(id: id(messageID), desk: desk, at: at, body: body))
    }

    private static func event(_ type: String, _ seq: UInt64, _ body: RouterEventBody) -> Fixture<Identified<RouterEvent>> {
        Fixture(
            path: "events/\(type).json",
            expected: Identified(id: id("ev-acme-\(seq)"), message: RouterEvent(desk: desk, seq: seq, at: at, body: body)))
    }

    private static func workstation(_ type: String, _ seq: UInt64, _ body: WorkstationEventBody)
        -> Fixture<Identified<WorkstationEvent>>
    {
        Fixture(
            path: "workstations/\(type).json",
            expected: Identified(
                id: id("ws-acme-alice-\(seq)"),
                message: WorkstationEvent(desk: desk, agent: alice, seq: seq, at: at, body: body)))
    }
}
