import Foundation
import SwitchboardCommon
import Testing

/// The AMQP-level rules of "Every message", routing keys, and the properties of what we publish.
@Suite struct ContractWirePropertiesTests {
    static let acceptBody = Data(
        #"{"v":1,"type":"offer.accept","id":"m-1","desk":"acme","at":"2026-11-25T18:00:00.123Z","agent":"alice","conversation":"c-1","offer":"o-1"}"#
            .utf8)

    static let complete = WireProperties(
        contentType: "application/json", messageID: "m-1", type: "offer.accept", timestamp: 1_795_629_600,
        deliveryMode: 2, deskHeader: "acme", userID: "gateway-1")

    static func rejection(_ properties: WireProperties) -> String? {
        do {
            _ = try WireCodec.decodeInbound(acceptBody, properties: properties)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func matchingPropertiesAreAcceptedAndNameThePublisher() throws {
        let message = try WireCodec.decodeInbound(Self.acceptBody, properties: Self.complete)
        #expect(message.publisher == "gateway-1")
        #expect(message.id == (try MessageID("m-1")))
    }

    @Test func otherContentTypeIsRejected() {
        var properties = Self.complete
        properties.contentType = "text/plain"
        #expect(
            Self.rejection(properties)
                == #"offer.accept: field property content_type: must be application/json, not "text/plain""#)
    }

    @Test func jsonContentTypeWithParametersIsAccepted() {
        var properties = Self.complete
        properties.contentType = "Application/JSON; charset=utf-8"
        #expect(Self.rejection(properties) == nil)
    }

    @Test func messageIDDifferentFromTheBodyIsRejected() {
        var properties = Self.complete
        properties.messageID = "m-2"
        #expect(
            Self.rejection(properties)
                == #"offer.accept: field property message_id: must equal the body's id "m-1", not "m-2""#)
    }

    @Test func typePropertyDifferentFromTheBodyIsRejected() {
        var properties = Self.complete
        properties.type = "offer.decline"
        #expect(
            Self.rejection(properties)
                == #"offer.accept: field property type: must equal the body's type "offer.accept", not "offer.decline""#)
    }

    @Test func deskHeaderDifferentFromTheBodyIsRejected() {
        var properties = Self.complete
        properties.deskHeader = "other"
        #expect(
            Self.rejection(properties)
                == #"offer.accept: field header desk: must equal the body's desk "acme", not "other""#)
    }

    @Test func missingDeskHeaderIsRejected() {
        var properties = Self.complete
        properties.deskHeader = nil
        #expect(Self.rejection(properties) == "offer.accept: field header desk: is required")
    }

    @Test func absentOptionalPropertiesAreTolerated() {
        let properties = WireProperties(deskHeader: "acme")
        #expect(Self.rejection(properties) == nil)
        var transient = Self.complete
        transient.deliveryMode = 1
        #expect(Self.rejection(transient) == nil)
    }

    @Test func bodyErrorsComeBeforePropertyChecks() {
        let body = Data(#"{"v":1,"type":"offer.accept","id":"m-1","desk":"acme","at":"2026-11-25T18:00:00.123Z"}"#.utf8)
        #expect(throws: ContractError(messageType: "offer.accept", field: "agent", problem: "is required")) {
            try WireCodec.decodeInbound(body, properties: WireProperties())
        }
    }

    @Test func outgoingPropertiesFollowTheContract() throws {
        let at = Instant(millisecondsSinceEpoch: 1_795_629_600_999)
        let properties = WireProperties.outgoing(id: try MessageID("e-1"), type: "offer.made", desk: try DeskID("acme"), at: at)
        #expect(
            properties
                == WireProperties(
                    contentType: "application/json", messageID: "e-1", type: "offer.made", timestamp: 1_795_629_600,
                    deliveryMode: 2, deskHeader: "acme", userID: nil))
    }

    @Test func outgoingTimestampRoundsDownBeforeTheEpoch() throws {
        let properties = WireProperties.outgoing(
            id: try MessageID("e-1"), type: "offer.made", desk: try DeskID("acme"),
            at: Instant(millisecondsSinceEpoch: -1))
        #expect(properties.timestamp == -1)
    }

    @Test func outgoingRouterEventIsRoutedByType() throws {
        let sample = ContractSamples.routerEventFixtures[3].expected
        let outgoing = try WireCodec.outgoing(sample.message, id: sample.id)
        #expect(outgoing.exchange == .events)
        #expect(outgoing.exchange.rawValue == "switchboard.events")
        #expect(outgoing.routingKey == "offer.made")
        #expect(outgoing.properties == .outgoing(id: sample.id, type: "offer.made", desk: ContractSamples.desk, at: ContractSamples.at))
        #expect(try WireCodec.decodeRouterEvent(outgoing.body, properties: outgoing.properties) == sample)
    }

    @Test func outgoingWorkstationEventIsRoutedByDeskAndAgent() throws {
        let sample = ContractSamples.workstationEventFixtures[0].expected
        let outgoing = try WireCodec.outgoing(sample.message, id: sample.id)
        #expect(outgoing.exchange.rawValue == "switchboard.workstations")
        #expect(outgoing.routingKey == "acme.alice")
        #expect(outgoing.properties.type == "ring")
        #expect(try WireCodec.decodeWorkstationEvent(outgoing.body, properties: outgoing.properties) == sample)
    }

    @Test func outgoingOutboundMessageIsRoutedByDeskAndType() throws {
        let sample = ContractSamples.outboundFixtures[0].expected
        let outgoing = try WireCodec.outgoing(sample.message, id: sample.id)
        #expect(outgoing.exchange.rawValue == "switchboard.outbound")
        #expect(outgoing.routingKey == "acme.closure.message")
        #expect(outgoing.properties.messageID == "out-closure-c-1001")
        #expect(try WireCodec.decodeOutbound(outgoing.body, properties: outgoing.properties) == sample)
    }

    @Test func outgoingInboundMessageIsRoutedByType() throws {
        let sample = ContractSamples.inboundFixtures[1].expected
        let outgoing = try WireCodec.outgoing(sample)
        #expect(outgoing.exchange.rawValue == "switchboard.in")
        #expect(outgoing.routingKey == "conversation.ended")
        #expect(outgoing.properties.deskHeader == "acme")
        #expect(try WireCodec.decodeInbound(outgoing.body, properties: outgoing.properties) == sample)
    }

    /// The broker's topic permissions go by the routing key: a body of another type under it is refused, on
    /// `switchboard.in` and on `switchboard.events` alike.
    @Test func aRoutingKeyOtherThanTheTypeIsRejected() throws {
        #expect(throws: ContractError(messageType: "offer.accept", field: "routing key", problem: #"must be the message type "offer.accept", not "agent.status""#)) {
            try WireCodec.decodeInbound(Self.acceptBody, properties: Self.complete, routingKey: "agent.status")
        }
        _ = try WireCodec.decodeInbound(Self.acceptBody, properties: Self.complete, routingKey: "offer.accept")
        let event = ContractSamples.routerEventFixtures[3].expected
        let outgoing = try WireCodec.outgoing(event.message, id: event.id)
        #expect(throws: ContractError(messageType: "offer.made", field: "routing key", problem: #"must be the message type "offer.made", not "offer.expired""#)) {
            try WireCodec.decodeRouterEvent(outgoing.body, properties: outgoing.properties, routingKey: "offer.expired")
        }
        #expect(try WireCodec.decodeRouterEvent(outgoing.body, properties: outgoing.properties, routingKey: outgoing.routingKey) == event)
    }

    @Test func eventPropertiesAreCheckedToo() throws {
        let sample = ContractSamples.routerEventFixtures[3].expected
        var outgoing = try WireCodec.outgoing(sample.message, id: sample.id)
        outgoing.properties.deskHeader = "other"
        #expect(throws: ContractError(messageType: "offer.made", field: "header desk", problem: #"must equal the body's desk "acme", not "other""#)) {
            try WireCodec.decodeRouterEvent(outgoing.body, properties: outgoing.properties)
        }
    }

    @Test func encodingIsStableForTheSameValue() throws {
        let sample = ContractSamples.inboundFixtures[0].expected
        let first = try WireCodec.encode(sample)
        let again = try WireCodec.encode(try WireCodec.decodeInbound(first))
        #expect(first == again)
    }
}
