import SwitchboardCommon
@testable import SwitchboardRuntime
import SwitchboardTestSupport
import Testing

@Suite struct ShardTimerTests {
    let now = Instant(millisecondsSinceEpoch: 1_800_000_000_000)

    /// A batch runs at one time: a due tick goes where its deadline fell among the deliveries' receipts.
    @Test func aDueTickGoesBeforeTheFirstDeliveryReceivedAfterItsDeadline() {
        let start = ContinuousClock.now
        let received = [start, start + .milliseconds(10), start + .milliseconds(20)]
        func position(dueAfter milliseconds: Int) -> Int {
            ShardWorker<RouterAdapter>.tickPosition(among: received, dueAt: start + .milliseconds(milliseconds))
        }
        #expect(position(dueAfter: -1) == 0)
        #expect(position(dueAfter: 15) == 2)
        // Received at the deadline: in time.
        #expect(position(dueAfter: 10) == 2)
        #expect(position(dueAfter: 25) == 3)
        #expect(ShardWorker<RouterAdapter>.tickPosition(among: [], dueAt: start) == 0)
    }

    @Test func theSameDeadlineAskedForAgainKeepsItsFiring() throws {
        let timer = ShardTimer(inbox: ShardInbox())
        let deadline = now + 60_000
        timer.schedule(deadline, now: now)
        let first = try #require(timer.armedFiring)
        timer.schedule(deadline, now: now + 5)
        let second = try #require(timer.armedFiring)
        #expect(second.task == first.task && second.deadline == deadline)
        #expect(!first.task.isCancelled)

        let later = deadline + 1
        timer.schedule(later, now: now)
        #expect(first.task.isCancelled)
        let third = try #require(timer.armedFiring)
        #expect(third.task != first.task && third.deadline == later)

        timer.schedule(nil, now: now)
        #expect(timer.armedFiring == nil)
        #expect(third.task.isCancelled)
    }

    @Test func aFiredDeadlineAskedForAgainFiresAgain() async throws {
        let inbox = ShardInbox()
        let timer = ShardTimer(inbox: inbox)
        for round in 1...2 {
            timer.schedule(now, now: now)
            try await waitUntil("firing \(round) reaches the inbox") { inbox.take(max: 1).timerFiredAt != nil }
            #expect(timer.armedFiring == nil)
        }
    }
}
