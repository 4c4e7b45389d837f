import SwitchboardCommon
import SwitchboardGateway
import Testing

private let start = Instant(millisecondsSinceEpoch: 1_800_000_000_000)
private let socketA = SocketID(1)
private let socketB = SocketID(2)

/// Ids as a Notifier derives them: the same for every publication of the same event; `run` tells apart the
/// numberings of two Notifier histories.
private func counted(_ seq: UInt64, run: String = "a") -> RelayedEvent {
    RelayedEvent(seq: seq, kind: .counted, id: "ws-\(run)-\(seq)", text: "event-\(seq)")
}

private func countdown(_ seq: UInt64) -> RelayedEvent {
    RelayedEvent(seq: seq, kind: .countdown, id: "cd-\(seq)", text: "countdown-\(seq)")
}

private func state(_ seq: UInt64, run: String = "a") -> RelayedEvent {
    RelayedEvent(seq: seq, kind: .state, id: "ws-\(run)-\(seq)", text: "state-\(seq)")
}

/// A session with one open, subscribed socket whose presence is held, past its sign-in sync.
private func connectedSession(graceMs: Milliseconds = 15_000) -> AgentSession {
    var session = AgentSession(settings: .init(graceMs: graceMs))
    _ = session.handle(.socketOpened(socketA), at: start)
    _ = session.handle(.subscribed, at: start)
    _ = session.handle(.presenceHeld, at: start)
    return session
}

private func statusChanged(_ seq: UInt64, _ status: AgentStatus) -> RelayedEvent {
    RelayedEvent(seq: seq, kind: .counted, id: "ws-a-\(seq)", text: "status-\(seq)", status: status)
}

@Suite struct AgentSessionTests {
    @Test func signInAsksForSyncOnceTheQueueIsBoundAndThePresenceHeld() {
        var session = AgentSession(settings: .init(graceMs: 15_000))
        #expect(session.handle(.socketOpened(socketA), at: start) == [])
        #expect(session.handle(.subscribed, at: start) == [])
        #expect(session.handle(.presenceHeld, at: start) == [.requestSync])

        var heldFirst = AgentSession(settings: .init(graceMs: 15_000))
        #expect(heldFirst.handle(.socketOpened(socketA), at: start) == [])
        #expect(heldFirst.handle(.presenceHeld, at: start) == [])
        #expect(heldFirst.handle(.subscribed, at: start) == [.requestSync])
    }

    /// What was published while the broker connection was down is gone with the agent's queue: a reconnect
    /// asks for the state at once, even right after another sync. In the grace period, with no page to show it
    /// to, the page that comes back asks.
    @Test func aBrokerReconnectAsksForSyncAtOnce() {
        var session = connectedSession()
        #expect(session.handle(.brokerReconnected, at: start + 1) == [.requestSync])
        _ = session.handle(.socketClosed(socketA), at: start + 2)
        #expect(session.handle(.brokerReconnected, at: start + 3) == [])
        _ = session.handle(.socketOpened(socketB), at: start + 4)
        #expect(session.handle(.presenceHeld, at: start + 5) == [.requestSync])
    }

    @Test func eventsInOrderAreRelayedToEverySocket() {
        var session = connectedSession()
        _ = session.handle(.socketOpened(socketB), at: start)
        #expect(session.handle(.event(counted(1)), at: start) == [.deliver("event-1", to: [socketA, socketB])])
        #expect(session.handle(.event(counted(2)), at: start) == [.deliver("event-2", to: [socketA, socketB])])
        #expect(session.lastSeq == 2)
    }

    @Test func aGapInSeqAsksForSync() {
        var session = connectedSession()
        _ = session.handle(.event(counted(1)), at: start + 10_000)
        #expect(
            session.handle(.event(counted(3)), at: start + 10_000)
                == [.deliver("event-3", to: [socketA]), .requestSync])
    }

    @Test func aSecondGapWhileTheSyncIsAwaitedDoesNotAskAgain() {
        var session = connectedSession()
        _ = session.handle(.event(counted(1)), at: start + 10_000)
        _ = session.handle(.event(counted(3)), at: start + 10_000)
        #expect(session.handle(.event(counted(5)), at: start + 11_000) == [.deliver("event-5", to: [socketA])])
        #expect(
            session.handle(.event(counted(7)), at: start + 16_000)
                == [.deliver("event-7", to: [socketA]), .requestSync])
    }

    @Test func countdownRepeatingTheLatestSeqIsNotAGap() {
        var session = connectedSession()
        _ = session.handle(.event(counted(4)), at: start + 10_000)
        #expect(session.handle(.event(countdown(4)), at: start + 10_000) == [.deliver("countdown-4", to: [socketA])])
        #expect(session.handle(.event(countdown(4)), at: start + 11_000) == [.deliver("countdown-4", to: [socketA])])
        #expect(session.handle(.event(counted(5)), at: start + 12_000) == [.deliver("event-5", to: [socketA])])
    }

    @Test func countdownAheadOfTheLatestSeqIsAGap() {
        var session = connectedSession()
        _ = session.handle(.event(counted(4)), at: start + 10_000)
        #expect(
            session.handle(.event(countdown(5)), at: start + 10_000)
                == [.deliver("countdown-5", to: [socketA]), .requestSync])
    }

    @Test func stateResetsTheExpectedSeq() {
        var session = connectedSession()
        _ = session.handle(.event(counted(9)), at: start + 10_000)
        #expect(session.handle(.event(state(3, run: "b")), at: start + 10_000) == [.deliver("state-3", to: [socketA])])
        #expect(session.lastSeq == 3)
        #expect(session.handle(.event(counted(4)), at: start + 10_000) == [.deliver("event-4", to: [socketA])])
    }

    @Test func aStateAnswerAllowsTheNextGapToAskAtOnce() {
        var session = connectedSession()
        _ = session.handle(.event(counted(1)), at: start + 10_000)
        _ = session.handle(.event(counted(3)), at: start + 10_000)
        _ = session.handle(.event(state(4)), at: start + 10_100)
        #expect(
            session.handle(.event(counted(6)), at: start + 10_200)
                == [.deliver("event-6", to: [socketA]), .requestSync])
    }

    @Test func anEventOfAnotherNumberingAtAnOldSeqIsDroppedAndSettledBySync() {
        var session = connectedSession()
        _ = session.handle(.event(counted(1)), at: start + 10_000)
        _ = session.handle(.event(counted(2)), at: start + 10_000)
        #expect(session.handle(.event(counted(2, run: "b")), at: start + 10_000) == [.requestSync])
        #expect(session.lastSeq == 2)
    }

    /// A Notifier that took over publishes its journal's tail again, with the same ids: a state among it must not
    /// set the sequence back (the page would see the events after it again), and nothing of it asks for a sync.
    @Test func eventsPublishedAgainAreDroppedWithoutASync() {
        var session = connectedSession()
        _ = session.handle(.event(state(3)), at: start + 10_000)
        for seq: UInt64 in 4...6 { _ = session.handle(.event(counted(seq)), at: start + 10_000) }
        #expect(session.handle(.event(state(3)), at: start + 20_000) == [])
        for seq: UInt64 in 4...6 {
            #expect(session.handle(.event(counted(seq)), at: start + 20_000) == [])
        }
        #expect(session.lastSeq == 6)
        #expect(session.handle(.event(counted(7)), at: start + 20_000) == [.deliver("event-7", to: [socketA])])
    }

    /// A broker that lost its data starts the Notifier's journal, and so its ids, over: after a reconnect an
    /// event at an old seq with an id seen before is another event, settled by a sync.
    @Test func aBrokerReconnectForgetsTheIdsRelayed() {
        var session = connectedSession()
        for seq: UInt64 in 1...3 { _ = session.handle(.event(counted(seq)), at: start + 10_000) }
        _ = session.handle(.brokerReconnected, at: start + 10_000)
        #expect(session.handle(.event(counted(2)), at: start + 20_000) == [.requestSync])
    }

    /// The Notifier's answer to a sync that could not be published never comes: it is asked for again.
    @Test func aSyncThatCouldNotBePublishedIsAskedForAgain() {
        var session = connectedSession()
        #expect(session.handle(.syncFailed, at: start + 5_000) == [.requestSync])
    }

    @Test func theRememberedIdsStayWithinTheirWindow() {
        var session = AgentSession(settings: .init(graceMs: 15_000, rememberedEvents: 4))
        _ = session.handle(.socketOpened(socketA), at: start)
        _ = session.handle(.subscribed, at: start)
        _ = session.handle(.presenceHeld, at: start)
        for seq: UInt64 in 1...20 { _ = session.handle(.event(counted(seq)), at: start) }
        // Older than the window: no longer recognised, so taken for another numbering.
        #expect(session.handle(.event(counted(10)), at: start + 10_000) == [.requestSync])
        #expect(session.handle(.event(counted(18)), at: start + 10_000) == [])
    }

    @Test func lastSocketClosingStartsTheGracePeriod() {
        var session = connectedSession(graceMs: 15_000)
        _ = session.handle(.socketOpened(socketB), at: start)
        #expect(session.handle(.socketClosed(socketA), at: start + 1_000) == [])
        #expect(session.handle(.socketClosed(socketB), at: start + 2_000) == [.startGraceTimer(at: start + 17_000)])
        #expect(session.phase == .grace(until: start + 17_000))
    }

    @Test func graceExpirySignsTheAgentOff() {
        var session = connectedSession(graceMs: 15_000)
        _ = session.handle(.socketClosed(socketA), at: start)
        #expect(session.handle(.graceTimerFired, at: start + 14_999) == [])
        #expect(session.handle(.graceTimerFired, at: start + 15_000) == [.signOff(restoring: nil)])
        #expect(session.phase == .signedOff)
        #expect(session.handle(.event(counted(1)), at: start + 15_001) == [])
    }

    @Test func reconnectWithinGraceCancelsItAndReplaysBufferedEventsInOrder() {
        var session = connectedSession(graceMs: 15_000)
        _ = session.handle(.event(counted(1)), at: start)
        _ = session.handle(.socketClosed(socketA), at: start + 1_000)
        #expect(session.handle(.event(counted(2)), at: start + 2_000) == [])
        #expect(session.handle(.event(countdown(2)), at: start + 2_500) == [])
        #expect(session.handle(.event(counted(3)), at: start + 3_000) == [])
        // The buffered events at once; the state once the presence is held again.
        #expect(
            session.handle(.socketOpened(socketB), at: start + 4_000)
                == [.deliver("event-2", to: [socketB]), .deliver("event-3", to: [socketB])])
        #expect(session.handle(.presenceHeld, at: start + 4_100) == [.requestSync])
        #expect(session.phase == .connected)
        #expect(session.buffered.isEmpty)
        #expect(session.handle(.graceTimerFired, at: start + 16_000) == [])
        #expect(session.phase == .connected)
    }

    @Test func bufferOverflowDropsTheBufferAndLeavesItToTheSync() {
        var session = AgentSession(settings: .init(graceMs: 15_000, bufferLimit: 2))
        _ = session.handle(.socketOpened(socketA), at: start)
        _ = session.handle(.subscribed, at: start)
        _ = session.handle(.socketClosed(socketA), at: start)
        for seq in UInt64(1)...3 {
            _ = session.handle(.event(counted(seq)), at: start + 1_000)
        }
        #expect(session.buffered.isEmpty)
        #expect(session.handle(.socketOpened(socketB), at: start + 2_000) == [])
        #expect(session.handle(.presenceHeld, at: start + 2_000) == [.requestSync])
    }

    @Test func aSignOffSetsBackTheLastStatusRelayedIfAPageOpenedElsewhere() {
        var session = connectedSession(graceMs: 15_000)
        _ = session.handle(.event(statusChanged(1, .online)), at: start)
        _ = session.handle(.event(statusChanged(1, .offline)), at: start)  // a redelivery: not taken
        #expect(session.lastStatus == .online)
        _ = session.handle(.socketClosed(socketA), at: start)
        _ = session.handle(.event(statusChanged(2, .break)), at: start + 1_000)
        #expect(session.handle(.graceTimerFired, at: start + 15_000) == [.signOff(restoring: .break)])

        var offline = connectedSession(graceMs: 15_000)
        _ = offline.handle(.event(statusChanged(1, .offline)), at: start)
        _ = offline.handle(.socketClosed(socketA), at: start)
        #expect(offline.handle(.graceTimerFired, at: start + 15_000) == [.signOff(restoring: nil)])
    }

    @Test func everyNewSocketAsksForSyncEvenWhileOneIsAwaited() {
        var session = connectedSession()
        #expect(session.handle(.socketOpened(socketB), at: start + 100) == [.requestSync])
    }
}
