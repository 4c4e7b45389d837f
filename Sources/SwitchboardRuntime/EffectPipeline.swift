/// The batches of a shard whose entries are journaled and applied and whose effects are being published,
/// oldest first, so the writer can journal the next batches meanwhile.
///
/// Each batch's `finish` (publish its effects, then acknowledge its deliveries) starts only after the
/// previous batch's finished: effects leave in journal order, and a batch is acknowledged only after its
/// own effects and every earlier batch's are confirmed. When one fails, every later one fails without
/// running its `finish`, so nothing after a failure is published or acknowledged.
struct EffectPipeline<Delivery: Sendable> {
    private struct Batch {
        let task: Task<Void, any Error>
        /// The newest delivery the batch acknowledges, `nil` for a batch of timer ticks alone.
        let lastDelivery: Delivery?
    }

    /// How many batches may be in flight when `add` returns.
    let depth: Int
    /// Called when a batch's `finish` fails (or is skipped for an earlier failure): the writer should settle.
    private let onFailure: @Sendable () -> Void
    private var batches: [Batch] = []

    init(depth: Int, onFailure: @escaping @Sendable () -> Void) {
        precondition(depth > 0, "at least one batch must be able to finish")
        self.depth = depth
        self.onFailure = onFailure
    }

    var isEmpty: Bool { batches.isEmpty }

    /// Starts the batch's `finish` after the previous batch's; when more than `depth` batches are in flight,
    /// waits for the oldest and throws its failure.
    mutating func add(acknowledging lastDelivery: Delivery?, finish: @escaping @Sendable () async throws -> Void)
        async throws
    {
        let previous = batches.last?.task
        let task = Task { [onFailure] in
            do {
                try await previous?.value
                try await finish()
            } catch {
                onFailure()
                throw error
            }
        }
        batches.append(Batch(task: task, lastDelivery: lastDelivery))
        if batches.count > depth {
            try await batches.removeFirst().task.value
        }
    }

    /// Waits until every batch has finished; throws the first failure.
    mutating func settle() async throws {
        while let oldest = batches.first {
            try await oldest.task.value
            batches.removeFirst()
        }
    }

    /// Waits until every batch has finished or failed, forgets them all, and returns the newest delivery not
    /// acknowledged (of the failed batches); requeueing through it returns every earlier unacknowledged one.
    /// No acknowledged delivery is returned, which the broker would refuse.
    mutating func abandon() async -> Delivery? {
        var newestFailed: Delivery?
        for batch in batches {
            // A batch fails when an earlier one did, so the newest failed delivery is the newest of all.
            if case .failure = await batch.task.result, let last = batch.lastDelivery { newestFailed = last }
        }
        batches.removeAll()
        return newestFailed
    }
}
