import Foundation
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

/// The Router's admission check at intake, and how `decode` reads the verdict journaled with the delivery.
@Suite struct RouterAdmissionTests {
    private static let acme = try! DeskID("acme")
    private static let ann = try! AgentID("ann")
    private static let at = Instant(millisecondsSinceEpoch: 1_764_093_600_000)
    private static let admission = RouterAdapter.admission(try! AgentCommandUsers(rules: ["gateway-acme:acme"]))

    private static func delivery(_ body: InboundBody, id: String = "m1", desk: DeskID = acme, user: String?) -> JournalInput {
        let wire = try! WireCodec.outgoing(InboundMessage(id: try! MessageID(id), desk: desk, at: at, body: body))
        let properties = wire.properties
        return JournalInput(
            exchange: wire.exchange.rawValue, routingKey: wire.routingKey, body: wire.body,
            contentType: properties.contentType, messageID: properties.messageID, type: properties.type,
            timestamp: properties.timestamp, deliveryMode: properties.deliveryMode, deskHeader: properties.deskHeader,
            userID: user)
    }

    @Test func agentCommandsNeedAUserAllowedForTheirDesk() throws {
        let sync = InboundBody.agentSync(agent: Self.ann)
        #expect(Self.admission(Self.delivery(sync, user: "gateway-acme")) == nil)
        #expect(
            Self.admission(Self.delivery(sync, desk: try DeskID("zeta"), user: "gateway-acme"))
                == "forbidden: broker user \"gateway-acme\" may not send agent commands for desk \"zeta\"")
        #expect(
            Self.admission(Self.delivery(sync, user: nil))
                == "forbidden: an agent command must carry the broker-validated user_id property")
    }

    @Test func aDeskHeaderTheUserIsNotAllowedForIsRefusedToo() {
        var input = Self.delivery(.agentSync(agent: Self.ann), user: "gateway-acme")
        input.deskHeader = "zeta"
        #expect(
            Self.admission(input)
                == "forbidden: broker user \"gateway-acme\" may not send agent commands for desk \"zeta\"")
    }

    @Test func otherMessagesNeedNoUser() {
        #expect(Self.admission(Self.delivery(.deskConfigure(DeskSettingsPatch()), user: nil)) == nil)
        #expect(Self.admission(Self.delivery(.agentUpsert(AgentProfile(agent: Self.ann, groups: [], capacity: 1)), user: nil)) == nil)
    }

    @Test func aRefusedAgentCommandIsRejectedAndAnsweredForbidden() {
        var input = Self.delivery(.agentSync(agent: Self.ann), id: "x-1", user: "switchboard-ops")
        input.refusal = Self.admission(input)
        guard case .rejected(let reason, let answer) = RouterAdapter.decode(input) else {
            Issue.record("a refused command was decoded as an input")
            return
        }
        #expect(reason == "forbidden: broker user \"switchboard-ops\" may not send agent commands for desk \"acme\"")
        #expect(answer == .rejectedCommand(
            id: try! MessageID("x-1"), desk: Self.acme, agent: Self.ann, type: "agent.sync", conversation: nil,
            reason: .forbidden))
    }

    /// Replay decodes the journaled verdict, whatever the configuration is when it replays.
    @Test func theVerdictTravelsInTheJournalEntryAndOlderEntriesAreAdmitted() throws {
        var input = Self.delivery(.agentSync(agent: Self.ann), user: nil)
        input.refusal = "forbidden: test"
        let entry = JournalEntry(seq: 1, now: Self.at, epoch: "e", content: .input(input))
        let decoded = try JournalEntry.decodeRecord(entry.encoded())
        #expect(decoded == [entry])

        var older = try JSONSerialization.jsonObject(with: Data(entry.encoded())) as! [String: Any]
        var olderInput = older["input"] as! [String: Any]
        olderInput.removeValue(forKey: "refusal")
        older["input"] = olderInput
        let olderEntry = try JournalEntry.decodeRecord(Array(try JSONSerialization.data(withJSONObject: older)))[0]
        guard case .input(let olderDelivery) = olderEntry.content else {
            Issue.record("not an input entry")
            return
        }
        #expect(olderDelivery.refusal == nil)
        guard case .input = RouterAdapter.decode(olderDelivery) else {
            Issue.record("an entry without a verdict was not admitted")
            return
        }
    }
}
