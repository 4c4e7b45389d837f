import SwitchboardCommon
import Testing

private let acme = RouterFixture.acme
private let ann = RouterFixture.ann
private let chat = RouterFixture.chat
private let token = RouterFixture.token

/// An agent command from a broker user not allowed for its desk: the shell dead-letters it, and the Router
/// answers the agent without acting on the command.
@Suite struct RouterForbiddenCommandTests {
    private static func forbidden(_ id: String, type: String = "offer.accept", conversation: Int? = 1) -> RouterCore.Input {
        .rejectedCommand(
            id: try! MessageID(id), desk: acme, agent: ann, type: type, conversation: conversation.map(chat),
            reason: .forbidden)
    }

    private static func message(_ id: String, _ body: InboundBody, at now: Instant) -> RouterCore.Input {
        .message(InboundMessage(id: try! MessageID(id), desk: acme, at: now, body: body))
    }

    @Test func itIsAnsweredOnceWithCommandRejectedForbiddenAndTheDesksNextSeq() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        let effects = h.core.handle(Self.forbidden("x-1"), at: h.now)
        #expect(effects == [
            .publish(RouterEvent(
                desk: acme, seq: 5, at: h.now,
                body: .commandRejected(CommandRejection(
                    command: try! MessageID("x-1"), commandType: "offer.accept", agent: ann, conversation: chat(1),
                    reason: .forbidden)))),
            h.wakeUpAfterRing,
        ])
    }

    @Test func itChangesNothingButTheDesksSeq() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        var untouched = h.core
        _ = h.core.handle(Self.forbidden("x-1"), at: h.now)
        let sync = Self.message("sync-1", .agentSync(agent: ann), at: h.now)
        let bodies = h.core.handle(sync, at: h.now).compactMap { effect -> RouterEventBody? in
            guard case .publish(let event) = effect else { return nil }
            return event.body
        }
        let untouchedBodies = untouched.handle(sync, at: h.now).compactMap { effect -> RouterEventBody? in
            guard case .publish(let event) = effect else { return nil }
            return event.body
        }
        #expect(bodies.count == 1)
        #expect(bodies == untouchedBodies)
    }

    /// Its id is not remembered: the same command from an allowed user is taken, and the ring it would have
    /// accepted is still live.
    @Test func theSameIdFromAnAllowedUserIsTakenAfterwards() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        _ = h.core.handle(Self.forbidden("x-1"), at: h.now)
        let accept = Self.message("x-1", .offerAccept(agent: ann, conversation: chat(1), offer: token(1)), at: h.now)
        #expect(h.core.handle(accept, at: h.now) == [
            .publish(RouterEvent(desk: acme, seq: 6, at: h.now, body: h.assigned(1, to: ann, offer: 1, .accepted))),
        ])
    }

    @Test func aRepeatedForbiddenCommandIsAnsweredEachTime() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        #expect(h.core.handle(Self.forbidden("x-1", type: "agent.sync", conversation: nil), at: h.now).count == 1)
        #expect(h.core.handle(Self.forbidden("x-1", type: "agent.sync", conversation: nil), at: h.now).count == 1)
    }

    @Test func nothingIsAnsweredForAnUnknownAgent() {
        var h = RouterHarness()
        h.configure()
        #expect(h.core.handle(Self.forbidden("x-1"), at: h.now) == [])
    }
}
