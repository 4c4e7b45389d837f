import Foundation
import SwitchboardCommon
import Testing

/// Each contract rule, with the exact error a sender gets when breaking it.
@Suite struct ContractValidationTests {
    /// An inbound body: the envelope, then `fields` (a JSON object's members, without braces).
    static func body(_ type: String, _ fields: String, envelope: String = #""v":1,"id":"m-1","desk":"acme","at":"2026-11-25T18:00:00.123Z""#) -> Data {
        Data(#"{\#(envelope),"type":"\#(type)",\#(fields)}"#.utf8)
    }

    /// The error description decoding `data` produces, or nil when it decodes.
    static func rejection(_ data: Data) -> String? {
        do {
            _ = try WireCodec.decodeInbound(data)
            return nil
        } catch {
            return error.description
        }
    }

    static func rejection(_ type: String, _ fields: String) -> String? {
        rejection(body(type, fields))
    }

    static func decoded(_ type: String, _ fields: String) throws -> InboundBody {
        try WireCodec.decodeInbound(body(type, fields)).body
    }

    // MARK: Identifiers

    @Test func identifierWithAForbiddenCharacterIsRejected() {
        #expect(
            Self.rejection("offer.accept", #""agent":"al ice","conversation":"c-1","offer":"o-1""#)
                == "offer.accept: field agent: must match [A-Za-z0-9_-]{1,64}")
    }

    @Test func identifierLongerThan64CharactersIsRejected() {
        let long = String(repeating: "a", count: 65)
        #expect(
            Self.rejection("agent.sync", #""agent":"\#(long)""#)
                == "agent.sync: field agent: must match [A-Za-z0-9_-]{1,64}")
        #expect(Self.rejection("agent.sync", #""agent":"\#(String(repeating: "a", count: 64))""#) == nil)
    }

    @Test func emptyIdentifierIsRejected() {
        #expect(
            Self.rejection("session.end", #""agent":"alice","conversation":"""#)
                == "session.end: field conversation: must match [A-Za-z0-9_-]{1,64}")
    }

    @Test func invalidDeskIsRejected() {
        let data = Self.body(
            "agent.sync", #""agent":"alice""#, envelope: #""v":1,"id":"m-1","desk":"ac/me","at":"2026-11-25T18:00:00.123Z""#)
        #expect(Self.rejection(data) == "agent.sync: field desk: must match [A-Za-z0-9_-]{1,64}")
    }

    @Test func invalidGroupInAnArrayNamesItsIndex() {
        #expect(
            Self.rejection("agent.upsert", #""agent":"alice","groups":["billing","sa les"],"capacity":2"#)
                == "agent.upsert: field groups[1]: must match [A-Za-z0-9_-]{1,64}")
    }

    @Test func messageIDMustBePrintableASCII() {
        let data = Self.body(
            "agent.sync", #""agent":"alice""#, envelope: #""v":1,"id":"m 1","desk":"acme","at":"2026-11-25T18:00:00.123Z""#)
        #expect(Self.rejection(data) == "agent.sync: field id: must be 1 to 128 printable ASCII characters")
    }

    @Test func identifierOfTheWrongJSONTypeIsRejected() {
        #expect(Self.rejection("agent.sync", #""agent":42"#) == "agent.sync: field agent: must be a string")
    }

    // MARK: Required fields and types

    @Test func missingFieldIsRequired() {
        #expect(
            Self.rejection("offer.accept", #""agent":"alice","offer":"o-1""#)
                == "offer.accept: field conversation: is required")
    }

    @Test func nullRequiredFieldIsRequired() {
        #expect(
            Self.rejection("offer.accept", #""agent":"alice","conversation":null,"offer":"o-1""#)
                == "offer.accept: field conversation: is required")
    }

    @Test func missingEnvelopeFieldIsRequired() {
        let data = Self.body("agent.sync", #""agent":"alice""#, envelope: #""v":1,"id":"m-1","at":"2026-11-25T18:00:00.123Z""#)
        #expect(Self.rejection(data) == "agent.sync: field desk: is required")
    }

    @Test func nullOptionalFieldsReadAsAbsent() throws {
        let body = try Self.decoded(
            "conversation.requested",
            #""conversation":"c-1","user":"u-1","group":null,"priority":null,"preferredAgent":null,"attributes":null"#)
        #expect(
            body
                == .conversationRequested(
                    ConversationRequest(conversation: try ConversationID("c-1"), user: try UserID("u-1"))))
    }

    @Test func nullAutoAcceptMeansTheDeskDefault() throws {
        let body = try Self.decoded("agent.upsert", #""agent":"alice","groups":[],"capacity":2,"autoAccept":null"#)
        #expect(body == .agentUpsert(AgentProfile(agent: try AgentID("alice"), groups: [], capacity: 2, autoAccept: nil)))
    }

    @Test func unknownFieldsAreIgnored() throws {
        let body = try Self.decoded("agent.sync", #""agent":"alice","colour":"blue","extra":{"deep":[1,2]}"#)
        #expect(body == .agentSync(agent: try AgentID("alice")))
    }

    @Test func unknownTypeIsRejected() {
        #expect(Self.rejection("x.y", #""agent":"alice""#) == #"unknown message type "x.y""#)
    }

    @Test func typeMustBeAString() {
        let data = Data(#"{"v":1,"type":7,"id":"m-1","desk":"acme","at":"2026-11-25T18:00:00.123Z"}"#.utf8)
        #expect(Self.rejection(data) == "field type: must be a string")
    }

    @Test func enumValueOutsideTheContractIsRejected() {
        #expect(
            Self.rejection("agent.status", #""agent":"alice","status":"away""#)
                == "agent.status: field status: must be one of online, break, offline")
        #expect(
            Self.rejection("conversation.ended", #""conversation":"c-1","by":"agent""#)
                == "conversation.ended: field by: must be one of user, admin, inactivity")
    }

    @Test func booleanOfTheWrongTypeIsRejected() {
        #expect(
            Self.rejection("agent.upsert", #""agent":"alice","groups":[],"capacity":2,"autoAccept":"yes""#)
                == "agent.upsert: field autoAccept: must be a boolean")
    }

    @Test func groupsMustBeAnArray() {
        #expect(
            Self.rejection("agent.upsert", #""agent":"alice","groups":"billing","capacity":2"#)
                == "agent.upsert: field groups: must be an array")
    }

    // MARK: Times

    @Test func timeMustBeRFC3339WithMilliseconds() {
        let data = Self.body("agent.sync", #""agent":"alice""#, envelope: #""v":1,"id":"m-1","desk":"acme","at":"2026-11-25 18:00""#)
        #expect(
            Self.rejection(data)
                == "agent.sync: field at: must be an RFC 3339 UTC time with milliseconds, e.g. 2026-11-25T18:00:00.123Z")
        #expect(
            Self.rejection("message.posted", #""conversation":"c-1","from":"user","sentAt":"2026-13-01T00:00:00.000Z""#)
                == "message.posted: field sentAt: must be an RFC 3339 UTC time with milliseconds, e.g. 2026-11-25T18:00:00.123Z")
    }

    // MARK: Integers

    @Test func capacityMustBeAtLeastOne() {
        #expect(
            Self.rejection("agent.upsert", #""agent":"alice","groups":[],"capacity":0"#)
                == "agent.upsert: field capacity: must be an integer >= 1")
    }

    @Test func capacityMustBeAtMostOneThousand() {
        #expect(
            Self.rejection("agent.upsert", #""agent":"alice","groups":[],"capacity":1001"#)
                == "agent.upsert: field capacity: must be an integer <= 1000")
        #expect(Self.rejection("agent.upsert", #""agent":"alice","groups":[],"capacity":1000"#) == nil)
    }

    @Test func capacityMustBeAnInteger() {
        #expect(
            Self.rejection("agent.upsert", #""agent":"alice","groups":[],"capacity":2.5"#)
                == "agent.upsert: field capacity: must be an integer")
        #expect(
            Self.rejection("agent.upsert", #""agent":"alice","groups":[],"capacity":true"#)
                == "agent.upsert: field capacity: must be an integer")
    }

    @Test func priorityMustBeAnInteger() {
        #expect(
            Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","priority":"high""#)
                == "conversation.requested: field priority: must be an integer")
        #expect(
            Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","priority":1.5"#)
                == "conversation.requested: field priority: must be an integer")
    }

    @Test func priorityMustFitIn32Bits() throws {
        #expect(
            Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","priority":2147483648"#)
                == "conversation.requested: field priority: must be an integer <= 2147483647")
        #expect(
            Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","priority":-2147483649"#)
                == "conversation.requested: field priority: must be an integer >= -2147483648")
        let body = try Self.decoded("conversation.requested", #""conversation":"c-1","user":"u-1","priority":-2147483648"#)
        #expect(
            body
                == .conversationRequested(
                    ConversationRequest(conversation: try ConversationID("c-1"), user: try UserID("u-1"), priority: -2_147_483_648)))
    }

    @Test func ringMsMustBePositive() {
        #expect(
            Self.rejection("desk.configure", #""settings":{"ringMs":0}"#)
                == "desk.configure: field settings.ringMs: must be an integer > 0")
    }

    @Test func durationsAreAtMostOneYear() {
        #expect(
            Self.rejection("desk.configure", #""settings":{"inactivityMs":31536000001}"#)
                == "desk.configure: field settings.inactivityMs: must be an integer <= 31536000000")
    }

    @Test func countdownEveryMsMayBeZeroButNotNegative() throws {
        #expect(
            Self.rejection("desk.configure", #""settings":{"countdownEveryMs":-1}"#)
                == "desk.configure: field settings.countdownEveryMs: must be an integer >= 0")
        #expect(try Self.decoded("desk.configure", #""settings":{"countdownEveryMs":0}"#) == .deskConfigure(DeskSettingsPatch(countdownEveryMs: 0)))
    }

    @Test func maxOfferAttemptsMustBeAtLeastOne() {
        #expect(
            Self.rejection("desk.configure", #""settings":{"maxOfferAttempts":0}"#)
                == "desk.configure: field settings.maxOfferAttempts: must be an integer >= 1")
    }

    @Test func missesBeforeBreakMustBeAtLeastOne() {
        #expect(
            Self.rejection("desk.configure", #""settings":{"missesBeforeBreak":0}"#)
                == "desk.configure: field settings.missesBeforeBreak: must be an integer >= 1")
    }

    @Test func inactivityMsMustNotBeNegative() {
        #expect(
            Self.rejection("desk.configure", #""settings":{"inactivityMs":-1}"#)
                == "desk.configure: field settings.inactivityMs: must be an integer >= 0")
    }

    @Test func warningMsMustNotBeNegative() {
        #expect(
            Self.rejection("desk.configure", #""settings":{"warningMs":-1}"#)
                == "desk.configure: field settings.warningMs: must be an integer >= 0")
    }

    @Test func warningMsMustComeBeforeTheClose() throws {
        #expect(
            Self.rejection("desk.configure", #""settings":{"inactivityMs":60000,"warningMs":60000}"#)
                == "desk.configure: field settings.warningMs: must be less than inactivityMs")
        #expect(
            try Self.decoded("desk.configure", #""settings":{"inactivityMs":60000,"warningMs":59999}"#)
                == .deskConfigure(DeskSettingsPatch(inactivityMs: 60_000, warningMs: 59_999)))
    }

    @Test func warningMsIsFreeWhenNothingCloses() throws {
        #expect(
            try Self.decoded("desk.configure", #""settings":{"inactivityMs":0,"warningMs":60000}"#)
                == .deskConfigure(DeskSettingsPatch(inactivityMs: 0, warningMs: 60_000)))
    }

    @Test func warningRuleOnTheSettingsAPatchProduces() throws {
        var settings = DeskSettings()
        settings.inactivityMs = 60_000
        let result = DeskSettingsPatch(warningMs: 90_000).applied(to: settings)
        #expect(throws: ContractError(field: "settings.warningMs", problem: "must be less than inactivityMs")) {
            try result.checkWarningPrecedesClose()
        }
        try DeskSettingsPatch(warningMs: 30_000).applied(to: settings).checkWarningPrecedesClose()
    }

    @Test func settingsMustBeAnObject() {
        #expect(Self.rejection("desk.configure", #""settings":[]"#) == "desk.configure: field settings: must be an object")
    }

    // MARK: Texts

    @Test func closureTextMustNotBeEmpty() {
        #expect(
            Self.rejection("desk.configure", #""settings":{"closureText":""}"#)
                == "desk.configure: field settings.closureText: must be 1 to 2000 characters")
    }

    @Test func warningTextMustBeAtMost2000Characters() throws {
        #expect(
            Self.rejection("desk.configure", #""settings":{"warningText":"\#(String(repeating: "é", count: 2001))"}"#)
                == "desk.configure: field settings.warningText: must be 1 to 2000 characters")
        let longest = String(repeating: "é", count: 2000)
        #expect(
            try Self.decoded("desk.configure", #""settings":{"warningText":"\#(longest)"}"#)
                == .deskConfigure(DeskSettingsPatch(warningText: longest)))
    }

    // MARK: Transfers and attributes

    @Test func transferNamesAtMostOneTarget() {
        #expect(
            Self.rejection("session.transfer", #""agent":"alice","conversation":"c-1","toAgent":"bob","toGroup":"sales""#)
                == "session.transfer: field toGroup: must not be given together with toAgent")
    }

    @Test func transferWithoutTargetGoesBackToTheQueue() throws {
        #expect(
            try Self.decoded("session.transfer", #""agent":"alice","conversation":"c-1""#)
                == .sessionTransfer(agent: try AgentID("alice"), conversation: try ConversationID("c-1"), to: nil))
        #expect(
            try Self.decoded("session.transfer", #""agent":"alice","conversation":"c-1","toAgent":"bob","toGroup":null"#)
                == .sessionTransfer(
                    agent: try AgentID("alice"), conversation: try ConversationID("c-1"), to: .agent(try AgentID("bob"))))
    }

    @Test func attributesMustBeAnObject() {
        #expect(
            Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","attributes":[1,2]"#)
                == "conversation.requested: field attributes: must be an object")
        #expect(
            Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","attributes":"vip""#)
                == "conversation.requested: field attributes: must be an object")
    }

    @Test func attributesNestAtMostSixteenLevels() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        }
        #expect(
            Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","attributes":\#(nested(17))"#)
                == "conversation.requested: field attributes: must nest at most 16 levels deep")
        #expect(Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","attributes":\#(nested(16))"#) == nil)
    }

    @Test func attributesHoldOnlyNumbersWithinDoubleRange() {
        #expect(
            Self.rejection("conversation.requested", #""conversation":"c-1","user":"u-1","attributes":{"a":[1e400]}"#)
                == "conversation.requested: field attributes: must hold only numbers within double range")
    }

    // MARK: Envelope, version and size

    @Test func higherVersionIsRejected() {
        let data = Self.body("agent.sync", #""agent":"alice""#, envelope: #""v":2,"id":"m-1","desk":"acme","at":"2026-11-25T18:00:00.123Z""#)
        #expect(Self.rejection(data) == "unsupported contract version 2")
    }

    @Test func versionIsCheckedBeforeTheType() {
        let data = Data(#"{"v":3,"type":"something.new","shape":"different"}"#.utf8)
        #expect(Self.rejection(data) == "unsupported contract version 3")
    }

    @Test func versionMustBeAnInteger() {
        let data = Self.body("agent.sync", #""agent":"alice""#, envelope: #""v":"1","id":"m-1","desk":"acme","at":"2026-11-25T18:00:00.123Z""#)
        #expect(Self.rejection(data) == "field v: must be an integer")
    }

    @Test func versionIsRequired() {
        let data = Self.body("agent.sync", #""agent":"alice""#, envelope: #""id":"m-1","desk":"acme","at":"2026-11-25T18:00:00.123Z""#)
        #expect(Self.rejection(data) == "field v: is required")
    }

    @Test func bodyOverTheSizeLimitIsRejectedBeforeParsing() {
        let oversized = Data(repeating: UInt8(ascii: "{"), count: WireCodec.maxBodyBytes + 1)
        #expect(Self.rejection(oversized) == "body is 65537 bytes, over the limit of 65536 bytes")
    }

    @Test func bodyAtTheSizeLimitIsParsed() throws {
        let padding = String(repeating: "x", count: 100)
        var data = Self.body("agent.sync", #""agent":"alice","padding":"\#(padding)""#)
        let fill = WireCodec.maxBodyBytes - data.count
        data = Self.body("agent.sync", #""agent":"alice","padding":"\#(padding + String(repeating: "x", count: fill))""#)
        #expect(data.count == WireCodec.maxBodyBytes)
        #expect(try WireCodec.decodeInbound(data).body == .agentSync(agent: try AgentID("alice")))
    }

    @Test func malformedJSONIsRejected() {
        #expect(Self.rejection(Data(#"{"v":1,"type":"#.utf8)) == "body is not valid JSON")
    }

    @Test func bodyMustBeAnObject() {
        #expect(Self.rejection(Data("[1,2]".utf8)) == "body must be a JSON object")
    }

    @Test func outboundTextMustNotBeEmpty() {
        let data = Data(
            #"{"v":1,"type":"closure.message","id":"o-1","desk":"acme","at":"2026-11-25T18:00:00.123Z","conversation":"c-1","user":"u-1","text":"","idempotencyKey":"closure:c-1"}"#
                .utf8)
        #expect(throws: ContractError(messageType: "closure.message", field: "text", problem: "must be 1 to 2000 characters")) {
            try WireCodec.decodeOutbound(data)
        }
    }

    @Test func routerEventNeedsItsSequenceNumber() {
        let data = Data(#"{"v":1,"type":"offer.expired","id":"e-1","desk":"acme","at":"2026-11-25T18:00:00.123Z","conversation":"c-1","agent":"alice","offer":"o-1"}"#.utf8)
        #expect(throws: ContractError(messageType: "offer.expired", field: "seq", problem: "is required")) {
            try WireCodec.decodeRouterEvent(data)
        }
    }

    // MARK: Snapshots

    @Test func fullSettingsRequireEveryField() {
        let data = Data(#"{"ringMs":1000}"#.utf8)
        #expect {
            try WireCodec.decodeSnapshot(DeskSettings.self, from: data)
        } throws: { error in
            guard case DecodingError.keyNotFound(let key, _) = error else { return false }
            return key.stringValue == "countdownEveryMs"
        }
    }

    @Test func settingsSnapshotRoundTrips() throws {
        var settings = DeskSettings()
        settings.routing = .roundRobin
        settings.warningMs = 10_000
        let data = try WireCodec.encodeSnapshot(settings)
        #expect(try WireCodec.decodeSnapshot(DeskSettings.self, from: data) == settings)
    }
}

/// Reading what is valid out of a body that is not, to answer the agent behind it.
@Suite struct ContractSalvageTests {
    @Test func validFieldsOfAnInvalidCommandAreRecovered() throws {
        let body = ContractValidationTests.body("offer.accept", #""agent":"alice","conversation":"c-1","offer":"""#)
        #expect(ContractValidationTests.rejection(body) == "offer.accept: field offer: must be 1 to 128 printable ASCII characters")
        #expect(
            WireCodec.salvage(body)
                == SalvagedFields(
                    id: try MessageID("m-1"), type: "offer.accept", desk: try DeskID("acme"), agent: try AgentID("alice"),
                    conversation: try ConversationID("c-1")))
    }

    @Test func invalidFieldsAreLeftOut() throws {
        let body = Data(#"{"v":1,"type":"session.end","id":"m 1","desk":"acme","agent":"al ice","conversation":7}"#.utf8)
        #expect(WireCodec.salvage(body) == SalvagedFields(type: "session.end", desk: try DeskID("acme")))
    }

    @Test func nothingIsRecoveredFromWhatIsNotAnObject() {
        #expect(WireCodec.salvage(Data("[1]".utf8)) == SalvagedFields())
        #expect(WireCodec.salvage(Data("{\"id\":".utf8)) == SalvagedFields())
    }
}
