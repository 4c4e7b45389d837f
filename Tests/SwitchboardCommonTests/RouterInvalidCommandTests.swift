import SwitchboardCommon
import Testing

private let acme = RouterFixture.acme
private let zeta = RouterFixture.zeta
private let ann = RouterFixture.ann
private let bob = RouterFixture.bob
private let chat = RouterFixture.chat

/// An agent's command that broke the contract: the shell dead-letters it, and the Router answers the agent.
@Suite struct RouterInvalidCommandTests {
    private static func invalid(
        _ id: String, desk: DeskID = acme, agent: AgentID = ann, type: String = "offer.accept",
        conversation: ConversationID? = chat(1)
    ) -> RouterCore.Input {
        .rejectedCommand(
            id: try! MessageID(id), desk: desk, agent: agent, type: type, conversation: conversation, reason: .invalid)
    }

    @Test func aKnownAgentGetsCommandRejectedInvalidWithTheDesksNextSeq() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        let effects = h.core.handle(Self.invalid("bad-1"), at: h.now)
        #expect(effects == [
            .publish(RouterEvent(
                desk: acme, seq: 4, at: h.now,
                body: .commandRejected(CommandRejection(
                    command: try! MessageID("bad-1"), commandType: "offer.accept", agent: ann, conversation: chat(1),
                    reason: .invalid)))),
        ])
        // The desk's numbering continues after the rejection without a gap.
        let next = h.send(.agentSync(agent: ann))
        #expect(next == [
            .publish(RouterEvent(
                desk: acme, seq: 5, at: h.now,
                body: .agentState(AgentState(agent: ann, status: .online, rings: [], sessions: [])))),
        ])
    }

    @Test func nothingIsAnsweredForAnUnknownAgentOrDesk() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        #expect(h.core.handle(Self.invalid("bad-1", agent: bob), at: h.now) == [])
        #expect(h.core.handle(Self.invalid("bad-2", desk: zeta), at: h.now) == [])
    }

    @Test func aRedeliveredInvalidCommandIsAnsweredOnce() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        #expect(h.core.handle(Self.invalid("bad-1", type: "session.end"), at: h.now).count == 1)
        #expect(h.core.handle(Self.invalid("bad-1", type: "session.end"), at: h.now) == [])
    }

    @Test func aLiveRingsDeadlineIsStillReportedAfterTheRejection() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        let effects = h.core.handle(Self.invalid("bad-1", conversation: nil), at: h.now)
        #expect(effects.last == h.wakeUpAfterRing)
        #expect(effects.count == 2)
    }
}
