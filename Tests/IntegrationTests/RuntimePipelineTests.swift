import Foundation
import SwitchboardAMQP
import SwitchboardTestSupport
import SwitchboardCommon
@testable import SwitchboardRuntime
import Testing

/// The three services' runtimes together on a node of their own: the Router's facts reach the Notifier
/// and the Closer through their hash exchanges, and the Closer's `conversation.ended` reaches the Router.
@Suite(.sharedBroker, .serialized, .stopsServices)
struct RuntimePipelineTests {
    @Test func aRingIsAcceptedShownOnTheWorkstationAndClosedForInactivity() async throws {
        let broker = try TestBroker.shared
        let router = try RunningService<RouterAdapter>.start(broker, name: "pipeline-router")
        try await router.waitUntilReady()
        let notifier = try RunningService<NotifierAdapter>.start(broker, name: "pipeline-notifier")
        try await notifier.waitUntilReady()
        let closer = try RunningService<CloserAdapter>.start(broker, name: "pipeline-closer")
        try await closer.waitUntilReady()
        let connection = try await broker.connect(name: "pipeline-client")
        let events = try await Collector.bind(connection, exchange: ContractExchange.events.rawValue)
        let workstations = try await Collector.bind(connection, exchange: ContractExchange.workstations.rawValue)
        let outbound = try await Collector.bind(connection, exchange: ContractExchange.outbound.rawValue)
        let publisher = try await connection.publisher()
        let desk = InboundFactory(deskPrefix: "pipeline")
        let ann = try AgentID("ann")
        let chat = try ConversationID("chat-1")
        let user = try UserID("user-1")
        for body: InboundBody in [
            .deskConfigure(DeskSettingsPatch(inactivityMs: 1_000)),
            .agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)),
            .agentStatus(agent: ann, status: .online),
            .conversationRequested(ConversationRequest(conversation: chat, user: user)),
        ] {
            try await publisher.publish(desk.wire(body))
        }
        let offer = try await events.waitForEvent(desk: desk.desk, "offer.made") { $0.body.offerMade != nil }
        let made = try #require(offer.event.body.offerMade)

        // The Notifier rings the agent's workstation, with ids from its own journal.
        let deskKey = "\(desk.desk.rawValue).\(ann.rawValue)"
        try await waitUntil("the workstation rings") {
            workstations.deliveries.contains { delivery in
                guard delivery.routingKey == deskKey, let event = try? WireCodec.decodeWorkstationEvent(Data(delivery.body)),
                    case .ring = event.message.body
                else { return false }
                return event.id.rawValue.hasPrefix("notifier.")
            }
        }

        try await publisher.publish(desk.wire(.offerAccept(agent: ann, conversation: chat, offer: made.offer)))
        try await events.waitForEvent(desk: desk.desk, "conversation.assigned") { $0.body.isAssigned }
        try await waitUntil("the session starts on the workstation") {
            workstations.deliveries.contains { delivery in
                guard let event = try? WireCodec.decodeWorkstationEvent(Data(delivery.body)) else { return false }
                if case .sessionStarted = event.message.body { return event.message.desk == desk.desk }
                return false
            }
        }

        // The agent writes; the user stays silent: the Closer closes the conversation.
        let posted = PostedMessage(conversation: chat, from: .agent, agent: ann, sentAt: ShardWorker<RouterAdapter>.wallClock())
        try await publisher.publish(desk.wire(.messagePosted(posted)))
        try await waitUntil("the closure message goes to the chat platform") {
            outbound.deliveries.contains { delivery in
                guard delivery.routingKey == "\(desk.desk.rawValue).closure.message",
                    let message = try? WireCodec.decodeOutbound(Data(delivery.body))
                else { return false }
                return message.id.rawValue.hasPrefix("closer.")
            }
        }
        let ended = try await events.waitForEvent(desk: desk.desk, "the Router ends the conversation") { event in
            if case .conversationEnded(chat, _, .inactivity) = event.body { return true }
            return false
        }
        #expect(ended.id.hasPrefix("router."))

        try await closer.stop()
        try await notifier.stop()
        try await router.stop()
        await connection.close()
    }
}
