import Foundation
import Logging
import SwitchboardCommon

/// One shard's core, changed only by entries read back from the shard's journal, in journal order.
///
/// The active writer and a standby apply the same entries the same way: the writer appends, waits until
/// its entries are read back here, and publishes the effects they produced; a standby just keeps reading.
/// So what the core decided is, by construction, what replaying the journal decides, and an entry counts
/// only in the epoch of the latest marker read: a writer whose successor's marker came first applies nothing.
actor ShardLedger<Adapter: ShardCoreAdapter> {
    /// An entry applied since the last snapshot, with what it produced: a takeover publishes these again.
    struct AppliedEntry: Sendable {
        let seq: UInt64
        /// The delivery, for dead-letter effects; `nil` for ticks.
        let input: JournalInput?
        let effects: [Adapter.Effect]
    }

    /// What a service's ledger tells its instance as it reads the journal, for its log and metrics.
    struct Reports: Sendable {
        /// The instance's configured memory limits, set against those of the shard's core: an instance of the
        /// same service configured otherwise changes them at every takeover, back and forth.
        let configuredLimits: Adapter.Limits
        /// Told each time the core's limits come to differ from `configuredLimits`, or to match them again.
        let limitsDiffer: @Sendable (_ differ: Bool, _ held: Adapter.Limits) -> Void
        /// Told each time the ledger comes to hold an unread record (`unread`), and when it no longer does.
        let unread: @Sendable (UnreadRecord?) -> Void
    }

    enum Condition: Sendable {
        /// The marker with this nonce was read.
        case markerRead(String)
        /// Every entry of `epoch` up to `seq` is applied.
        case applied(through: UInt64, epoch: String)
    }

    enum WaitFailure: Error, Equatable, CustomStringConvertible {
        case timedOut(Duration)
        /// Another writer's marker came after ours: this instance is no longer the shard's writer.
        case superseded
        /// This instance no longer reads the journal: nothing it waits for can arrive.
        case journalEnded
        /// This instance could not read a record whose entries count: it must not write the shard.
        case unread(UnreadRecord)

        var description: String {
            switch self {
            case .timedOut(let duration): "the journal did not reach the expected entry within \(duration)"
            case .superseded: "another instance started writing this shard's journal"
            case .journalEnded: "this instance no longer reads the shard's journal"
            case .unread(let record): "\(record)"
            }
        }
    }

    /// A journal record this reader could not read (a newer version's, or a snapshot it cannot decode) while
    /// its entries may count. Other readers may have applied them: until a snapshot as of its last entry or
    /// later is taken in, this core may lack what theirs hold, and a writer continuing from it would number
    /// new entries with seqs they already have.
    struct UnreadRecord: Equatable, Sendable, CustomStringConvertible {
        /// The last seq the record may hold; `nil` when not known (a record that says nothing of itself).
        let through: UInt64?
        let reason: String

        var description: String {
            let which = through.map { "with entries up to seq \($0)" } ?? "whose entries are not known"
            return "this instance could not read a journal record \(which) (\(reason)), and no snapshot after it yet"
        }

        /// Both unread: up to the later of the two.
        func merged(with other: Self?) -> Self {
            guard let other else { return self }
            guard let mine = through, let theirs = other.through else { return Self(through: nil, reason: reason) }
            return Self(through: max(mine, theirs), reason: reason)
        }
    }

    /// A journal entry as taken in, with its delivery already decoded when the writer prepared it.
    private struct Received {
        let entry: JournalEntry
        let decoded: DecodedDelivery<Adapter.Input>?
        /// Where the record that holds it is in the journal, when known.
        var offset: Int64?
    }

    private struct PreparedKey: Hashable {
        let epoch: String
        let seq: UInt64
    }

    private struct Waiter {
        let condition: Condition
        let continuation: CheckedContinuation<Void, any Error>
        var timeout: Task<Void, Never>
    }

    /// How the ledger takes entries in.
    private enum Mode {
        /// Reading old history: the latest snapshot and the entries after its `asOf` are kept as they are,
        /// and run through the core only when needed, so a cold start does not replay the whole retention
        /// period.
        case cold(snapshot: (asOf: UInt64, state: Data)?, entries: [JournalEntry])
        /// Caught up: every entry is run through the core as it comes.
        case warm
    }

    /// An entry this close to the wall clock means the reading has reached the present.
    static var presentWithin: Milliseconds { 10_000 }

    private var core: Adapter.Core
    private var mode = Mode.cold(snapshot: nil, entries: [])
    private let clock: @Sendable () -> Instant
    private(set) var appliedSeq: UInt64 = 0
    /// The epoch of the latest marker read (or, before any, of the first snapshot read): only its entries count.
    private(set) var epoch: String?
    private var lastMarker: String?
    /// Entries of the current epoch that arrived before an earlier seq (appends of one batch are pipelined).
    private var pending: [UInt64: Received] = [:]
    /// Entries read before any marker or snapshot (the journal's start was cut off by retention): the
    /// first snapshot may be as of a seq before some of them.
    private var preamble: [Received] = []
    /// Entries this instance's writer is appending, with their deliveries as it decoded them at intake.
    /// Read back, a record of them is taken from here instead of being decoded again (its headers say
    /// which entries it holds): decoding is deterministic, so this changes nothing but the cost.
    private var prepared: [PreparedKey: Received] = [:]
    /// In seq order.
    private var tail: [AppliedEntry] = []
    private(set) var nextDeadline: Instant?
    private var waiters: [UInt64: Waiter] = [:]
    /// Where the latest snapshot taken in lets a reader begin (`JournalRestartPoint`); the writer stamps it on
    /// what it appends.
    private(set) var restartPoint: JournalRestartPoint?
    /// The journal offset of each entry applied after the latest snapshot's `asOf`, in seq order: where the
    /// next snapshot's restart point is. `nil` for an entry whose record's offset is not known.
    private var appliedOffsets: [(seq: UInt64, offset: Int64?)] = []
    /// What replaying the journal did, in order, until `takeSteps()`; `nil` in a service, which keeps no such log.
    private var steps: [JournalStep]?
    /// The shard a replaying ledger reads, for the message ids of its effects.
    private var replayedShard = 0
    /// Set once the instance stops: no wait, under way or to come, lasts longer.
    private var stopGrace: Duration?
    private var nextWaiterID: UInt64 = 0
    private var journalEnded = false
    private let logger: Logger
    private let reports: Reports?
    /// The latest record this ledger could not read and no snapshot has covered since: it must not write.
    private(set) var unread: UnreadRecord? {
        didSet {
            if (oldValue == nil) != (unread == nil) { reports?.unread(unread) }
        }
    }
    /// Whether the core's limits differ from `reports`' configured ones; `nil` until the ledger is warm
    /// (a cold ledger has not run its history through the core).
    private(set) var limitsDiffer: Bool?

    /// `clock` is the wall clock, to tell old history from the present.
    init(logger: Logger, clock: @escaping @Sendable () -> Instant, reports: Reports? = nil) {
        core = Adapter.makeCore()
        self.logger = logger
        self.clock = clock
        self.reports = reports
    }

    /// A ledger that runs every entry through the core as it is read, from the first, and keeps a log of what
    /// it did (`takeSteps()`): replaying shard `shard`'s journal by the same rules a service reads it with.
    init(replaying shard: Int, logger: Logger) {
        core = Adapter.makeCore()
        self.logger = logger
        clock = { Instant(millisecondsSinceEpoch: 0) }
        reports = nil
        mode = .warm
        steps = []
        replayedShard = shard
    }

    /// What the ledger did, in order, since the last call; only a replaying ledger keeps this.
    func takeSteps() -> [JournalStep] {
        guard let taken = steps else { return [] }
        steps = []
        return taken
    }

    // MARK: Reading the journal

    /// Reading begins at `point` instead of at the journal's start: until a marker is read, only entries of
    /// its epoch count, as they would for a reader from the start at that point. Called before any record.
    func begin(at point: JournalRestartPoint) {
        precondition(epoch == nil && appliedSeq == 0, "a ledger begins before it takes in any record")
        epoch = point.epoch
        restartPoint = point
    }

    /// Takes in one journal record: the entries of one journal message, in order; `offset` is where the
    /// record is in the journal (its first part's, for a record in parts).
    func receive(_ record: [JournalEntry], at offset: Int64? = nil) {
        for entry in record { take(Received(entry: entry, decoded: nil, offset: offset)) }
        resumeSatisfiedWaiters()
    }

    /// Called by the writer before it appends `entries` of its term `epoch`; `decoded` has each entry's
    /// delivery as decoded at intake (`nil` for ticks and snapshots).
    func prepare(_ entries: [(entry: JournalEntry, decoded: DecodedDelivery<Adapter.Input>?)], epoch: String) {
        for (entry, decoded) in entries {
            guard let seq = entry.seq else { continue }
            prepared[PreparedKey(epoch: epoch, seq: seq)] = Received(entry: entry, decoded: decoded)
        }
    }

    /// Takes in the record labelled `label` when the writer prepared all its entries, and returns whether
    /// it did; if not (or there is no label), the caller decodes the record and calls `receive`.
    func receivePrepared(_ label: JournalRecordLabel?, at offset: Int64? = nil) -> Bool {
        guard let label,
            label.seqs.allSatisfy({ prepared[PreparedKey(epoch: label.epoch, seq: $0)] != nil })
        else { return false }
        for seq in label.seqs {
            var received = prepared.removeValue(forKey: PreparedKey(epoch: label.epoch, seq: seq))!
            received.offset = offset
            take(received)
        }
        resumeSatisfiedWaiters()
        return true
    }

    /// A record of the journal could not be decoded (`reason`); `label` is what its headers say of it. Returns
    /// whether its entries may count (else they are a superseded writer's, or applied already).
    @discardableResult
    func couldNotRead(_ label: JournalRecordLabel?, reason: String) -> Bool {
        if let label, let epoch {
            guard label.epoch == epoch, label.seqs.upperBound > appliedSeq else { return false }
        }
        unread = UnreadRecord(through: label?.seqs.upperBound, reason: reason).merged(with: unread)
        return true
    }

    /// The core is now the state as of `asOf`, decoded from a snapshot: a record read before it, up to that seq,
    /// no longer matters.
    private func restored(asOf: UInt64) {
        if let through = unread?.through, through <= asOf { unread = nil }
    }

    /// A snapshot as of `asOf` could not be decoded: the core lacks what it holds.
    private func couldNotDecode(snapshotAsOf asOf: UInt64, _ error: any Error) {
        unread = UnreadRecord(through: asOf, reason: "the snapshot as of seq \(asOf) cannot be decoded: \(error)")
            .merged(with: unread)
    }

    /// Sets the core's limits against the configured ones, once warm, and reports a change of the answer. Called
    /// where they may change: a `limits` entry run, a snapshot decoded, the warm-up.
    private func checkLimits() {
        guard let reports, case .warm = mode else { return }
        let held = Adapter.limits(of: core)
        let differ = held != reports.configuredLimits
        guard differ != limitsDiffer else { return }
        limitsDiffer = differ
        reports.limitsDiffer(differ, held)
    }

    private func take(_ received: Received) {
        let entry = received.entry
        switch entry.content {
        case .marker:
            epoch = entry.epoch
            lastMarker = entry.epoch
            steps?.append(.writerTerm(epoch: entry.epoch, at: entry.now))
            // Whatever of the previous term did not arrive in order by now never will: its writer lost its
            // place, and its successor (who wrote this marker) continues from what was applied.
            pending.removeAll()
            preamble.removeAll()
            prepared = prepared.filter { $0.key.epoch == entry.epoch }
            // The new writer's snapshots are as of its takeover or later: what came before is in them.
            appliedOffsets.removeAll()
        case .snapshot(let state, let asOf):
            if epoch == nil {
                // The journal's start was cut off by retention: the first snapshot is where reading can begin,
                // with the entries after its `asOf` read before it.
                epoch = entry.epoch
                for early in preamble where early.entry.epoch == entry.epoch && early.entry.seq! > asOf {
                    pending[early.entry.seq!] = early
                }
                preamble.removeAll()
            }
            guard entry.epoch == epoch, let seq = entry.seq, seq > appliedSeq else {
                notTaken(entry)
                break
            }
            pending[seq] = received
            if seq > appliedSeq + 1, asOf >= appliedSeq {
                // Entries up to `asOf` are not here (cut off, or never read): start from the snapshot.
                restore(state, asOf: asOf)
            } else {
                applyPendingInOrder()
            }
        case .input, .tick, .limits:
            if epoch == nil {
                preamble.append(received)
                break
            }
            guard entry.epoch == epoch, let seq = entry.seq, seq > appliedSeq else {
                notTaken(entry)
                break
            }
            pending[seq] = received
            applyPendingInOrder()
        }
        if entry.now + Self.presentWithin >= clock() {
            warmUp()
        }
    }

    /// An entry not taken in: of a superseded writer (a replaying ledger shows it), or already applied.
    private func notTaken(_ entry: JournalEntry) {
        if entry.epoch != epoch { steps?.append(.superseded(seq: entry.seq, epoch: entry.epoch, at: entry.now)) }
    }

    private func applyPendingInOrder() {
        while let received = pending.removeValue(forKey: appliedSeq + 1) {
            apply(received)
        }
    }

    private func apply(_ received: Received) {
        let entry = received.entry
        let seq = appliedSeq + 1
        appliedSeq = seq
        appliedOffsets.append((seq, received.offset))
        if case .snapshot(_, let asOf) = entry.content { tookSnapshot(asOf: asOf, epoch: entry.epoch) }
        switch mode {
        case .cold(var snapshot, var entries):
            switch entry.content {
            case .snapshot(let state, let asOf):
                snapshot = (asOf, state)
                entries.removeAll { $0.seq! <= asOf }
            case .input, .tick, .limits:
                entries.append(entry)
            case .marker:
                break
            }
            mode = .cold(snapshot: snapshot, entries: entries)
        case .warm:
            run(entry, seq: seq, decoded: received.decoded)
        }
    }

    /// A snapshot as of `asOf` was applied in `epoch`, in seq order: a reader can begin at the first record of
    /// the entries after `asOf` (its own included), all of `epoch` (a writer's snapshots are as of its takeover
    /// or later), when their offsets are known.
    private func tookSnapshot(asOf: UInt64, epoch: String) {
        appliedOffsets.removeAll { $0.seq <= asOf }
        let offsets = appliedOffsets.map(\.offset)
        guard !offsets.contains(nil), let first = offsets.lazy.compactMap({ $0 }).min() else { return }
        restartPoint = JournalRestartPoint(offset: first, epoch: epoch)
    }

    /// Runs history kept while cold: the latest snapshot, then the entries after it.
    private func warmUp() {
        guard case .cold(let snapshot, let entries) = mode else { return }
        if let snapshot { decode(snapshot.state, at: snapshot.asOf) }
        tail.removeAll()
        for entry in entries {
            run(entry, seq: entry.seq!)
        }
        // Warm only now: the limits are set against the configured ones as the history leaves them, not at each
        // change in it.
        mode = .warm
        checkLimits()
    }

    /// `decoded` is the entry's delivery as the writer decoded it, when this is the writer's own entry.
    private func run(_ entry: JournalEntry, seq: UInt64, decoded: DecodedDelivery<Adapter.Input>? = nil) {
        switch entry.content {
        case .input(let input):
            let effects: [Adapter.Effect]
            var rejection: String?
            switch decoded ?? Adapter.decode(input) {
            case .input(let decoded):
                effects = Adapter.handle(decoded, in: &core, at: entry.now)
            case .rejected(let reason, let answer?):
                rejection = reason
                effects = Adapter.handle(answer, in: &core, at: entry.now)
            case .rejected(let reason, nil):
                // Never journaled by this runtime; an entry like this changes nothing.
                rejection = reason
                effects = []
            }
            record(AppliedEntry(seq: seq, input: input, effects: effects), at: entry.now, rejection: rejection)
        case .tick:
            record(
                AppliedEntry(seq: seq, input: nil, effects: Adapter.handle(Adapter.tick, in: &core, at: entry.now)),
                at: entry.now)
        case .snapshot(_, let asOf):
            // Read in order, a snapshot holds a state already here: only the entries after it stay in the tail.
            tail.removeAll { $0.seq <= asOf }
            steps?.append(.snapshot(seq: seq, asOf: asOf, at: entry.now))
        case .limits(let named):
            let limits = Adapter.limits(of: core).changing(named)
            Adapter.changeLimits(of: &core, to: limits)
            checkLimits()
            // Changes nothing a takeover would publish again, and no deadline.
            tail.append(AppliedEntry(seq: seq, input: nil, effects: []))
            steps?.append(.limits(seq: seq, limits: limits.named, at: entry.now))
        case .marker:
            break
        }
    }

    /// `rejection`: why the entry's delivery was refused, if it was.
    private func record(_ applied: AppliedEntry, at now: Instant, rejection: String? = nil) {
        // Cores report their earliest pending deadline last, and none when nothing is pending.
        nextDeadline = applied.effects.lazy.compactMap(Adapter.deadline(of:)).last
        tail.append(applied)
        if steps != nil {
            let actions = Array(Adapter.actions(for: applied.effects, shard: replayedShard, seq: applied.seq))
            steps?.append(
                .applied(
                    AppliedStep(seq: applied.seq, at: now, input: applied.input, rejection: rejection, actions: actions)))
        }
    }

    /// Starts again from `state`, the core after every entry up to `asOf`, then applies what is pending.
    private func restore(_ state: Data, asOf: UInt64) {
        appliedSeq = asOf
        pending = pending.filter { $0.key > asOf }
        appliedOffsets.removeAll()
        switch mode {
        case .cold:
            mode = .cold(snapshot: (asOf, state), entries: [])
        case .warm:
            decode(state, at: asOf)
        }
        applyPendingInOrder()
    }

    /// Makes the core the state a snapshot as of `seq` holds (at the warm-up, or when one is read while warm).
    private func decode(_ state: Data, at seq: UInt64) {
        do {
            core = try WireCodec.decodeSnapshot(Adapter.Core.self, from: state)
            restored(asOf: seq)
            checkLimits()
            steps?.append(.restored(asOf: seq, failure: nil))
        } catch {
            logger.critical(
                "cannot decode the snapshot as of seq \(seq); its state is missing until a later snapshot (a service does not write the shard meanwhile)",
                metadata: ["error": "\(error)"])
            couldNotDecode(snapshotAsOf: seq, error)
            steps?.append(.restored(asOf: seq, failure: "\(error)"))
        }
        tail.removeAll()
        // No deadline is known until the next entry; the first tick after a takeover finds them all.
        nextDeadline = Instant(millisecondsSinceEpoch: 0)
    }

    // MARK: For the writer

    /// The core (a value: copying it is cheap) and the seq it is as of, for a snapshot encoded elsewhere.
    func coreForSnapshot() -> (core: Adapter.Core, asOf: UInt64) {
        warmUp()
        return (core, appliedSeq)
    }

    /// The core's memory limits as it is now.
    func limits() -> Adapter.Limits {
        warmUp()
        return Adapter.limits(of: core)
    }

    /// After the writer's marker was read: where the journal ends and what may not have been published.
    func takeOver(epoch nonce: String) throws(WaitFailure) -> (appliedSeq: UInt64, tail: [AppliedEntry]) {
        guard epoch == nonce else { throw .superseded }
        warmUp()
        if let unread { throw .unread(unread) }
        return (appliedSeq, tail)
    }

    /// The applied entries with seq in `range`, in order. The tail is in seq order and can hold many
    /// thousands of entries between snapshots, so this searches instead of scanning it every batch.
    func applied(_ range: ClosedRange<UInt64>) -> [AppliedEntry] {
        var low = tail.startIndex
        var high = tail.endIndex
        while low < high {
            let middle = low + (high - low) / 2
            if tail[middle].seq < range.lowerBound { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < tail.endIndex, tail[end].seq <= range.upperBound { end += 1 }
        return Array(tail[low..<end])
    }

    func waitUntil(_ condition: Condition, timeout: Duration) async throws {
        if try isSatisfied(condition) { return }
        let id = nextWaiterID
        nextWaiterID += 1
        let timeout = min(timeout, stopGrace ?? timeout)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            waiters[id] = Waiter(condition: condition, continuation: continuation, timeout: timer(id, timeout))
        }
    }

    /// How many waits are under way.
    var waiting: Int { waiters.count }

    /// The instance is stopping: a wait lasts `grace` at most from now on. While the broker is there, what a
    /// writer waits for comes within milliseconds; while it is away, nothing comes, and a wait must not hold
    /// the shutdown for the whole catch-up timeout.
    func shortenWaits(to grace: Duration) {
        stopGrace = grace
        for id in waiters.keys {
            waiters[id]?.timeout.cancel()
            waiters[id]?.timeout = timer(id, grace)
        }
    }

    /// Fails wait `id` after `timeout`; cancelled when the wait is settled first.
    private func timer(_ id: UInt64, _ timeout: Duration) -> Task<Void, Never> {
        Task { [weak self] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            await self?.settle(id, with: .failure(WaitFailure.timedOut(timeout)))
        }
    }

    /// The journal subscription ended: every wait fails, now and from now on.
    func endOfJournal() {
        journalEnded = true
        resumeSatisfiedWaiters()
    }

    private func isSatisfied(_ condition: Condition) throws(WaitFailure) -> Bool {
        guard !journalEnded else { throw .journalEnded }
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
