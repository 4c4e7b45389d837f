import SwitchboardCommon
import Testing

private let ann = RouterFixture.ann
private let bob = RouterFixture.bob
private let cat = RouterFixture.cat
private let sales = RouterFixture.sales
private let billing = RouterFixture.billing
private let t0 = RouterFixture.t0
private let ring = RouterFixture.ringMs
private let chat = RouterFixture.chat

@Suite struct RouterRoutingTests {
    /// Ann serves two conversations since t0; Bob served one and was released at t0+11.
    /// Returns the effects of a fourth request at t0+12.
    private func fourthRequest(under routing: RoutingPolicy) -> (RouterHarness, [RouterCore.Effect]) {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(autoAccept: true, routing: routing))
        h.addAgent(ann, capacity: 3)
        h.request(1)
        h.request(2)
        h.now = t0 + 10
        h.addAgent(bob, capacity: 3)
        h.request(3)
        h.now = t0 + 11
        h.send(.sessionEnd(agent: bob, conversation: chat(3)))
        h.now = t0 + 12
        let effects = h.request(4)
        return (h, effects)
    }

    @Test func longestIdleGivesTheAgentWhoseLastAssignmentOrReleaseIsOldest() {
        let (h, effects) = fourthRequest(under: .longestIdle)
        #expect(effects == h.events(h.assigned(4, to: ann, offer: nil, .autoAccepted)))
    }

    @Test func leastBusyGivesTheAgentWithTheLowestLoad() {
        let (h, effects) = fourthRequest(under: .leastBusy)
        #expect(effects == h.events(h.assigned(4, to: bob, offer: nil, .autoAccepted)))
    }

    @Test func longestIdlePrefersNeverAssignedAgentsThenAgentId() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(cat)
        h.addAgent(bob)
        h.addAgent(ann)
        #expect(h.request(1) == h.events(h.offerMade(1, to: ann, offer: 1)) + [h.wakeUpAfterRing])
        h.now = t0 + 1
        #expect(h.request(2) == h.events(h.offerMade(2, to: bob, offer: 2)) + [.wakeUp(at: t0 + ring)])
    }

    @Test func roundRobinRotatesThroughEligibleAgentsInAStableOrder() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(autoAccept: true, routing: .roundRobin))
        h.addAgent(cat, capacity: 5)
        h.addAgent(ann, capacity: 5)
        h.addAgent(bob, capacity: 5)
        let order = [ann, bob, cat, ann, bob, cat, ann]
        for (index, agent) in order.enumerated() {
            #expect(h.request(index + 1) == h.events(h.assigned(index + 1, to: agent, offer: nil, .autoAccepted)))
        }
    }

    @Test func changingTheRoutingPolicyAppliesToTheNextRequest() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(autoAccept: true))
        h.addAgent(ann, capacity: 5)
        h.addAgent(bob, capacity: 5)
        h.request(1)
        h.request(2)
        h.now = t0 + 1
        h.request(3)
        h.send(.sessionEnd(agent: ann, conversation: chat(1)))
        h.send(.sessionEnd(agent: ann, conversation: chat(3)))
        #expect(h.request(4) == h.events(h.assigned(4, to: bob, offer: nil, .autoAccepted)))
        h.configure(DeskSettingsPatch(routing: .leastBusy))
        #expect(h.request(5) == h.events(h.assigned(5, to: ann, offer: nil, .autoAccepted)))
    }

    @Test func aConversationForAGroupGoesOnlyToItsMembersAndAFreedAgentTakesOnlyWhatItCanServe() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, groups: [sales])
        h.addAgent(bob, groups: [billing])
        #expect(h.request(1, group: billing) == h.events(h.offerMade(1, to: bob, offer: 1)) + [h.wakeUpAfterRing])
        #expect(h.request(2, group: sales) == h.events(h.offerMade(2, to: ann, offer: 2)) + [h.wakeUpAfterRing])
        #expect(h.request(3, group: billing) == h.events(h.queued(3, position: 1, .noAgent)) + [h.wakeUpAfterRing])
        #expect(h.request(4) == h.events(h.queued(4, position: 2, .noAgent)) + [h.wakeUpAfterRing])
        h.accept(ann, 2, offer: 2)
        #expect(h.send(.sessionEnd(agent: ann, conversation: chat(2))) == h.events(
            .conversationEnded(conversation: chat(2), agent: ann, reason: .agent),
            h.offerMade(4, to: ann, offer: 3)) + [h.wakeUpAfterRing])
    }

    @Test func aGroupWithNoMemberWaitsUntilAnAgentJoinsIt() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 2)
        #expect(h.request(1, group: billing) == h.events(h.queued(1, position: 1, .noAgent)))
        #expect(h.send(.agentUpsert(AgentProfile(agent: ann, groups: [billing], capacity: 2))) == h.events(
            h.agentChanged(ann, .online, capacity: 2, groups: [billing], .command),
            h.offerMade(1, to: ann, offer: 1)) + [h.wakeUpAfterRing])
    }

    @Test func thePreferredAgentIsOfferedFirstWhenEligible() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob)
        h.addAgent(cat, online: false)
        #expect(h.request(1, preferredAgent: bob) == h.events(h.offerMade(1, to: bob, offer: 1)) + [h.wakeUpAfterRing])
        #expect(h.request(2, preferredAgent: cat) == h.events(h.offerMade(2, to: ann, offer: 2)) + [h.wakeUpAfterRing])
    }

    @Test func anAgentAtCapacityIsNotOfferedMore() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 2)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        #expect(h.request(2) == h.events(h.offerMade(2, to: ann, offer: 2)) + [h.wakeUpAfterRing])
        #expect(h.request(3) == h.events(h.queued(3, position: 1, .noAgent)) + [h.wakeUpAfterRing])
    }
}
