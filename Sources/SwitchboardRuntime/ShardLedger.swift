import Foundation
import Logging
import SwitchboardCommon

/// One shard's core, changed only by entries read back from the shard's journal, in journal order.
///
/// The active writer and a standby apply the same entries the same way: the writer appends, waits until
/// its entries are read back here, and publishes the effects they produced; a standby just keeps reading.
/// So what the core decided is, by construction, what replaying the journal decides.
actor ShardLedger<Adapter: ShardCoreAdapter> {
    /// An entry applied since the last snapshot, with what it produced: a takeover publishes these again.
    struct AppliedEntry: Sendable {
        let seq: UInt64
        /// The delivery, for dead-letter effects; `nil` for ticks.
        let input: JournalInput?
        let effects: [Adapter.Effect]
    }

    enum Condition: Sendable {
        /// The marker with this nonce was read.
        case markerRead(String)
        /// Every entry of `epoch` up to `seq` is applied.
        case applied(through: UInt64, epoch: String)
    }

    enum WaitFailure: Error, CustomStringConvertible {
        case timedOut(Duration)
        /// Another writer's marker came after ours: this instance is no longer the shard's writer.
        case superseded

        var description: String {
            switch self {
            case .timedOut(let duration): "the journal did not reach the expected entry within \(duration)"
            case .superseded: "another instance started writing this shard's journal"
            }
        }
    }

    private struct Waiter {
        let condition: Condition
        let continuation: CheckedContinuation<Void, any Error>
        let timeout: Task<Void, Never>
    }

    private var core: Adapter.Core
    private(set) var appliedSeq: UInt64 = 0
    /// The epoch of the latest marker read (or, before any, of the first snapshot read): only its entries count.
    private(set) var epoch: String?
    private var lastMarker: String?
    /// Entries of the current epoch that arrived before an earlier seq (appends of one batch are pipelined).
    private var pending: [UInt64: JournalEntry] = [:]
    private var tail: [AppliedEntry] = []
    private(set) var nextDeadline: Instant?
    private var waiters: [UInt64: Waiter] = [:]
    private var nextWaiterID: UInt64 = 0
    private let logger: Logger

    init(logger: Logger) {
        core = Adapter.makeCore()
        self.logger = logger
    }

    // MARK: Reading the journal

    func receive(_ entry: JournalEntry) {
        switch entry.content {
        case .marker:
            epoch = entry.epoch
            lastMarker = entry.epoch
            // Whatever of the previous term did not arrive in order by now never will: its writer lost its
            // place, and its successor (who wrote this marker) continues from what was applied.
            pending.removeAll()
        case .snapshot(let state):
            if epoch == nil {
                // The journal's start was cut off by retention: the first snapshot is where reading can begin.
                epoch = entry.epoch
            }
            guard entry.epoch == epoch, let seq = entry.seq, seq > appliedSeq else { break }
            if seq > appliedSeq + 1 {
                restore(state, at: seq)
            } else {
                pending[seq] = entry
                applyPendingInOrder()
            }
        case .input, .tick:
            guard entry.epoch == epoch, let seq = entry.seq, seq > appliedSeq else { break }
            pending[seq] = entry
            applyPendingInOrder()
        }
        resumeSatisfiedWaiters()
    }

    private func applyPendingInOrder() {
        while let entry = pending.removeValue(forKey: appliedSeq + 1) {
            apply(entry)
        }
    }

    private func apply(_ entry: JournalEntry) {
        let seq = appliedSeq + 1
        appliedSeq = seq
        switch entry.content {
        case .input(let input):
            let effects: [Adapter.Effect]
            switch Adapter.decode(input) {
            case .input(let decoded):
                effects = Adapter.handle(decoded, in: &core, at: entry.now)
            case .rejected(_, let answer?):
                effects = Adapter.handle(answer, in: &core, at: entry.now)
            case .rejected(_, nil):
                // Never journaled by this runtime; an entry like this changes nothing.
                effects = []
            }
            record(AppliedEntry(seq: seq, input: input, effects: effects))
        case .tick:
            record(AppliedEntry(seq: seq, input: nil, effects: Adapter.handle(Adapter.tick, in: &core, at: entry.now)))
        case .snapshot:
            // Read in order, a snapshot holds exactly the state already here: only the tail restarts.
            tail.removeAll()
        case .marker:
            break
        }
    }

    private func record(_ applied: AppliedEntry) {
        // Cores report their earliest pending deadline last, and none when nothing is pending.
        nextDeadline = applied.effects.lazy.compactMap(Adapter.deadline(of:)).last
        tail.append(applied)
    }

    private func restore(_ state: Data, at seq: UInt64) {
        do {
            core = try WireCodec.decodeSnapshot(Adapter.Core.self, from: state)
        } catch {
            logger.error("cannot decode the snapshot at seq \(seq); waiting for the entries before it", metadata: ["error": "\(error)"])
            return
        }
        appliedSeq = seq
        tail.removeAll()
        // Until the next entry, no deadline is known; the first tick after the takeover finds them all.
        nextDeadline = Instant(millisecondsSinceEpoch: 0)
        pending = pending.filter { $0.key > seq }
        applyPendingInOrder()
    }

    // MARK: For the writer

    /// The encoded core, as of `appliedSeq`.
    func encodedCore() throws -> Data {
        try WireCodec.encodeSnapshot(core)
    }

    /// After the writer's marker was read: where the journal ends and what may not have been published.
    func takeOver(epoch nonce: String) throws(WaitFailure) -> (appliedSeq: UInt64, tail: [AppliedEntry]) {
        guard epoch == nonce else { throw .superseded }
        return (appliedSeq, tail)
    }

    /// The applied entries with seq in `range`, in order.
    func applied(_ range: ClosedRange<UInt64>) -> [AppliedEntry] {
        tail.filter { range.contains($0.seq) }
    }

    func waitUntil(_ condition: Condition, timeout: Duration) async throws {
        if try isSatisfied(condition) { return }
        let id = nextWaiterID
        nextWaiterID += 1
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let timer = Task { [weak self] in
                // Cancelled when the condition is settled first.
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                await self?.settle(id, with: .failure(WaitFailure.timedOut(timeout)))
            }
            waiters[id] = Waiter(condition: condition, continuation: continuation, timeout: timer)
        }
    }

    private func isSatisfied(_ condition: Condition) throws(WaitFailure) -> Bool {
        switch condition {
        case .markerRead(let nonce):
            return lastMarker == nonce
        case .applied(let seq, let writerEpoch):
            guard epoch == writerEpoch else { throw .superseded }
            return appliedSeq >= seq
        }
    }

    private func resumeSatisfiedWaiters() {
        for (id, waiter) in waiters {
            do {
                if try isSatisfied(waiter.condition) { settle(id, with: .success(())) }
            } catch {
                settle(id, with: .failure(error))
            }
        }
    }

    private func settle(_ id: UInt64, with result: Result<Void, any Error>) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        waiter.timeout.cancel()
        waiter.continuation.resume(with: result)
    }
}
