import Synchronization
@testable import SwitchboardRuntime
import Testing

/// What the batches' `finish` closures did, in order.
private final class Log: Sendable {
    private let lines = Mutex<[String]>([])
    func add(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// Holds a batch's `finish` until the test opens it.
private final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1)) }

    func open() { continuation.yield() }

    func wait() async {
        for await _ in stream { return }
    }
}

private struct PublishFailed: Error {}

@Suite struct EffectPipelineTests {
    @Test func aBatchFinishesOnlyAfterThePreviousOne() async throws {
        let log = Log()
        let gate = Gate()
        var pipeline = EffectPipeline<Int>(depth: 3) {}
        try await pipeline.add(acknowledging: 1) {
            log.add("1 started")
            await gate.wait()
            log.add("1 done")
        }
        try await pipeline.add(acknowledging: 2) { log.add("2") }
        try await waitUntil { log.all.contains("1 started") }
        gate.open()
        try await pipeline.settle()
        #expect(log.all == ["1 started", "1 done", "2"])
        #expect(pipeline.isEmpty)
    }

    @Test func aFailedBatchStopsTheLaterOnesAndTheNewestUnacknowledgedDeliveryIsRequeued() async throws {
        let log = Log()
        let gate = Gate()
        let failureReports = Log()
        var pipeline = EffectPipeline<Int>(depth: 3) { failureReports.add("failed") }
        try await pipeline.add(acknowledging: 10) { log.add("10") }
        try await pipeline.add(acknowledging: 20) {
            await gate.wait()
            throw PublishFailed()
        }
        try await pipeline.add(acknowledging: 30) { log.add("30") }
        try await pipeline.add(acknowledging: nil) { log.add("tick") }
        gate.open()
        #expect(await pipeline.abandon() == 30)
        #expect(log.all == ["10"], "nothing after the failed batch is published or acknowledged")
        #expect(failureReports.all.count == 3, "the failed batch and the two after it report")
        #expect(pipeline.isEmpty)
    }

    @Test func nothingIsRequeuedWhenEveryBatchWithDeliveriesWasAcknowledged() async throws {
        var pipeline = EffectPipeline<Int>(depth: 3) {}
        try await pipeline.add(acknowledging: 10) {}
        try await pipeline.add(acknowledging: nil) { throw PublishFailed() }
        #expect(await pipeline.abandon() == nil)
    }

    @Test func addingBeyondTheDepthWaitsForTheOldestAndThrowsItsFailure() async throws {
        let log = Log()
        var pipeline = EffectPipeline<Int>(depth: 1) {}
        try await pipeline.add(acknowledging: 10) { throw PublishFailed() }
        await #expect(throws: PublishFailed.self) {
            try await pipeline.add(acknowledging: 20) { log.add("20") }
        }
        #expect(await pipeline.abandon() == 20)
        #expect(log.all.isEmpty)
    }
}

/// Waits, with a deadline, until `condition` holds.
private func waitUntil(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut() }
        await Task.yield()
    }
}

private struct WaitTimedOut: Error {}
