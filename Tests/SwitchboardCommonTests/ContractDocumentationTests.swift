import Foundation
import SwitchboardCommon
import Testing

/// `docs/asyncapi.yaml` documents the public contract: it must name every message type and list
/// every enum exactly as the code decodes it, so a new case cannot go undocumented.
@Suite struct ContractDocumentationTests {
    static func document() throws -> String {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return try String(contentsOf: repository.appendingPathComponent("docs/asyncapi.yaml"), encoding: .utf8)
    }

    static func flowList<Value: ContractEnum>(_ type: Value.Type) -> String {
        "enum: [" + Value.allCases.map(\.rawValue).joined(separator: ", ") + "]"
    }

    @Test func everyMessageTypeIsDocumented() throws {
        let document = try Self.document()
        let types =
            ContractSamples.inboundFixtures.map(\.expected.body.type)
            + ContractSamples.routerEventFixtures.map(\.expected.message.body.type)
            + ContractSamples.workstationEventFixtures.map(\.expected.message.body.type)
            + ContractSamples.outboundFixtures.map(\.expected.message.body.type)
        #expect(types.count == 33)
        for type in types {
            #expect(document.contains("name: \(type)\n"), "\(type)")
        }
    }

    @Test func everyEnumIsDocumentedWithAllItsValues() throws {
        let document = try Self.document()
        let lists = [
            Self.flowList(AgentStatus.self), Self.flowList(EndedBy.self), Self.flowList(MessageAuthor.self),
            Self.flowList(AgentChangeReason.self), Self.flowList(QueueReason.self), Self.flowList(WithdrawReason.self),
            Self.flowList(AssignMode.self), Self.flowList(EndReason.self), Self.flowList(RejectionReason.self),
            Self.flowList(RingStopReason.self), Self.flowList(SessionEndReason.self), Self.flowList(RoutingPolicy.self),
        ]
        for list in lists {
            #expect(document.contains(list), "\(list)")
        }
    }

    @Test func limitsMatchTheCode() throws {
        let document = try Self.document()
        #expect(document.contains("at most \(WireCodec.maxBodyBytes) bytes"))
        #expect(document.contains("nested at most \(JSONValue.maxAttributeDepth) levels deep"))
        #expect(document.contains("v: {type: integer, const: \(WireCodec.contractVersion)}"))
    }
}
