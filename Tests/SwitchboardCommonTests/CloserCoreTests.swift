import Foundation
import SwitchboardCommon
import Testing

private let desk = try! DeskID("acme")
private let otherDesk = try! DeskID("zeta")
private let ann = try! AgentID("ann")
private let bob = try! AgentID("bob")
private let chat1 = try! ConversationID("c1")
private let chat2 = try! ConversationID("c2")
private let chat3 = try! ConversationID("c3")
private let user1 = try! UserID("u1")
private let t0 = Instant(millisecondsSinceEpoch: 1_764_093_600_000)
private let closureText = "Closed for lack of reply."
private let warningText = "Still there?"

/// Feeds Router events with consecutive per-desk seq numbers and chat messages with unique ids.
private struct CloserHarness {
    var core: CloserCore
    var seqByDesk: [DeskID: UInt64] = [:]
    var messageCount = 0

    init(limits: CloserCore.Limits = CloserCore.Limits()) {
        core = CloserCore(limits: limits)
    }

    mutating func event(_ body: RouterEventBody, desk: DeskID = desk, at now: Instant) -> [CloserCore.Effect] {
        seqByDesk[desk, default: 0] += 1
        return core.handle(.routerEvent(RouterEvent(desk: desk, seq: seqByDesk[desk]!, at: now, body: body)), at: now)
    }

    mutating func configure(
        desk: DeskID = desk, inactivityMs: Milliseconds = 60_000, warningMs: Milliseconds = 0, at now: Instant = t0
    ) -> [CloserCore.Effect] {
        var settings = DeskSettings()
        settings.inactivityMs = inactivityMs
        settings.warningMs = warningMs
        settings.closureText = closureText
        settings.warningText = warningText
        return event(.deskConfigured(settings: settings), desk: desk, at: now)
    }

    mutating func assign(
        _ conversation: ConversationID = chat1, desk: DeskID = desk, to agent: AgentID = ann,
        mode: AssignMode = .autoAccepted, at now: Instant = t0
    ) -> [CloserCore.Effect] {
        event(.conversationAssigned(conversation: conversation, user: user1, agent: agent, offer: nil, mode: mode),
              desk: desk, at: now)
    }

    /// An agent's message names `agent` (`ann` unless told; `nil`: it names none).
    mutating func post(
        _ from: MessageAuthor, sentAt: Instant, in conversation: ConversationID = chat1, desk: DeskID = desk,
        by agent: AgentID? = ann, arrivingAt now: Instant? = nil
    ) -> [CloserCore.Effect] {
        messageCount += 1
        let posted = PostedMessage(conversation: conversation, from: from, agent: from == .agent ? agent : nil, sentAt: sentAt)
        let message = InboundMessage(id: try! MessageID("m-\(messageCount)"), desk: desk, at: sentAt, body: .messagePosted(posted))
        return core.handle(.message(message), at: now ?? sentAt)
    }

    mutating func tick(at now: Instant) -> [CloserCore.Effect] {
        core.handle(.tick, at: now)
    }
}

private func closure(_ conversation: ConversationID = chat1, desk: DeskID = desk, at now: Instant) -> [CloserCore.Effect] {
    [
        .publish(OutboundMessage(desk: desk, at: now, body: .closureMessage(
            conversation: conversation, user: user1, text: closureText, idempotencyKey: "closure:\(conversation)"))),
        .send(InboundMessage(
            id: try! MessageID("inactivity:\(desk):\(conversation)"), desk: desk, at: now,
            body: .conversationEnded(conversation: conversation, by: .inactivity))),
    ]
}

private func warning(_ conversation: ConversationID = chat1, agentMessageAt: Instant, at now: Instant) -> CloserCore.Effect {
    .publish(OutboundMessage(desk: desk, at: now, body: .inactivityWarning(
        conversation: conversation, user: user1, text: warningText,
        idempotencyKey: "warning:\(conversation):\(agentMessageAt.millisecondsSinceEpoch)")))
}

/// A desk configured with a 60 s inactivity limit and `chat1` served.
private func servedConversation(warningMs: Milliseconds = 0) -> CloserHarness {
    var closer = CloserHarness()
    _ = closer.configure(warningMs: warningMs)
    _ = closer.assign()
    return closer
}

@Suite struct CloserCoreTests {
    @Test func anUnansweredAgentMessageClosesTheConversationAtItsDeadline() {
        var closer = servedConversation()
        let sent = t0 + 1_000
        #expect(closer.post(.agent, sentAt: sent) == [.wakeUp(at: sent + 60_000)])
        #expect(closer.tick(at: sent + 59_999) == [.wakeUp(at: sent + 60_000)])
        #expect(closer.tick(at: sent + 60_000) == closure(at: sent + 60_000))
        #expect(closer.tick(at: sent + 120_000) == [])
    }

    @Test func aUserReplySentAtOrAfterTheAgentMessageStopsTheClock() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        _ = closer.post(.user, sentAt: t0 + 1_000)
        #expect(closer.tick(at: t0 + 61_000) == [])
    }

    @Test func messagesAreOrderedBySentAtNotByArrival() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 5_000)
        // A user message written before the agent's, delivered after it, does not answer it.
        #expect(closer.post(.user, sentAt: t0 + 4_000, arrivingAt: t0 + 6_000) == [.wakeUp(at: t0 + 65_000)])
        // An agent message written before the user's reply, delivered after it, does not restart the clock.
        _ = closer.post(.user, sentAt: t0 + 7_000)
        #expect(closer.post(.agent, sentAt: t0 + 6_500, arrivingAt: t0 + 8_000) == [.wakeUp(at: t0 + 65_000)])
        #expect(closer.tick(at: t0 + 65_000) == [])
    }

    @Test func theClockRunsFromTheAgentsLatestUnansweredMessage() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        _ = closer.post(.agent, sentAt: t0 + 30_000)
        #expect(closer.tick(at: t0 + 61_000) == [.wakeUp(at: t0 + 90_000)])
        #expect(closer.tick(at: t0 + 90_000) == closure(at: t0 + 90_000))
    }

    @Test func inactivityZeroNeverCloses() {
        var closer = CloserHarness()
        _ = closer.configure(inactivityMs: 0)
        _ = closer.assign()
        #expect(closer.post(.agent, sentAt: t0) == [])
        #expect(closer.tick(at: t0 + 10_000_000) == [])
    }

    @Test func messagesForADeskNeverConfiguredAreDeadLettered() {
        var closer = CloserHarness()
        #expect(closer.post(.agent, sentAt: t0) == [.deadLetter(reason: "message.posted: unknown desk acme")])
    }

    @Test func inboundTypesOtherThanMessagePostedAreDeadLettered() throws {
        var closer = servedConversation()
        let ended = InboundMessage(
            id: try MessageID("x-1"), desk: desk, at: t0, body: .conversationEnded(conversation: chat1, by: .user))
        #expect(closer.core.handle(.message(ended), at: t0) == [
            .deadLetter(reason: "conversation.ended: the Closer takes only message.posted"),
        ])
    }

    @Test func messagesBeforeTheAssignmentCountOnceItArrives() {
        var closer = CloserHarness()
        _ = closer.configure()
        #expect(closer.post(.agent, sentAt: t0 + 1_000) == [])
        #expect(closer.assign(at: t0 + 2_000) == [.wakeUp(at: t0 + 61_000)])
        #expect(closer.tick(at: t0 + 61_000) == closure(at: t0 + 61_000))
    }

    @Test func aReplyBeforeTheAssignmentAlsoCounts() {
        var closer = CloserHarness()
        _ = closer.configure()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        _ = closer.post(.user, sentAt: t0 + 1_500)
        #expect(closer.assign(at: t0 + 2_000) == [])
    }

    @Test func theEndOfTheConversationStopsTheClockAndLaterMessagesAreIgnored() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        #expect(closer.event(.conversationEnded(conversation: chat1, agent: ann, reason: .user), at: t0 + 2_000) == [])
        #expect(closer.post(.agent, sentAt: t0 + 3_000) == [])
        #expect(closer.tick(at: t0 + 70_000) == [])
        #expect(closer.core.servedCount == 0)
    }

    @Test(arguments: [QueueReason.transferred, .agentRemoved])
    func aRequeueStopsTheClockAndTheNextAgentStartsWithoutOne(reason: QueueReason) {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        #expect(closer.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: reason), at: t0 + 2_000) == [])
        #expect(closer.tick(at: t0 + 70_000) == [])
        #expect(closer.assign(to: bob, at: t0 + 71_000) == [])
        #expect(closer.post(.agent, sentAt: t0 + 72_000, by: bob) == [.wakeUp(at: t0 + 132_000)])
    }

    @Test func messageTimesOutliveARequeueSoAnEarlierSentMessageCannotMoveTheClockBack() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 5_000)
        _ = closer.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: .transferred), at: t0 + 6_000)
        _ = closer.post(.agent, sentAt: t0 + 7_000, in: chat1, by: bob)
        _ = closer.assign(to: bob, at: t0 + 8_000)
        // Written (by the clock of its sender) before the latest message already seen: it starts nothing.
        #expect(closer.post(.agent, sentAt: t0 + 6_500, by: bob) == [.wakeUp(at: t0 + 67_000)])
        #expect(closer.tick(at: t0 + 67_000) == closure(at: t0 + 67_000))
    }

    @Test func aTransferStartsTheNewAgentWithNoRunningClock() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        // The old timer stays set and finds nothing to do.
        #expect(closer.assign(to: bob, mode: .transferred, at: t0 + 2_000) == [.wakeUp(at: t0 + 61_000)])
        #expect(closer.tick(at: t0 + 70_000) == [])
        // A message written before the latest one already seen does not start it either.
        #expect(closer.post(.agent, sentAt: t0 + 900, by: bob, arrivingAt: t0 + 71_000) == [])
        #expect(closer.post(.agent, sentAt: t0 + 80_000, by: bob) == [.wakeUp(at: t0 + 140_000)])
    }

    /// Chat messages and Router facts come through different queues: the former agent's last message may
    /// arrive after the handover.
    @Test func theFormerAgentsMessageArrivingAfterATransferStartsNoClock() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        _ = closer.assign(to: bob, mode: .transferred, at: t0 + 3_000)
        _ = closer.post(.agent, sentAt: t0 + 2_000, by: ann, arrivingAt: t0 + 3_100)
        #expect(closer.tick(at: t0 + 70_000) == [])
        // Through the queue, to another agent.
        #expect(closer.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: .transferred), at: t0 + 71_000)
            == [])
        _ = closer.post(.agent, sentAt: t0 + 70_500, by: bob, arrivingAt: t0 + 71_100)
        #expect(closer.assign(to: ann, mode: .accepted, at: t0 + 72_000) == [])
        #expect(closer.tick(at: t0 + 140_000) == [])
        #expect(closer.post(.agent, sentAt: t0 + 150_000) == [.wakeUp(at: t0 + 210_000)])
    }

    @Test(arguments: [AssignMode.transferred, .accepted])
    func theFormerAgentsLateMessageStartsNoClockWhenTheConversationComesBackToHer(through mode: AssignMode) {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        switch mode {
        case .transferred:
            _ = closer.assign(to: bob, mode: .transferred, at: t0 + 3_000)
        case .accepted, .autoAccepted:
            _ = closer.event(
                .conversationQueued(conversation: chat1, user: user1, position: 1, reason: .transferred), at: t0 + 3_000)
        }
        // Written before the handover, arriving after it.
        _ = closer.post(.agent, sentAt: t0 + 2_000, by: ann, arrivingAt: t0 + 3_100)
        _ = closer.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: .transferred), at: t0 + 4_000)
        #expect(closer.assign(to: ann, mode: .accepted, at: t0 + 5_000) == [])
        #expect(closer.tick(at: t0 + 70_000) == [])
        #expect(closer.post(.agent, sentAt: t0 + 71_000) == [.wakeUp(at: t0 + 131_000)])
    }

    @Test func theNewAgentsMessageArrivingBeforeItsAssignmentStartsTheClockWhenItDoes() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        // Bob got it at t0 + 2_000 and wrote at once; the Router's fact is still on its way.
        #expect(closer.post(.agent, sentAt: t0 + 2_500, by: bob) == [.wakeUp(at: t0 + 61_000)])
        #expect(closer.assign(to: bob, mode: .transferred, at: t0 + 3_000) == [.wakeUp(at: t0 + 61_000)])
        #expect(closer.tick(at: t0 + 61_000) == [.wakeUp(at: t0 + 62_500)])
        #expect(closer.tick(at: t0 + 62_500) == closure(at: t0 + 62_500))
    }

    @Test func theNewAgentsMessageArrivingBeforeItsAssignmentFromTheQueueStartsTheClockWhenItDoes() {
        var closer = servedConversation()
        _ = closer.event(
            .conversationQueued(conversation: chat1, user: user1, position: 1, reason: .transferred), at: t0 + 1_000)
        _ = closer.post(.agent, sentAt: t0 + 2_000, by: bob)
        _ = closer.post(.agent, sentAt: t0 + 1_500, by: ann)
        #expect(closer.assign(to: bob, mode: .accepted, at: t0 + 3_000) == [.wakeUp(at: t0 + 62_000)])
    }

    @Test func aMessageNamingNoAgentCountsForWhoeverServes() {
        var closer = servedConversation()
        #expect(closer.assign(to: bob, mode: .transferred, at: t0 + 1_000) == [])
        #expect(closer.post(.agent, sentAt: t0 + 2_000, by: nil) == [.wakeUp(at: t0 + 62_000)])
    }

    @Test func aMessageDatedAfterItArrivedCountsAsSentWhenItArrived() {
        var closer = servedConversation()
        let farAhead = Instant(millisecondsSinceEpoch: 4_070_908_800_000)
        _ = closer.post(.agent, sentAt: t0 + 1_000)
        // A reply from a sender whose clock runs years ahead answers what came before it, not what comes after.
        _ = closer.post(.user, sentAt: farAhead, arrivingAt: t0 + 2_000)
        #expect(closer.post(.agent, sentAt: t0 + 3_000) == [.wakeUp(at: t0 + 61_000)])
        #expect(closer.tick(at: t0 + 61_000) == [.wakeUp(at: t0 + 63_000)])
        // An agent's message dated ahead sets the deadline from its arrival.
        _ = closer.post(.user, sentAt: t0 + 4_000)
        #expect(closer.post(.agent, sentAt: farAhead, arrivingAt: t0 + 5_000) == [.wakeUp(at: t0 + 63_000)])
        #expect(closer.tick(at: t0 + 63_000) == [.wakeUp(at: t0 + 65_000)])
        #expect(closer.tick(at: t0 + 65_000) == closure(at: t0 + 65_000))
    }

    @Test func aSnapshotOfAnOlderVersionWithoutTheServingAgentCountsEveryAgentsMessage() throws {
        var closer = servedConversation()
        var state = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(closer.core)) as? [String: Any])
        var served = try #require(state["served"] as? [String: Any])
        for column in ["agents", "held", "formerAgents"] {
            #expect(served.removeValue(forKey: column) != nil)
        }
        state["served"] = served
        closer.core = try JSONDecoder().decode(CloserCore.self, from: JSONSerialization.data(withJSONObject: state))
        #expect(closer.post(.agent, sentAt: t0 + 1_000, by: bob) == [.wakeUp(at: t0 + 61_000)])
    }

    @Test func theAgentAndAHeldMessageSurviveASnapshot() throws {
        var closer = servedConversation()
        #expect(closer.post(.agent, sentAt: t0 + 2_500, by: bob) == [])
        closer.core = try JSONDecoder().decode(CloserCore.self, from: JSONEncoder().encode(closer.core))
        #expect(closer.assign(to: bob, mode: .transferred, at: t0 + 3_000) == [.wakeUp(at: t0 + 62_500)])
        closer.core = try JSONDecoder().decode(CloserCore.self, from: JSONEncoder().encode(closer.core))
        _ = closer.post(.user, sentAt: t0 + 3_500)
        // Ann's, written before her page showed the transfer: not hers to count any more.
        #expect(closer.post(.agent, sentAt: t0 + 4_000, by: ann) == [.wakeUp(at: t0 + 62_500)])
        #expect(closer.tick(at: t0 + 62_500) == [])
    }

    @Test func aWarningPrecedesTheClosure() {
        var closer = servedConversation(warningMs: 10_000)
        let sent = t0 + 1_000
        #expect(closer.post(.agent, sentAt: sent) == [.wakeUp(at: sent + 50_000)])
        #expect(closer.tick(at: sent + 50_000) == [
            warning(agentMessageAt: sent, at: sent + 50_000),
            .wakeUp(at: sent + 60_000),
        ])
        #expect(closer.tick(at: sent + 60_000) == closure(at: sent + 60_000))
    }

    @Test func aNewAgentMessageAfterTheWarningWarnsAgainWithANewKey() {
        var closer = servedConversation(warningMs: 10_000)
        _ = closer.post(.agent, sentAt: t0)
        _ = closer.tick(at: t0 + 50_000)
        _ = closer.post(.agent, sentAt: t0 + 55_000)
        #expect(closer.tick(at: t0 + 60_000) == [.wakeUp(at: t0 + 105_000)])
        #expect(closer.tick(at: t0 + 105_000) == [
            warning(agentMessageAt: t0 + 55_000, at: t0 + 105_000),
            .wakeUp(at: t0 + 115_000),
        ])
    }

    @Test func aReplyAfterTheWarningCancelsTheClosure() {
        var closer = servedConversation(warningMs: 10_000)
        _ = closer.post(.agent, sentAt: t0)
        _ = closer.tick(at: t0 + 50_000)
        _ = closer.post(.user, sentAt: t0 + 52_000)
        #expect(closer.tick(at: t0 + 60_000) == [])
    }

    @Test func aLateTickPastTheDeadlineClosesWithoutAWarning() {
        var closer = servedConversation(warningMs: 10_000)
        _ = closer.post(.agent, sentAt: t0)
        #expect(closer.tick(at: t0 + 75_000) == closure(at: t0 + 75_000))
    }

    @Test func aConversationIsClosedAtMostOnceEvenIfAssignedAgain() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0)
        #expect(closer.tick(at: t0 + 60_000) == closure(at: t0 + 60_000))
        _ = closer.event(.conversationEnded(conversation: chat1, agent: ann, reason: .inactivity), at: t0 + 60_100)
        #expect(closer.assign(at: t0 + 61_000) == [])
        #expect(closer.post(.agent, sentAt: t0 + 62_000) == [])
        #expect(closer.tick(at: t0 + 200_000) == [])
    }

    @Test func aConversationEndedByOthersCanBeServedAgain() {
        var closer = servedConversation()
        _ = closer.event(.conversationEnded(conversation: chat1, agent: ann, reason: .user), at: t0 + 1_000)
        _ = closer.assign(at: t0 + 2_000)
        #expect(closer.post(.agent, sentAt: t0 + 3_000) == [.wakeUp(at: t0 + 63_000)])
    }

    @Test func duplicateRouterEventsAreIgnored() {
        var closer = servedConversation()
        let replayed = RouterEvent(desk: desk, seq: 2, at: t0, body: .conversationAssigned(
            conversation: chat2, user: user1, agent: ann, offer: nil, mode: .autoAccepted))
        #expect(closer.core.handle(.routerEvent(replayed), at: t0) == [])
        #expect(closer.post(.agent, sentAt: t0, in: chat2) == [])
        #expect(closer.core.servedCount == 1)
    }

    @Test func aDuplicateMessageIsHarmless() {
        var closer = servedConversation()
        let posted = InboundMessage(
            id: try! MessageID("m-dup"), desk: desk, at: t0,
            body: .messagePosted(PostedMessage(conversation: chat1, from: .agent, agent: ann, sentAt: t0)))
        #expect(closer.core.handle(.message(posted), at: t0) == [.wakeUp(at: t0 + 60_000)])
        #expect(closer.core.handle(.message(posted), at: t0 + 10) == [.wakeUp(at: t0 + 60_000)])
        #expect(closer.tick(at: t0 + 60_000) == closure(at: t0 + 60_000))
    }

    @Test func messagesWaitingForAnAssignmentAreBoundedOldestForgottenFirst() {
        var closer = CloserHarness(limits: CloserCore.Limits(unassignedConversations: 2))
        _ = closer.configure()
        _ = closer.post(.agent, sentAt: t0, in: chat1)
        _ = closer.post(.agent, sentAt: t0, in: chat2)
        _ = closer.post(.agent, sentAt: t0, in: chat3)
        #expect(closer.assign(chat1) == [])
        #expect(closer.assign(chat2) == [.wakeUp(at: t0 + 60_000)])
        #expect(closer.assign(chat3) == [.wakeUp(at: t0 + 60_000)])
    }

    @Test func endedConversationsAreBoundedOldestForgottenFirst() {
        var closer = CloserHarness(limits: CloserCore.Limits(endedConversations: 1))
        _ = closer.configure()
        _ = closer.assign(chat1)
        _ = closer.post(.agent, sentAt: t0, in: chat1)
        #expect(closer.tick(at: t0 + 60_000) == closure(chat1, at: t0 + 60_000))
        _ = closer.event(.conversationEnded(conversation: chat2, agent: nil, reason: .user), at: t0 + 60_000)
        // chat1 is forgotten: an assignment is tracked again, chat2 still is not taking messages.
        #expect(closer.post(.agent, sentAt: t0 + 61_000, in: chat2) == [])
        #expect(closer.post(.agent, sentAt: t0 + 61_000, in: chat1) == [])
        #expect(closer.assign(chat1, at: t0 + 62_000) == [.wakeUp(at: t0 + 121_000)])
    }

    @Test func aSmallerEndedMemoryForgetsTheOldestAtOnce() throws {
        var closer = CloserHarness()
        _ = closer.configure()
        _ = closer.event(.conversationEnded(conversation: chat1, agent: nil, reason: .user), at: t0)
        _ = closer.event(.conversationEnded(conversation: chat2, agent: nil, reason: .user), at: t0)
        let small = CloserCore.Limits(unassignedConversations: 5, endedConversations: 1)
        closer.core.changeLimits(to: small)
        #expect(closer.core.limits == small)
        // chat1 is forgotten: its messages wait for an assignment again; chat2 is still ended, its messages dropped.
        #expect(closer.post(.agent, sentAt: t0 + 1_000, in: chat2) == [])
        #expect(closer.post(.agent, sentAt: t0 + 1_000, in: chat1) == [])
        #expect(closer.assign(chat1, at: t0 + 2_000) == [.wakeUp(at: t0 + 61_000)])
        let restored = try WireCodec.decodeSnapshot(CloserCore.self, from: WireCodec.encodeSnapshot(closer.core))
        #expect(restored == closer.core)
    }

    @Test func aShorterInactivitySettingMovesRunningDeadlinesEarlier() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0)
        #expect(closer.configure(inactivityMs: 20_000, at: t0 + 5_000) == [.wakeUp(at: t0 + 20_000)])
        #expect(closer.tick(at: t0 + 20_000) == closure(at: t0 + 20_000))
    }

    @Test func aLongerInactivitySettingPostponesRunningDeadlines() {
        var closer = servedConversation()
        _ = closer.post(.agent, sentAt: t0)
        _ = closer.configure(inactivityMs: 90_000, at: t0 + 5_000)
        #expect(closer.tick(at: t0 + 60_000) == [.wakeUp(at: t0 + 90_000)])
        #expect(closer.tick(at: t0 + 90_000) == closure(at: t0 + 90_000))
    }

    @Test func closuresDueTogetherFollowDeskThenConversationOrder() {
        var closer = CloserHarness()
        _ = closer.configure(desk: otherDesk)
        _ = closer.configure(desk: desk)
        _ = closer.assign(chat2, desk: desk)
        _ = closer.assign(chat1, desk: desk)
        _ = closer.assign(chat1, desk: otherDesk)
        _ = closer.post(.agent, sentAt: t0, in: chat2, desk: desk)
        _ = closer.post(.agent, sentAt: t0, in: chat1, desk: desk)
        _ = closer.post(.agent, sentAt: t0, in: chat1, desk: otherDesk)
        let now = t0 + 60_000
        #expect(closer.tick(at: now) == closure(chat1, desk: otherDesk, at: now) + closure(chat1, at: now) + closure(chat2, at: now))
    }

    @Test func dueActionsRunInOrderOfTheirOwnTimeEvenAfterTheClockMovedLater() {
        var closer = CloserHarness()
        _ = closer.configure()
        _ = closer.assign(chat1)
        _ = closer.assign(chat2)
        _ = closer.post(.agent, sentAt: t0, in: chat1)
        _ = closer.post(.agent, sentAt: t0 + 10_000, in: chat1)
        _ = closer.post(.agent, sentAt: t0 + 5_000, in: chat2)
        let now = t0 + 100_000
        #expect(closer.tick(at: now) == closure(chat2, at: now) + closure(chat1, at: now))
    }

    @Test func theInactivityEndIdFitsAMessageIdForTheLongestIdentifiers() throws {
        let longDesk = try DeskID(String(repeating: "d", count: 64))
        let longConversation = try ConversationID(String(repeating: "c", count: 64))
        var closer = CloserHarness()
        _ = closer.configure(desk: longDesk)
        _ = closer.event(.conversationAssigned(
            conversation: longConversation, user: user1, agent: ann, offer: nil, mode: .autoAccepted), desk: longDesk, at: t0)
        _ = closer.post(.agent, sentAt: t0, in: longConversation, desk: longDesk)
        let effects = closer.tick(at: t0 + 60_000)
        guard effects.count == 2, case .send(let ended) = effects[1] else {
            Issue.record("expected a closure and an end, got \(effects)")
            return
        }
        #expect(ended.id.rawValue.utf8.count <= 128)
        #expect(ended.id.rawValue.hasPrefix("inactivity:"))
        #expect(ended.id.rawValue.hasSuffix(":\(longConversation)"))
        #expect(ended.body == .conversationEnded(conversation: longConversation, by: .inactivity))
    }

    @Test func aSnapshotRestoredMidClockContinuesExactlyLikeTheOriginal() throws {
        var original = CloserHarness(limits: CloserCore.Limits(unassignedConversations: 2, endedConversations: 2))
        _ = original.configure(warningMs: 10_000)
        _ = original.assign(chat1)
        _ = original.post(.agent, sentAt: t0 + 1_000, in: chat1)
        _ = original.post(.agent, sentAt: t0 + 2_000, in: chat2)
        _ = original.event(.conversationEnded(conversation: chat3, agent: nil, reason: .user), at: t0 + 2_500)
        _ = original.post(.user, sentAt: t0 + 3_000, in: chat1)
        _ = original.post(.agent, sentAt: t0 + 4_000, in: chat1)

        let snapshot = try JSONEncoder().encode(original.core)
        var restored = original
        restored.core = try JSONDecoder().decode(CloserCore.self, from: snapshot)
        #expect(restored.core == original.core)

        var steps: [(inout CloserHarness) -> [CloserCore.Effect]] = []
        steps.append { $0.assign(chat2, at: t0 + 5_000) }
        steps.append { $0.tick(at: t0 + 52_000) }
        steps.append { $0.post(.agent, sentAt: t0 + 52_000, in: chat3) }
        steps.append { $0.tick(at: t0 + 54_000) }
        steps.append { $0.tick(at: t0 + 62_000) }
        steps.append { $0.tick(at: t0 + 64_000) }
        for step in steps {
            let expected = step(&original)
            #expect(step(&restored) == expected)
        }
        #expect(restored.core == original.core)
    }
}
