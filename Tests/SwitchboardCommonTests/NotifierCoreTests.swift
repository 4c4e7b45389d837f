import Foundation
import SwitchboardCommon
import Testing

private let desk = try! DeskID("acme")
private let ann = try! AgentID("ann")
private let bob = try! AgentID("bob")
private let chat1 = try! ConversationID("c1")
private let chat2 = try! ConversationID("c2")
private let user1 = try! UserID("u1")
private let user2 = try! UserID("u2")
private let offer1 = try! OfferToken("o1")
private let offer2 = try! OfferToken("o2")
private let t0 = Instant(millisecondsSinceEpoch: 1_764_093_600_000)

/// Feeds Router events with consecutive per-desk seq numbers.
private struct NotifierHarness {
    var core = NotifierCore()
    var seq: UInt64 = 0

    mutating func event(_ body: RouterEventBody, at now: Instant) -> [NotifierCore.Effect] {
        seq += 1
        return core.handle(.routerEvent(RouterEvent(desk: desk, seq: seq, at: now, body: body)), at: now)
    }

    mutating func tick(at now: Instant) -> [NotifierCore.Effect] {
        core.handle(.tick, at: now)
    }

    mutating func configure(countdownEveryMs: Milliseconds, at now: Instant = t0) -> [NotifierCore.Effect] {
        var settings = DeskSettings()
        settings.countdownEveryMs = countdownEveryMs
        return event(.deskConfigured(settings: settings), at: now)
    }

    mutating func offer(
        _ conversation: ConversationID = chat1, to agent: AgentID = ann, offer: OfferToken = offer1,
        at now: Instant = t0, ringMs: Milliseconds = 10_000
    ) -> [NotifierCore.Effect] {
        event(.offerMade(
            conversation: conversation, user: user1, agent: agent, offer: offer, attempt: 1,
            expiresAt: now + ringMs, ringMs: ringMs), at: now)
    }
}

private func publish(
    _ agent: AgentID, seq: UInt64, at now: Instant, _ body: WorkstationEventBody
) -> NotifierCore.Effect {
    .publish(WorkstationEvent(desk: desk, agent: agent, seq: seq, at: now, body: body))
}

private func ring(
    _ conversation: ConversationID = chat1, user: UserID = user1, offer: OfferToken = offer1, at now: Instant,
    expiresAt: Instant
) -> WorkstationEventBody {
    .ring(
        conversation: conversation, user: user, offer: offer, expiresAt: expiresAt,
        remainingMs: max(0, expiresAt - now), serverTime: now)
}

@Suite struct NotifierCoreTests {
    @Test func offerMadeRingsTheAgentAndArmsTheFirstCountdown() {
        var notifier = NotifierHarness()
        #expect(notifier.offer() == [
            publish(ann, seq: 1, at: t0, ring(at: t0, expiresAt: t0 + 10_000)),
            .wakeUp(at: t0 + 1_000),
        ])
    }

    @Test func countdownsFollowTheCadenceAndRepeatTheLatestSeq() {
        var notifier = NotifierHarness()
        _ = notifier.offer()
        #expect(notifier.tick(at: t0 + 1_000) == [
            publish(ann, seq: 1, at: t0 + 1_000, .countdown(conversation: chat1, offer: offer1, remainingMs: 9_000)),
            .wakeUp(at: t0 + 2_000),
        ])
        #expect(notifier.tick(at: t0 + 2_000) == [
            publish(ann, seq: 1, at: t0 + 2_000, .countdown(conversation: chat1, offer: offer1, remainingMs: 8_000)),
            .wakeUp(at: t0 + 3_000),
        ])
    }

    @Test func anEarlyTickEmitsNothingAndKeepsTheDeadline() {
        var notifier = NotifierHarness()
        _ = notifier.offer()
        #expect(notifier.tick(at: t0 + 999) == [.wakeUp(at: t0 + 1_000)])
    }

    @Test func aLateTickEmitsOnlyTheLatestDueCountdownAndStaysAnchored() {
        var notifier = NotifierHarness()
        _ = notifier.offer()
        #expect(notifier.tick(at: t0 + 3_400) == [
            publish(ann, seq: 1, at: t0 + 3_400, .countdown(conversation: chat1, offer: offer1, remainingMs: 6_600)),
            .wakeUp(at: t0 + 4_000),
        ])
    }

    @Test func countdownsStopBeforeExpiryAndAnUnstoppedRingIsForgottenAfterTheGrace() {
        var notifier = NotifierHarness()
        _ = notifier.offer(ringMs: 2_500)
        _ = notifier.tick(at: t0 + 1_000)
        #expect(notifier.tick(at: t0 + 2_000) == [
            publish(ann, seq: 1, at: t0 + 2_000, .countdown(conversation: chat1, offer: offer1, remainingMs: 500)),
            .wakeUp(at: t0 + 2_500 + NotifierCore.staleRingGraceMs),
        ])
        #expect(notifier.tick(at: t0 + 2_500 + NotifierCore.staleRingGraceMs) == [])
    }

    @Test func aTickPastExpiryButWithinTheGraceEmitsNoCountdown() {
        var notifier = NotifierHarness()
        _ = notifier.offer(ringMs: 2_500)
        #expect(notifier.tick(at: t0 + 2_600) == [.wakeUp(at: t0 + 2_500 + NotifierCore.staleRingGraceMs)])
    }

    @Test func theDeskCadenceAppliesAndZeroMeansNoCountdowns() {
        var notifier = NotifierHarness()
        #expect(notifier.configure(countdownEveryMs: 2_500) == [])
        #expect(notifier.offer() == [
            publish(ann, seq: 1, at: t0, ring(at: t0, expiresAt: t0 + 10_000)),
            .wakeUp(at: t0 + 2_500),
        ])

        var silent = NotifierHarness()
        _ = silent.configure(countdownEveryMs: 0)
        #expect(silent.offer() == [
            publish(ann, seq: 1, at: t0, ring(at: t0, expiresAt: t0 + 10_000)),
            .wakeUp(at: t0 + 10_000 + NotifierCore.staleRingGraceMs),
        ])
    }

    @Test func aRingAlreadyExpiredWhenMadeShowsZeroRemaining() {
        var notifier = NotifierHarness()
        let late = t0 + 12_000
        #expect(notifier.event(.offerMade(
            conversation: chat1, user: user1, agent: ann, offer: offer1, attempt: 1, expiresAt: t0 + 10_000,
            ringMs: 10_000), at: late) == [
            publish(ann, seq: 1, at: late, .ring(
                conversation: chat1, user: user1, offer: offer1, expiresAt: t0 + 10_000, remainingMs: 0,
                serverTime: late)),
            .wakeUp(at: t0 + 10_000 + NotifierCore.staleRingGraceMs),
        ])
    }

    @Test(arguments: [
        (RouterEventBody.offerExpired(conversation: chat1, agent: ann, offer: offer1), RingStopReason.expired),
        (.offerDeclined(conversation: chat1, agent: ann, offer: offer1, reason: "busy"), .declined),
        (.offerWithdrawn(conversation: chat1, agent: ann, offer: offer1, reason: .agentOffline), .withdrawn),
    ])
    func offerEndsStopTheRingAndItsCountdowns(stop: RouterEventBody, reason: RingStopReason) {
        var notifier = NotifierHarness()
        _ = notifier.offer()
        let now = t0 + 1_500
        #expect(notifier.event(stop, at: now) == [
            publish(ann, seq: 2, at: now, .ringStopped(conversation: chat1, offer: offer1, reason: reason)),
        ])
        #expect(notifier.tick(at: t0 + 2_000) == [])
    }

    @Test func aStopForAnEarlierOfferIsForwardedAndTheCurrentRingKeepsCountingDown() {
        var notifier = NotifierHarness()
        _ = notifier.offer(chat1, to: ann, offer: offer1)
        _ = notifier.offer(chat1, to: bob, offer: offer2, at: t0 + 100)
        #expect(notifier.event(.offerExpired(conversation: chat1, agent: ann, offer: offer1), at: t0 + 200) == [
            publish(ann, seq: 2, at: t0 + 200, .ringStopped(conversation: chat1, offer: offer1, reason: .expired)),
            .wakeUp(at: t0 + 1_100),
        ])
        #expect(notifier.tick(at: t0 + 1_100) == [
            publish(bob, seq: 1, at: t0 + 1_100, .countdown(conversation: chat1, offer: offer2, remainingMs: 9_000)),
            .wakeUp(at: t0 + 2_100),
        ])
    }

    @Test func acceptedAssignmentStopsTheRingThenStartsTheSession() {
        var notifier = NotifierHarness()
        _ = notifier.offer()
        let now = t0 + 3_000
        #expect(notifier.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: ann, offer: offer1, mode: .accepted), at: now) == [
            publish(ann, seq: 2, at: now, .ringStopped(conversation: chat1, offer: offer1, reason: .accepted)),
            publish(ann, seq: 3, at: now, .sessionStarted(conversation: chat1, user: user1, mode: .accepted)),
        ])
        #expect(notifier.tick(at: t0 + 4_000) == [])
    }

    @Test func autoAcceptedAssignmentOnlyStartsTheSession() {
        var notifier = NotifierHarness()
        #expect(notifier.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: ann, offer: nil, mode: .autoAccepted), at: t0) == [
            publish(ann, seq: 1, at: t0, .sessionStarted(conversation: chat1, user: user1, mode: .autoAccepted)),
        ])
    }

    @Test func transferEndsThePreviousSessionAndStartsTheNewOne() {
        var notifier = NotifierHarness()
        _ = notifier.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: ann, offer: nil, mode: .autoAccepted), at: t0)
        let now = t0 + 60_000
        #expect(notifier.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: bob, offer: nil, mode: .transferred), at: now) == [
            publish(ann, seq: 2, at: now, .sessionEnded(conversation: chat1, reason: .transferred)),
            publish(bob, seq: 1, at: now, .sessionStarted(conversation: chat1, user: user1, mode: .transferred)),
        ])
        #expect(notifier.event(.conversationEnded(conversation: chat1, agent: nil, reason: .user), at: now) == [
            publish(bob, seq: 2, at: now, .sessionEnded(conversation: chat1, reason: .user)),
        ])
    }

    @Test func transferWithNoKnownPreviousAgentOnlyStartsTheSession() {
        var notifier = NotifierHarness()
        #expect(notifier.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: bob, offer: nil, mode: .transferred), at: t0) == [
            publish(bob, seq: 1, at: t0, .sessionStarted(conversation: chat1, user: user1, mode: .transferred)),
        ])
    }

    @Test(arguments: [
        (EndReason.agent, SessionEndReason.agent), (.user, .user), (.admin, .admin), (.inactivity, .inactivity),
    ])
    func conversationEndedEndsTheServingAgentsSession(reason: EndReason, shown: SessionEndReason) {
        var notifier = NotifierHarness()
        _ = notifier.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: ann, offer: nil, mode: .autoAccepted), at: t0)
        #expect(notifier.event(.conversationEnded(conversation: chat1, agent: ann, reason: reason), at: t0) == [
            publish(ann, seq: 2, at: t0, .sessionEnded(conversation: chat1, reason: shown)),
        ])
    }

    @Test func conversationEndedWhileRingingWithdrawsTheRing() {
        var notifier = NotifierHarness()
        _ = notifier.offer()
        let now = t0 + 500
        #expect(notifier.event(.conversationEnded(conversation: chat1, agent: nil, reason: .user), at: now) == [
            publish(ann, seq: 2, at: now, .ringStopped(conversation: chat1, offer: offer1, reason: .withdrawn)),
        ])
        #expect(notifier.tick(at: t0 + 1_000) == [])
    }

    @Test(arguments: [(QueueReason.transferred, SessionEndReason.transferred), (.agentRemoved, .agentRemoved)])
    func requeueOfAServedConversationEndsTheOldSession(reason: QueueReason, shown: SessionEndReason) {
        var notifier = NotifierHarness()
        _ = notifier.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: ann, offer: nil, mode: .autoAccepted), at: t0)
        #expect(notifier.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: reason), at: t0) == [
            publish(ann, seq: 2, at: t0, .sessionEnded(conversation: chat1, reason: shown)),
        ])
        #expect(notifier.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: reason), at: t0) == [])
    }

    @Test func queueingForLackOfAgentsTellsNoWorkstation() {
        var notifier = NotifierHarness()
        #expect(notifier.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: .noAgent), at: t0) == [])
        #expect(notifier.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: .attemptsExhausted), at: t0) == [])
    }

    @Test func statusChangesAreAnnouncedOnlyWhenTheStatusChanges() {
        var notifier = NotifierHarness()
        func changed(_ status: AgentStatus, _ reason: AgentChangeReason) -> RouterEventBody {
            .agentChanged(agent: ann, status: status, capacity: 2, load: 0, groups: [], reason: reason)
        }
        #expect(notifier.event(changed(.online, .command), at: t0) == [
            publish(ann, seq: 1, at: t0, .statusChanged(status: .online, reason: .command)),
        ])
        #expect(notifier.event(changed(.online, .assigned), at: t0) == [])
        #expect(notifier.event(changed(.break, .missedRings), at: t0) == [
            publish(ann, seq: 2, at: t0, .statusChanged(status: .break, reason: .missedRings)),
        ])
    }

    @Test func rejectionsGoToTheAgentWhoSentTheCommand() throws {
        var notifier = NotifierHarness()
        let rejection = CommandRejection(
            command: try MessageID("m-1"), commandType: "offer.accept", agent: ann, conversation: chat1,
            reason: .offerExpired)
        #expect(notifier.event(.commandRejected(rejection), at: t0) == [
            publish(ann, seq: 1, at: t0, .commandRejected(rejection)),
        ])
        var anonymous = rejection
        anonymous.agent = nil
        #expect(notifier.event(.commandRejected(anonymous), at: t0) == [])
    }

    @Test func agentStateIsForwardedAndResynchronisesRings() {
        var notifier = NotifierHarness()
        _ = notifier.offer(chat1, to: ann, offer: offer1)
        let now = t0 + 300
        let state = AgentState(
            agent: ann, status: .online,
            rings: [RingSummary(conversation: chat2, user: user2, offer: offer2, expiresAt: now + 5_000)],
            sessions: [])
        #expect(notifier.event(.agentState(state), at: now) == [
            publish(ann, seq: 2, at: now, .state(state)),
            .wakeUp(at: now + 1_000),
        ])
        // The ring on chat1 is no longer the Router's: no countdown for it; chat2 counts down from the sync.
        #expect(notifier.tick(at: t0 + 1_000) == [.wakeUp(at: now + 1_000)])
        #expect(notifier.tick(at: now + 1_000) == [
            publish(ann, seq: 2, at: now + 1_000, .countdown(conversation: chat2, offer: offer2, remainingMs: 4_000)),
            .wakeUp(at: now + 2_000),
        ])
    }

    /// The page shows the state's status: a change back from it is announced, though the Notifier never heard
    /// of the change the state reports.
    @Test func agentStateResynchronisesTheStatus() {
        var notifier = NotifierHarness()
        func changed(_ status: AgentStatus) -> RouterEventBody {
            .agentChanged(agent: ann, status: status, capacity: 1, load: 0, groups: [], reason: .command)
        }
        _ = notifier.event(changed(.online), at: t0)
        _ = notifier.event(.agentState(AgentState(agent: ann, status: .break, rings: [], sessions: [])), at: t0)
        #expect(notifier.event(changed(.online), at: t0) == [
            publish(ann, seq: 3, at: t0, .statusChanged(status: .online, reason: .command)),
        ])
    }

    @Test func agentStateResynchronisesSessions() {
        var notifier = NotifierHarness()
        let state = AgentState(agent: ann, status: .online, rings: [], sessions: [SessionSummary(conversation: chat1, user: user1)])
        _ = notifier.event(.agentState(state), at: t0)
        #expect(notifier.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: .transferred), at: t0) == [
            publish(ann, seq: 2, at: t0, .sessionEnded(conversation: chat1, reason: .transferred)),
        ])
    }

    @Test func eachAgentHasItsOwnSeqAndRingsDueTogetherFireInAStableOrder() {
        var notifier = NotifierHarness()
        _ = notifier.offer(chat2, to: bob, offer: offer2)
        _ = notifier.offer(chat1, to: ann, offer: offer1)
        _ = notifier.event(.agentChanged(agent: bob, status: .online, capacity: 1, load: 1, groups: [], reason: .assigned), at: t0)
        #expect(notifier.tick(at: t0 + 1_000) == [
            publish(ann, seq: 1, at: t0 + 1_000, .countdown(conversation: chat1, offer: offer1, remainingMs: 9_000)),
            publish(bob, seq: 2, at: t0 + 1_000, .countdown(conversation: chat2, offer: offer2, remainingMs: 9_000)),
            .wakeUp(at: t0 + 2_000),
        ])
    }

    @Test func duplicateAndOldRouterEventsAreIgnored() {
        var notifier = NotifierHarness()
        _ = notifier.offer()
        let again = RouterEvent(desk: desk, seq: 1, at: t0, body: .offerExpired(conversation: chat1, agent: ann, offer: offer1))
        #expect(notifier.core.handle(.routerEvent(again), at: t0) == [.wakeUp(at: t0 + 1_000)])
    }

    /// What the missing facts would have shown is unknown: every agent of the desk skips one seq, so that each
    /// gateway sees a gap and asks for the state.
    @Test func aGapInRouterSeqIsReportedTheEventStillAppliedAndEveryAgentOfTheDeskSkipsASeq() {
        var notifier = NotifierHarness()
        _ = notifier.offer()
        _ = notifier.event(.agentChanged(agent: bob, status: .online, capacity: 1, load: 0, groups: [], reason: .command), at: t0)
        let skipped = RouterEvent(desk: desk, seq: 5, at: t0, body: .offerExpired(conversation: chat1, agent: ann, offer: offer1))
        #expect(notifier.core.handle(.routerEvent(skipped), at: t0) == [
            .routerGap(desk: desk, expected: 3, got: 5),
            publish(ann, seq: 3, at: t0, .ringStopped(conversation: chat1, offer: offer1, reason: .expired)),
        ])
        notifier.seq = 5
        #expect(notifier.event(.agentChanged(agent: bob, status: .break, capacity: 1, load: 0, groups: [], reason: .command), at: t0) == [
            publish(bob, seq: 3, at: t0, .statusChanged(status: .break, reason: .command)),
        ])
        let stale = RouterEvent(desk: desk, seq: 4, at: t0, body: .offerMade(
            conversation: chat1, user: user1, agent: ann, offer: offer1, attempt: 1, expiresAt: t0 + 1, ringMs: 1))
        #expect(notifier.core.handle(.routerEvent(stale), at: t0) == [])
    }

    @Test func aSnapshotRestoredMidRingContinuesExactlyLikeTheOriginal() throws {
        var original = NotifierHarness()
        _ = original.configure(countdownEveryMs: 700)
        _ = original.offer(chat1, to: ann, offer: offer1)
        _ = original.offer(chat2, to: bob, offer: offer2, at: t0 + 200)
        _ = original.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: ann, offer: offer1, mode: .accepted), at: t0 + 300)
        _ = original.tick(at: t0 + 950)

        let snapshot = try JSONEncoder().encode(original.core)
        var restored = original
        restored.core = try JSONDecoder().decode(NotifierCore.self, from: snapshot)
        #expect(restored.core == original.core)

        var steps: [(inout NotifierHarness) -> [NotifierCore.Effect]] = []
        steps.append { $0.tick(at: t0 + 1_600) }
        steps.append { $0.event(.conversationAssigned(
            conversation: chat1, user: user1, agent: bob, offer: nil, mode: .transferred), at: t0 + 1_700) }
        steps.append { $0.tick(at: t0 + 4_000) }
        steps.append { $0.event(.offerDeclined(conversation: chat2, agent: bob, offer: offer2, reason: nil), at: t0 + 4_100) }
        steps.append { $0.offer(chat1, to: ann, offer: offer1, at: t0 + 5_000) }
        steps.append { $0.tick(at: t0 + 5_800) }
        for step in steps {
            let expected = step(&original)
            #expect(!expected.isEmpty)
            #expect(step(&restored) == expected)
        }
        #expect(restored.core == original.core)
    }
}
