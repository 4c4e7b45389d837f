import SwitchboardCommon
import Testing

private let acme = RouterFixture.acme
private let zeta = RouterFixture.zeta
private let ann = RouterFixture.ann
private let bob = RouterFixture.bob
private let cat = RouterFixture.cat
private let zed = RouterFixture.zed
private let sales = RouterFixture.sales
private let billing = RouterFixture.billing
private let routerT0 = RouterFixture.t0
private let ring = RouterFixture.ringMs
private let chat = RouterFixture.chat
private let user = RouterFixture.user
private let token = RouterFixture.token

/// ann (capacity 3) serving chat 1, accepted from offer 1, and rung for chats 2 and 3 (offers 2 and 3).
private func annServingOneAndRungForTwo() -> RouterHarness {
    var h = RouterHarness()
    h.configure()
    h.addAgent(ann, capacity: 3)
    h.request(1)
    h.accept(ann, 1, offer: 1)
    h.request(2)
    h.request(3)
    return h
}

@Suite struct RouterCoreTests {
    // MARK: - Desks and bad input

    @Test func configuringADeskPublishesTheFullSettingsAndLaterPatchesChangeOnlyTheirFields() {
        var h = RouterHarness()
        var settings = DeskSettings.defaults
        settings.ringMs = 10_000
        #expect(h.configure(DeskSettingsPatch(ringMs: 10_000)) == h.events(.deskConfigured(settings: settings)))
        settings.autoAccept = true
        #expect(h.configure(DeskSettingsPatch(autoAccept: true)) == h.events(.deskConfigured(settings: settings)))
    }

    /// Each patch is valid alone; a warning at or after the close is refused on the settings it would produce
    /// (else the desk's settings could no longer be read: by the Notifier and the Closer from its events, and by
    /// the Router itself from its snapshot), and the desk keeps the settings it had.
    @Test func aPatchThatWouldPutTheWarningAtOrAfterTheCloseIsDeadLetteredAndChangesNothing() {
        let refused = "desk.configure: field settings.warningMs: must be less than inactivityMs (with the desk's other settings)"
        var h = RouterHarness()
        #expect(h.configure(DeskSettingsPatch(warningMs: 300_000)) == [.deadLetter(reason: refused)])
        #expect(h.core.state(of: acme) == nil, "a refused first configure creates no desk")

        var settings = DeskSettings.defaults
        settings.warningMs = 60_000
        #expect(h.configure(DeskSettingsPatch(warningMs: 60_000)) == h.events(.deskConfigured(settings: settings)))
        #expect(h.configure(DeskSettingsPatch(inactivityMs: 60_000)) == [.deadLetter(reason: refused)])
        #expect(h.configure(DeskSettingsPatch(warningMs: 400_000)) == [.deadLetter(reason: refused)])
        #expect(h.core.state(of: acme)?.settings == settings)
        // Both at once, or no close at all, are fine.
        settings.inactivityMs = 600_000
        settings.warningMs = 400_000
        #expect(
            h.configure(DeskSettingsPatch(inactivityMs: 600_000, warningMs: 400_000))
                == h.events(.deskConfigured(settings: settings)))
        settings.inactivityMs = 0
        #expect(h.configure(DeskSettingsPatch(inactivityMs: 0)) == h.events(.deskConfigured(settings: settings)))
    }

    @Test func aMessageForADeskNeverConfiguredIsDeadLettered() {
        var h = RouterHarness()
        h.configure()
        #expect(h.send(.agentSync(agent: ann), desk: zeta) == [
            .deadLetter(reason: "unknown desk zeta: a desk exists once it received desk.configure"),
        ])
    }

    @Test func aDeadLetteredMessageIsTakenWhenDeliveredAgainAfterItsDeskExists() {
        var h = RouterHarness()
        let request = InboundBody.conversationRequested(ConversationRequest(conversation: chat(1), user: user(1)))
        #expect(h.send(request, id: "late-1") == [
            .deadLetter(reason: "unknown desk acme: a desk exists once it received desk.configure"),
        ])
        h.configure()
        #expect(h.send(request, id: "late-1") == h.events(h.queued(1, position: 1, .noAgent)))
    }

    @Test func messagePostedIsDeadLetteredBecauseItIsForTheCloser() {
        var h = RouterHarness()
        h.configure()
        let posted = PostedMessage(conversation: chat(1), from: .user, sentAt: routerT0)
        #expect(h.send(.messagePosted(posted)) == [
            .deadLetter(reason: "message.posted is for the Closer; the Router does not take it"),
        ])
    }

    @Test func eachDeskNumbersItsEventsFromOneWithoutGaps() {
        var h = RouterHarness()
        let first = h.configure(desk: acme)
        let other = h.configure(desk: zeta)
        #expect(first == [.publish(RouterEvent(desk: acme, seq: 1, at: routerT0, body: .deskConfigured(settings: .defaults)))])
        #expect(other == [.publish(RouterEvent(desk: zeta, seq: 1, at: routerT0, body: .deskConfigured(settings: .defaults)))])
        let added = h.addAgent(ann, online: false)
        #expect(added == [.publish(RouterEvent(
            desk: acme, seq: 2, at: routerT0,
            body: .agentChanged(agent: ann, status: .offline, capacity: 1, load: 0, groups: [], reason: .command)))])
    }

    @Test func aDuplicateMessageIdHasNoSecondEffect() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        let state = RouterEventBody.agentState(AgentState(agent: ann, status: .online, rings: [], sessions: []))
        #expect(h.send(.agentSync(agent: ann), id: "sync-1") == h.events(state))
        #expect(h.send(.agentSync(agent: ann), id: "sync-1") == [])
    }

    @Test func theDuplicateWindowForgetsTheOldestIdsFirst() {
        var h = RouterHarness(limits: RouterCore.Limits(rememberedMessages: 3))
        h.configure()
        h.addAgent(ann)
        let state = RouterEventBody.agentState(AgentState(agent: ann, status: .online, rings: [], sessions: []))
        #expect(h.send(.agentSync(agent: ann), id: "sync-1") == h.events(state))
        #expect(h.send(.agentSync(agent: ann), id: "sync-2") == h.events(state))
        #expect(h.send(.agentSync(agent: ann), id: "sync-1") == [])
        #expect(h.send(.agentSync(agent: ann), id: "sync-3") == h.events(state))
        #expect(h.send(.agentSync(agent: ann), id: "sync-1") == [])
        #expect(h.send(.agentSync(agent: ann), id: "sync-4") == h.events(state))
        #expect(h.send(.agentSync(agent: ann), id: "sync-1") == h.events(state))
    }

    @Test func smallerLimitsForgetTheOldestAtOnceAndBoundWhatComesAfter() throws {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 3)
        let state = RouterEventBody.agentState(AgentState(agent: ann, status: .online, rings: [], sessions: []))
        for id in ["sync-1", "sync-2", "sync-3"] { h.send(.agentSync(agent: ann), id: id) }
        h.request(1)
        h.request(2)
        h.send(.conversationEnded(conversation: chat(1), by: .user))
        h.send(.conversationEnded(conversation: chat(2), by: .user))
        h.addAgent(bob)

        let small = RouterCore.Limits(rememberedMessages: 2, rememberedOffersPerDesk: 1)
        h.core.changeLimits(to: small)
        #expect(h.core.limits == small)
        // The two newest message ids stay (bob's upsert and status); every sync is forgotten.
        #expect(h.send(.agentSync(agent: ann), id: "sync-3") == h.events(state))
        // Both offers were ann's. Offer 1 is forgotten: bob's click on it is told it is over, no longer that it
        // was not his; offer 2 is still remembered.
        #expect(h.accept(bob, 1, offer: 1) == h.events(h.rejected("offer.accept", bob, 1, .offerExpired)))
        #expect(h.accept(bob, 2, offer: 2) == h.events(h.rejected("offer.accept", bob, 2, .offerNotYours)))
        let restored = try WireCodec.decodeSnapshot(RouterCore.self, from: WireCodec.encodeSnapshot(h.core))
        #expect(restored == h.core)
        #expect(restored.limits == small)
    }

    // MARK: - Agents

    @Test func aNewAgentStartsOfflineAndStatusCommandsReportTheChange() {
        var h = RouterHarness()
        h.configure()
        #expect(h.addAgent(ann, capacity: 2, groups: [sales], online: false) == h.events(
            h.agentChanged(ann, .offline, capacity: 2, groups: [sales], .command)))
        #expect(h.send(.agentStatus(agent: ann, status: .online)) == h.events(
            h.agentChanged(ann, .online, capacity: 2, groups: [sales], .command)))
        #expect(h.send(.agentStatus(agent: ann, status: .online)) == [])
        #expect(h.send(.agentStatus(agent: ann, status: .break)) == h.events(
            h.agentChanged(ann, .break, capacity: 2, groups: [sales], .command)))
    }

    @Test func commandsFromAnUnknownAgentAreRejected() {
        var h = RouterHarness()
        h.configure()
        #expect(h.send(.agentStatus(agent: zed, status: .online)) == h.events(
            h.rejected("agent.status", zed, nil, .unknownAgent)))
        #expect(h.send(.agentSync(agent: zed)) == h.events(h.rejected("agent.sync", zed, nil, .unknownAgent)))
        #expect(h.send(.agentRemove(agent: zed)) == h.events(h.rejected("agent.remove", zed, nil, .unknownAgent)))
        #expect(h.accept(zed, 1, offer: 1) == h.events(h.rejected("offer.accept", zed, 1, .unknownAgent)))
    }

    @Test func agentSyncListsRingsAndSessionsInOrder() {
        var h = annServingOneAndRungForTwo()
        let expiry = h.now + ring
        #expect(h.send(.agentSync(agent: ann)) == h.events(.agentState(AgentState(
            agent: ann, status: .online,
            rings: [
                RingSummary(conversation: chat(2), user: user(2), offer: token(2), expiresAt: expiry),
                RingSummary(conversation: chat(3), user: user(3), offer: token(3), expiresAt: expiry),
            ],
            sessions: [SessionSummary(conversation: chat(1), user: user(1))]))) + [.wakeUp(at: expiry)])
    }

    @Test func raisingCapacityServesTheWaitingQueue() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        #expect(h.request(2) == h.events(h.queued(2, position: 1, .noAgent)) + [h.wakeUpAfterRing])
        #expect(h.send(.agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 2))) == h.events(
            h.agentChanged(ann, .online, capacity: 2, load: 1, .command),
            h.offerMade(2, to: ann, offer: 2)) + [h.wakeUpAfterRing])
    }

    @Test func comingOnlineServesTheWaitingQueue() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, online: false)
        #expect(h.request(1) == h.events(h.queued(1, position: 1, .noAgent)))
        #expect(h.send(.agentStatus(agent: ann, status: .online)) == h.events(
            h.agentChanged(ann, .online, .command),
            h.offerMade(1, to: ann, offer: 1)) + [h.wakeUpAfterRing])
    }

    // MARK: - Requests and the queue

    @Test func withNoEligibleAgentARequestIsQueuedWithItsPositionByPriorityThenArrival() {
        var h = RouterHarness()
        h.configure()
        #expect(h.request(1) == h.events(h.queued(1, position: 1, .noAgent)))
        #expect(h.request(2) == h.events(h.queued(2, position: 2, .noAgent)))
        #expect(h.request(3, priority: 5) == h.events(h.queued(3, position: 1, .noAgent)))
        #expect(h.request(4, priority: 5) == h.events(h.queued(4, position: 2, .noAgent)))
        h.addAgent(ann, capacity: 4, online: false)
        #expect(h.send(.agentStatus(agent: ann, status: .online)) == h.events(
            h.agentChanged(ann, .online, capacity: 4, .command),
            h.offerMade(3, to: ann, offer: 1),
            h.offerMade(4, to: ann, offer: 2),
            h.offerMade(1, to: ann, offer: 3),
            h.offerMade(2, to: ann, offer: 4)) + [h.wakeUpAfterRing])
    }

    @Test func aRequestWithAnEligibleAgentRingsIt() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        #expect(h.request(1) == h.events(h.offerMade(1, to: ann, offer: 1)) + [h.wakeUpAfterRing])
    }

    @Test func aRepeatedRequestForALiveConversationIsIgnored() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        #expect(h.request(1) == [h.wakeUpAfterRing])
    }

    @Test func theNextWakeUpIsTheEarliestRingDeadline() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 2)
        h.request(1)
        let firstExpiry = h.now + ring
        h.now = routerT0 + 5_000
        #expect(h.request(2) == h.events(h.offerMade(2, to: ann, offer: 2)) + [.wakeUp(at: firstExpiry)])
    }

    // MARK: - Accepting

    @Test func acceptingTheLiveOfferAssignsTheConversation() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        #expect(h.accept(ann, 1, offer: 1) == h.events(h.assigned(1, to: ann, offer: 1, .accepted)))
    }

    @Test func aLateAcceptIsRejectedAsExpiredAndStealsNothing() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob)
        h.request(1)
        h.tick(at: routerT0 + ring)
        #expect(h.accept(ann, 1, offer: 1) == h.events(h.rejected("offer.accept", ann, 1, .offerExpired))
            + [h.wakeUpAfterRing])
        #expect(h.accept(bob, 1, offer: 2) == h.events(h.assigned(1, to: bob, offer: 2, .accepted)))
    }

    @Test func acceptingAnotherAgentsOfferIsRejectedAsNotYours() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob)
        h.request(1)
        #expect(h.accept(bob, 1, offer: 1) == h.events(h.rejected("offer.accept", bob, 1, .offerNotYours))
            + [h.wakeUpAfterRing])
        #expect(h.accept(ann, 1, offer: 1) == h.events(h.assigned(1, to: ann, offer: 1, .accepted)))
    }

    @Test func acceptingAnUnknownConversationIsRejected() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        #expect(h.accept(ann, 9, offer: 7) == h.events(h.rejected("offer.accept", ann, 9, .unknownConversation)))
    }

    @Test func acceptingAnOfferWithdrawnBecauseTheConversationEndedIsRejectedAsExpired() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        h.send(.conversationEnded(conversation: chat(1), by: .user))
        #expect(h.accept(ann, 1, offer: 1) == h.events(h.rejected("offer.accept", ann, 1, .offerExpired)))
    }

    @Test func anOfferForgottenFromMemoryIsStillRejectedAsExpired() {
        var h = RouterHarness(limits: RouterCore.Limits(rememberedOffersPerDesk: 1))
        h.configure()
        h.addAgent(ann, capacity: 2)
        h.request(1)
        h.request(2)
        h.send(.conversationEnded(conversation: chat(1), by: .user))
        h.send(.conversationEnded(conversation: chat(2), by: .user))
        #expect(h.accept(ann, 1, offer: 1) == h.events(h.rejected("offer.accept", ann, 1, .offerExpired)))
    }

    /// A live offer named with another conversation mixes up two rings: invalid, not expired, and the ring
    /// goes on.
    @Test func acceptingAnotherConversationsLiveOfferIsInvalid() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 2)
        h.request(1)
        h.request(2)
        #expect(
            h.accept(ann, 1, offer: 2) == h.events(h.rejected("offer.accept", ann, 1, .invalid)) + [h.wakeUpAfterRing])
        #expect(h.accept(ann, 1, offer: 1) == h.events(h.assigned(1, to: ann, offer: 1, .accepted)) + [h.wakeUpAfterRing])
    }

    // MARK: - Expiry, attempts and missed rings

    @Test func anExpiredRingIsReofferedToAnAgentNotYetOfferedItInThisPass() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob)
        h.request(1)
        #expect(h.tick(at: routerT0 + (ring - 1)) == [.wakeUp(at: routerT0 + ring)])
        #expect(h.tick(at: routerT0 + ring) == h.events(
            .offerExpired(conversation: chat(1), agent: ann, offer: token(1)),
            h.offerMade(1, to: bob, offer: 2, attempt: 2)) + [h.wakeUpAfterRing])
    }

    @Test func afterMaxAttemptsTheConversationGoesBackToTheHeadOfTheQueueUntilAnAgentFreesUp() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(maxOfferAttempts: 1))
        h.addAgent(ann)
        h.request(1)
        #expect(h.request(2) == h.events(h.queued(2, position: 1, .noAgent)) + [h.wakeUpAfterRing])
        #expect(h.tick(at: routerT0 + ring) == h.events(
            .offerExpired(conversation: chat(1), agent: ann, offer: token(1)),
            h.queued(1, position: 1, .attemptsExhausted),
            h.offerMade(2, to: ann, offer: 2)) + [h.wakeUpAfterRing])
        h.accept(ann, 2, offer: 2)
        #expect(h.send(.sessionEnd(agent: ann, conversation: chat(2))) == h.events(
            .conversationEnded(conversation: chat(2), agent: ann, reason: .agent),
            h.offerMade(1, to: ann, offer: 3)) + [h.wakeUpAfterRing])
    }

    /// Attempts run out while an agent not rung in this pass is free: it gets the conversation at once, in a new
    /// pass, rather than a newer request getting it while the conversation waits at the head of the queue.
    @Test func afterMaxAttemptsAnAgentFreeAllAlongAndNotRungTakesTheConversationInANewPass() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(maxOfferAttempts: 2))
        h.addAgent(ann)
        h.addAgent(bob)
        h.addAgent(cat)
        h.request(1)
        #expect(h.tick(at: routerT0 + ring) == h.events(
            .offerExpired(conversation: chat(1), agent: ann, offer: token(1)),
            h.offerMade(1, to: bob, offer: 2, attempt: 2)) + [h.wakeUpAfterRing])
        #expect(h.tick(at: routerT0 + ring + ring) == h.events(
            .offerExpired(conversation: chat(1), agent: bob, offer: token(2)),
            h.queued(1, position: 1, .attemptsExhausted),
            h.offerMade(1, to: cat, offer: 3)) + [h.wakeUpAfterRing])
    }

    @Test func consecutiveMissedRingsPutTheAgentOnBreak() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(missesBeforeBreak: 2))
        h.addAgent(ann, capacity: 2)
        h.request(1)
        h.request(2)
        #expect(h.tick(at: routerT0 + ring) == h.events(
            .offerExpired(conversation: chat(1), agent: ann, offer: token(1)),
            h.queued(1, position: 1, .noAgent),
            .offerExpired(conversation: chat(2), agent: ann, offer: token(2)),
            h.queued(2, position: 1, .noAgent),
            h.agentChanged(ann, .break, capacity: 2, .missedRings)))
    }

    @Test func anAcceptResetsTheMissedRingCount() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(missesBeforeBreak: 2))
        h.addAgent(ann, capacity: 2)
        h.request(1)
        h.tick(at: routerT0 + ring)
        h.request(2)
        h.accept(ann, 2, offer: 2)
        h.request(3)
        #expect(h.tick(at: h.now + ring) == h.events(
            .offerExpired(conversation: chat(3), agent: ann, offer: token(3)),
            h.queued(3, position: 1, .noAgent)))
    }

    // MARK: - Declining, status changes, removal

    @Test func aDeclinedRingIsReofferedAtOnceExcludingTheDecliner() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob)
        h.request(1)
        #expect(h.send(.offerDecline(agent: ann, conversation: chat(1), offer: token(1), reason: "busy")) == h.events(
            .offerDeclined(conversation: chat(1), agent: ann, offer: token(1), reason: "busy"),
            h.offerMade(1, to: bob, offer: 2, attempt: 2)) + [h.wakeUpAfterRing])
        #expect(h.send(.offerDecline(agent: bob, conversation: chat(1), offer: token(2), reason: nil)) == h.events(
            .offerDeclined(conversation: chat(1), agent: bob, offer: token(2), reason: nil),
            h.queued(1, position: 1, .noAgent)))
    }

    @Test func goingOfflineWithdrawsRingsForReofferButKeepsSessions() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 2)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        h.request(2)
        h.addAgent(bob)
        #expect(h.send(.agentStatus(agent: ann, status: .offline)) == h.events(
            .offerWithdrawn(conversation: chat(2), agent: ann, offer: token(2), reason: .agentOffline),
            h.agentChanged(ann, .offline, capacity: 2, load: 1, .command),
            h.offerMade(2, to: bob, offer: 3, attempt: 2)) + [h.wakeUpAfterRing])
        #expect(h.send(.agentSync(agent: ann)) == h.events(.agentState(AgentState(
            agent: ann, status: .offline, rings: [], sessions: [SessionSummary(conversation: chat(1), user: user(1))])))
            + [h.wakeUpAfterRing])
    }

    @Test func goingOnBreakWithdrawsRingsForReoffer() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        h.addAgent(bob)
        #expect(h.send(.agentStatus(agent: ann, status: .break)) == h.events(
            .offerWithdrawn(conversation: chat(1), agent: ann, offer: token(1), reason: .agentOnBreak),
            h.agentChanged(ann, .break, .command),
            h.offerMade(1, to: bob, offer: 2, attempt: 2)) + [h.wakeUpAfterRing])
    }

    @Test func loweringCapacityWithdrawsTheNewestRingsBeyondIt() {
        var h = annServingOneAndRungForTwo()
        h.addAgent(bob)
        #expect(h.send(.agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 2))) == h.events(
            .offerWithdrawn(conversation: chat(3), agent: ann, offer: token(3), reason: .agentChanged),
            h.agentChanged(ann, .online, capacity: 2, load: 2, .command),
            h.offerMade(3, to: bob, offer: 4, attempt: 2)) + [h.wakeUpAfterRing])
        #expect(h.accept(ann, 3, offer: 3) == h.events(h.rejected("offer.accept", ann, 3, .offerExpired))
            + [h.wakeUpAfterRing])
    }

    @Test func leavingAGroupWithdrawsItsRings() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 2, groups: [sales, billing])
        h.request(1, group: billing)
        h.request(2, group: sales)
        h.addAgent(bob, groups: [billing])
        #expect(h.send(.agentUpsert(AgentProfile(agent: ann, groups: [sales], capacity: 2))) == h.events(
            .offerWithdrawn(conversation: chat(1), agent: ann, offer: token(1), reason: .agentChanged),
            h.agentChanged(ann, .online, capacity: 2, load: 1, groups: [sales], .command),
            h.offerMade(1, to: bob, offer: 3, attempt: 2)) + [h.wakeUpAfterRing])
    }

    @Test func removingAnAgentWithdrawsItsRingsAndRequeuesItsSessions() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 2, groups: [sales])
        h.request(1)
        h.accept(ann, 1, offer: 1)
        h.request(2)
        h.addAgent(bob, capacity: 2)
        #expect(h.send(.agentRemove(agent: ann)) == h.events(
            .offerWithdrawn(conversation: chat(2), agent: ann, offer: token(2), reason: .agentRemoved),
            h.agentChanged(ann, .offline, capacity: 2, groups: [sales], .removed),
            h.offerMade(2, to: bob, offer: 3, attempt: 2),
            h.queued(1, position: 1, .agentRemoved),
            h.offerMade(1, to: bob, offer: 4)) + [h.wakeUpAfterRing])
    }

    // MARK: - Automatic service

    @Test func automaticServiceAssignsWithNoRing() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(autoAccept: true))
        h.addAgent(ann)
        #expect(h.request(1) == h.events(h.assigned(1, to: ann, offer: nil, .autoAccepted)))
    }

    @Test func anAgentsAutoAcceptOverridesTheDesk() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(autoAccept: true))
        h.addAgent(ann, autoAccept: false)
        #expect(h.request(1) == h.events(h.offerMade(1, to: ann, offer: 1)) + [h.wakeUpAfterRing])

        var other = RouterHarness()
        other.configure()
        other.addAgent(bob, autoAccept: true)
        #expect(other.request(1) == other.events(other.assigned(1, to: bob, offer: nil, .autoAccepted)))
    }

    // MARK: - Ending

    @Test func endingASessionFreesCapacityForTheWaitingQueue() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        h.request(2)
        #expect(h.send(.sessionEnd(agent: ann, conversation: chat(1))) == h.events(
            .conversationEnded(conversation: chat(1), agent: ann, reason: .agent),
            h.offerMade(2, to: ann, offer: 2)) + [h.wakeUpAfterRing])
    }

    @Test func onlyTheServingAgentCanEndASession() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        #expect(h.send(.sessionEnd(agent: bob, conversation: chat(1))) == h.events(
            h.rejected("session.end", bob, 1, .notServing)))
        #expect(h.send(.sessionEnd(agent: bob, conversation: chat(2))) == h.events(
            h.rejected("session.end", bob, 2, .unknownConversation)))
    }

    @Test func thePlatformEndsAWaitingConversation() {
        var h = RouterHarness()
        h.configure()
        h.request(1)
        h.request(2)
        #expect(h.send(.conversationEnded(conversation: chat(1), by: .user)) == h.events(
            .conversationEnded(conversation: chat(1), agent: nil, reason: .user)))
        #expect(h.request(3) == h.events(h.queued(3, position: 2, .noAgent)))
    }

    @Test func thePlatformEndsARingingConversationWithdrawingTheOffer() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        #expect(h.send(.conversationEnded(conversation: chat(1), by: .admin)) == h.events(
            .offerWithdrawn(conversation: chat(1), agent: ann, offer: token(1), reason: .conversationEnded),
            .conversationEnded(conversation: chat(1), agent: nil, reason: .admin)))
    }

    @Test func thePlatformEndsAServedConversationAndRepeatsAreHarmless() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        h.request(2)
        #expect(h.send(.conversationEnded(conversation: chat(1), by: .inactivity)) == h.events(
            .conversationEnded(conversation: chat(1), agent: ann, reason: .inactivity),
            h.offerMade(2, to: ann, offer: 2)) + [h.wakeUpAfterRing])
        #expect(h.send(.conversationEnded(conversation: chat(1), by: .user)) == [h.wakeUpAfterRing])
        #expect(h.send(.conversationEnded(conversation: chat(9), by: .admin)) == [h.wakeUpAfterRing])
    }

    // MARK: - Transfers

    @Test func aTransferToAnAvailableAgentAssignsItDirectly() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        #expect(h.send(.sessionTransfer(agent: ann, conversation: chat(1), to: .agent(bob))) == h.events(
            h.assigned(1, to: bob, offer: nil, .transferred)))
        #expect(h.send(.sessionEnd(agent: ann, conversation: chat(1))) == h.events(
            h.rejected("session.end", ann, 1, .notServing)))
    }

    @Test func aTransferToAnUnavailableOrUnknownAgentIsRejected() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob, online: false)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        #expect(h.send(.sessionTransfer(agent: ann, conversation: chat(1), to: .agent(bob))) == h.events(
            h.rejected("session.transfer", ann, 1, .agentUnavailable)))
        #expect(h.send(.sessionTransfer(agent: ann, conversation: chat(1), to: .agent(zed))) == h.events(
            h.rejected("session.transfer", ann, 1, .unknownAgent)))
    }

    @Test func aTransferToAGroupRequeuesItThereAndOffersIt() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.addAgent(bob, groups: [billing])
        h.request(1)
        h.accept(ann, 1, offer: 1)
        #expect(h.send(.sessionTransfer(agent: ann, conversation: chat(1), to: .group(billing))) == h.events(
            h.queued(1, position: 1, .transferred),
            h.offerMade(1, to: bob, offer: 2)) + [h.wakeUpAfterRing])
    }

    @Test func aTransferWithNoTargetGoesBackToItsQueueButNotToTheSameAgent() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        #expect(h.send(.sessionTransfer(agent: ann, conversation: chat(1), to: nil)) == h.events(
            h.queued(1, position: 1, .transferred)))
        #expect(h.addAgent(bob) == h.events(
            h.agentChanged(bob, .online, .command),
            h.offerMade(1, to: bob, offer: 2)) + [h.wakeUpAfterRing])
    }

    @Test func aTransferToOneselfIsRejectedAsInvalid() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        h.accept(ann, 1, offer: 1)
        #expect(h.send(.sessionTransfer(agent: ann, conversation: chat(1), to: .agent(ann))) == h.events(
            h.rejected("session.transfer", ann, 1, .invalid)))
    }

    @Test func aLateDeclineIsRejectedAsExpired() {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann)
        h.request(1)
        h.tick(at: routerT0 + ring)
        #expect(h.send(.offerDecline(agent: ann, conversation: chat(1), offer: token(1), reason: nil)) == h.events(
            h.rejected("offer.decline", ann, 1, .offerExpired)))
    }

    // MARK: - Bounded indexes

    @Test func theQueueKeepsItsOrderAfterManyConversationsLeftItOutOfOrder() {
        var h = RouterHarness()
        h.configure()
        h.request(1)
        h.request(2, priority: 1)
        for number in 100..<5_200 {
            h.request(number)
            h.send(.conversationEnded(conversation: chat(number), by: .user))
        }
        #expect(h.request(3) == h.events(h.queued(3, position: 3, .noAgent)))
        h.addAgent(ann, capacity: 3, online: false)
        #expect(h.send(.agentStatus(agent: ann, status: .online)) == h.events(
            h.agentChanged(ann, .online, capacity: 3, .command),
            h.offerMade(2, to: ann, offer: 1),
            h.offerMade(1, to: ann, offer: 2),
            h.offerMade(3, to: ann, offer: 3)) + [h.wakeUpAfterRing])
    }

    @Test func routingStaysRightAfterManyAgentChanges() {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(autoAccept: true))
        h.addAgent(ann)
        h.addAgent(bob)
        for _ in 0..<4_200 {
            h.send(.agentStatus(agent: ann, status: .break))
            h.send(.agentStatus(agent: ann, status: .online))
        }
        h.send(.agentStatus(agent: ann, status: .offline))
        #expect(h.request(1) == h.events(h.assigned(1, to: bob, offer: nil, .autoAccepted)))
        #expect(h.request(2) == h.events(h.queued(2, position: 1, .noAgent)))
        #expect(h.send(.agentStatus(agent: ann, status: .online)) == h.events(
            h.agentChanged(ann, .online, .command),
            h.assigned(2, to: ann, offer: nil, .autoAccepted)))
    }
}
