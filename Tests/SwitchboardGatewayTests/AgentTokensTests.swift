import Foundation
import SwitchboardCommon
import SwitchboardGateway
import Testing

@Suite struct AgentTokensTests {
    private let file = """
        {"agents":[
          {"token":"alice-token-0123456789","desk":"acme","agent":"alice","name":"Alice Smith"},
          {"token":"bob-token-0123456789ab","desk":"acme","agent":"bob"}
        ]}
        """

    @Test func aKnownTokenSignsItsAgentIn() throws {
        let tokens = try AgentTokens(json: Data(file.utf8))
        let alice = try #require(tokens.identity(forToken: "alice-token-0123456789"))
        #expect(alice.desk.rawValue == "acme")
        #expect(alice.agent.rawValue == "alice")
        #expect(alice.name == "Alice Smith")
        #expect(alice.routingKey == "acme.alice")
        #expect(tokens.identity(forToken: "bob-token-0123456789ab")?.name == "bob")
    }

    @Test func unknownPrefixesAndExtensionsOfATokenSignNoOneIn() throws {
        let tokens = try AgentTokens(json: Data(file.utf8))
        #expect(tokens.identity(forToken: "") == nil)
        #expect(tokens.identity(forToken: "alice-token-012345678") == nil)
        #expect(tokens.identity(forToken: "alice-token-01234567890") == nil)
        #expect(tokens.identity(forToken: "Alice-token-0123456789") == nil)
    }

    @Test func aFileWithAnInvalidAgentOrADuplicateOrShortTokenIsRefused() {
        #expect(throws: TokenFileError.self) {
            try AgentTokens(json: Data(#"{"agents":[{"token":"0123456789abcdefgh","desk":"acme","agent":"a b"}]}"#.utf8))
        }
        #expect(throws: TokenFileError.self) {
            try AgentTokens(json: Data(#"{"agents":[{"token":"short","desk":"acme","agent":"alice"}]}"#.utf8))
        }
        #expect(throws: TokenFileError.self) {
            try AgentTokens(json: Data(
                #"{"agents":[{"token":"0123456789abcdefgh","desk":"acme","agent":"a"},{"token":"0123456789abcdefgh","desk":"acme","agent":"b"}]}"#
                    .utf8))
        }
        #expect(throws: TokenFileError.self) { try AgentTokens(json: Data("[]".utf8)) }
    }
}

@Suite struct CommandRateTests {
    @Test func aBurstGoesThenTheRateThenNoMoreThanTheBurstAfterAPause() {
        let start = ContinuousClock.now
        var rate = CommandRate(burst: 3, perSecond: 10, now: start)
        let burst = (0..<4).map { _ in rate.take(at: start) }
        #expect(burst == [true, true, true, false])
        // A tenth of a second gives one more.
        let afterATenth = [rate.take(at: start + .milliseconds(100)), rate.take(at: start + .milliseconds(100))]
        #expect(afterATenth == [true, false])
        // A long pause gives the burst back, no more.
        let later = start + .seconds(60)
        let afterAPause = (0..<4).map { _ in rate.take(at: later) }
        #expect(afterAPause == [true, true, true, false])
    }
}

@Suite struct ColleaguesTests {
    @Test func colleaguesAreTheDesksOtherAgentsByNameOnceEach() throws {
        let tokens = try AgentTokens(json: Data(
            #"""
            {"agents":[
              {"token":"0123456789abcdef-1","desk":"acme","agent":"zoe","name":"Zoe"},
              {"token":"0123456789abcdef-2","desk":"acme","agent":"alice","name":"Alice"},
              {"token":"0123456789abcdef-3","desk":"acme","agent":"bob"},
              {"token":"0123456789abcdef-4","desk":"other","agent":"carl","name":"Carl"},
              {"token":"0123456789abcdef-5","desk":"acme","agent":"zoe","name":"Zoe"},
              {"token":"0123456789abcdef-6","desk":"acme","agent":"alice","name":"Alice"}
            ]}
            """#.utf8))
        let alice = try #require(tokens.identity(forToken: "0123456789abcdef-2"))
        #expect(tokens.colleagues(of: alice).map(\.agent.rawValue) == ["bob", "zoe"])
        #expect(tokens.colleagues(of: alice).map(\.name) == ["bob", "Zoe"])
    }
}

@Suite struct PageCommandTests {
    private let alice = AgentIdentity(desk: try! DeskID("acme"), agent: try! AgentID("alice"), name: "Alice")

    @Test func theAgentAndDeskComeFromTheSessionNotFromThePage() throws {
        let command = try PageCommand.parse(
            #"{"type":"offer.accept","conversation":"c-1","offer":"of-1","agent":"mallory","desk":"other"}"#)
        let message = command.inboundMessage(
            for: alice, id: try MessageID("m-1"), at: Instant(millisecondsSinceEpoch: 0))
        #expect(message.desk.rawValue == "acme")
        #expect(
            message.body == .offerAccept(agent: try AgentID("alice"), conversation: try ConversationID("c-1"), offer: try OfferToken("of-1")))
    }

    @Test func everyPageCommandParses() throws {
        #expect(try PageCommand.parse(#"{"type":"agent.sync"}"#) == .sync)
        #expect(try PageCommand.parse(#"{"type":"agent.status","status":"break"}"#) == .status(.break))
        #expect(try PageCommand.parse(#"{"type":"session.end","conversation":"c-9"}"#) == .endSession(conversation: try ConversationID("c-9")))
        #expect(
            try PageCommand.parse(#"{"type":"offer.decline","conversation":"c-9","offer":"o"}"#)
                == .decline(conversation: try ConversationID("c-9"), offer: try OfferToken("o"), reason: nil))
        let conversation = try ConversationID("c-9")
        #expect(
            try PageCommand.parse(#"{"type":"session.transfer","conversation":"c-9","toAgent":"bob"}"#)
                == .transfer(conversation: conversation, to: .agent(try AgentID("bob"))))
        #expect(
            try PageCommand.parse(#"{"type":"session.transfer","conversation":"c-9","toGroup":"billing","toAgent":null}"#)
                == .transfer(conversation: conversation, to: .group(try GroupID("billing"))))
        #expect(
            try PageCommand.parse(#"{"type":"session.transfer","conversation":"c-9"}"#)
                == .transfer(conversation: conversation, to: nil))
    }

    @Test func aTransferIsPublishedAsTheSignedInAgentsSessionTransfer() throws {
        let command = try PageCommand.parse(#"{"type":"session.transfer","conversation":"c-1","toGroup":"billing"}"#)
        let message = command.inboundMessage(
            for: alice, id: try MessageID("m-1"), at: Instant(millisecondsSinceEpoch: 0))
        #expect(
            message.body
                == .sessionTransfer(agent: try AgentID("alice"), conversation: try ConversationID("c-1"), to: .group(try GroupID("billing"))))
        #expect(message.body.type == "session.transfer")
    }

    @Test(arguments: [
        ("not json", "not a JSON object"),
        ("[1]", "not a JSON object"),
        (#"{"conversation":"c"}"#, "the field type is missing"),
        (#"{"type":"agent.upsert"}"#, "unknown type \"agent.upsert\""),
        (#"{"type":"offer.accept","offer":"o"}"#, "the field conversation is missing"),
        (#"{"type":"offer.accept","conversation":"c d","offer":"o"}"#, "the field conversation must be"),
        (#"{"type":"session.end","conversation":7}"#, "the field conversation must be a string"),
        (#"{"type":"agent.status","status":"away"}"#, "status \"away\" is not one of"),
        (#"{"type":"session.transfer","conversation":"c","toAgent":"b","toGroup":"g"}"#, "toAgent or toGroup, not both"),
        (#"{"type":"session.transfer","conversation":"c","toAgent":"bob smith"}"#, "the field toAgent must be 1 to 64"),
        (#"{"type":"session.transfer","conversation":"c","toGroup":""}"#, "the field toGroup must be 1 to 64"),
        (#"{"type":"session.transfer","conversation":"c","toGroup":5}"#, "the field toGroup must be a string"),
    ])
    func badInputIsRefusedWithAClearMessage(input: String, message: String) {
        #expect {
            try PageCommand.parse(input)
        } throws: { error in
            (error as? PageCommandError)?.message.contains(message) == true
        }
    }
}
