import SwitchboardCommon
import SwitchboardOps
import Testing

struct DeskViewTests {
    private let desk = try! DeskID("acme")
    private let alice = try! AgentID("alice")
    private let bob = try! AgentID("bob")
    private let conversation = try! ConversationID("c1")
    private let user = try! UserID("u1")
    private let firstOffer = try! OfferToken("o1")
    private let secondOffer = try! OfferToken("o2")

    private func event(_ seq: UInt64, _ body: RouterEventBody, desk: DeskID? = nil) -> RouterEvent {
        RouterEvent(desk: desk ?? self.desk, seq: seq, at: Instant(millisecondsSinceEpoch: 1_000 * Int64(seq)), body: body)
    }

    private func offer(_ seq: UInt64, to agent: AgentID, _ token: OfferToken, attempt: Int) -> RouterEvent {
        event(
            seq,
            .offerMade(
                conversation: conversation, user: user, agent: agent, offer: token, attempt: attempt,
                expiresAt: Instant(millisecondsSinceEpoch: 60_000), ringMs: 6_000))
    }

    @Test func aConversationMovesFromWaitingToRingingToServingToGone() {
        var view = DeskView(desk: desk)
        view.apply(event(1, .conversationQueued(conversation: conversation, user: user, position: 1, reason: .noAgent)))
        #expect(view.waiting[conversation]?.position == 1)

        view.apply(offer(2, to: alice, firstOffer, attempt: 1))
        #expect(view.waiting.isEmpty)
        #expect(view.rings[conversation]?.agent == alice)

        view.apply(event(3, .conversationAssigned(conversation: conversation, user: user, agent: alice, offer: firstOffer, mode: .accepted)))
        #expect(view.rings.isEmpty)
        #expect(view.sessions[conversation]?.agent == alice)
        #expect(view.sessions[conversation]?.since == Instant(millisecondsSinceEpoch: 3_000))

        view.apply(event(4, .conversationEnded(conversation: conversation, agent: alice, reason: .inactivity)))
        #expect(view.sessions.isEmpty && view.rings.isEmpty && view.waiting.isEmpty)
        #expect(view.lastSeq == 4)
    }

    @Test func anExpiryOfAnOlderOfferDoesNotClearTheLiveRing() {
        var view = DeskView(desk: desk)
        view.apply(offer(1, to: alice, firstOffer, attempt: 1))
        view.apply(event(2, .offerExpired(conversation: conversation, agent: alice, offer: firstOffer)))
        #expect(view.rings.isEmpty)
        view.apply(offer(3, to: bob, secondOffer, attempt: 2))
        view.apply(event(4, .offerWithdrawn(conversation: conversation, agent: alice, offer: firstOffer, reason: .agentOffline)))
        #expect(view.rings[conversation]?.agent == bob)
        #expect(view.rings[conversation]?.attempt == 2)
    }

    @Test func agentsFollowTheirLatestChangeAndLeaveWhenRemoved() {
        var view = DeskView(desk: desk)
        view.apply(event(1, .agentChanged(agent: alice, status: .online, capacity: 2, load: 0, groups: [], reason: .command)))
        view.apply(event(2, .agentChanged(agent: alice, status: .online, capacity: 2, load: 1, groups: [], reason: .assigned)))
        #expect(view.agents[alice]?.load == 1)
        view.apply(event(3, .agentChanged(agent: alice, status: .offline, capacity: 2, load: 0, groups: [], reason: .removed)))
        #expect(view.agents[alice] == nil)
    }

    @Test func otherDesksAndSettingsAreKeptApart() {
        var view = DeskView(desk: desk)
        var settings = DeskSettings()
        settings.ringMs = 6_000
        view.apply(event(1, .deskConfigured(settings: settings)))
        view.apply(event(9, .conversationQueued(conversation: conversation, user: user, position: 1, reason: .noAgent), desk: try! DeskID("other")))
        #expect(view.settings?.ringMs == 6_000)
        #expect(view.waiting.isEmpty)
        #expect(view.lastSeq == 1)
    }

    @Test func aRequeuedSessionIsWaitingAgain() {
        var view = DeskView(desk: desk)
        view.apply(event(1, .conversationAssigned(conversation: conversation, user: user, agent: alice, offer: nil, mode: .autoAccepted)))
        view.apply(event(2, .conversationQueued(conversation: conversation, user: user, position: 1, reason: .agentRemoved)))
        #expect(view.sessions.isEmpty)
        #expect(view.waiting[conversation]?.reason == .agentRemoved)
    }
}

struct InboundMessageFactoryTests {
    @Test func aSettingOutOfRangeIsRefusedBeforePublishing() throws {
        let factory = InboundMessageFactory()
        let desk = try DeskID("acme")
        #expect(throws: ContractError.self) {
            try factory.message(desk: desk, .deskConfigure(DeskSettingsPatch(inactivityMs: 5_000, warningMs: 6_000)))
        }
        let valid = try factory.message(desk: desk, .deskConfigure(DeskSettingsPatch(ringMs: 6_000)))
        #expect(valid.exchange == .inbound)
        #expect(valid.routingKey == "desk.configure")
        #expect(valid.properties.deskHeader == "acme")
    }
}
