import Foundation
import Logging
import Metrics
import Synchronization
import SwitchboardAMQP
import SwitchboardCommon

/// Runs one shard: tails its journal (standby), and while the broker delivers its queue to this instance
/// (single active consumer), takes deliveries in batches: journal, core, publish effects, acknowledge.
final class ShardWorker<Adapter: ShardCoreAdapter>: Sendable {
    /// A writing term: from this instance's marker until it loses its connection or its place.
    private struct Term {
        let epoch: String
        /// The connection generation whose deliveries this term acknowledges.
        let connectionGeneration: UInt64
        var nextSeq: UInt64
        var entriesSinceSnapshot: Int
        /// Journal bytes appended since the last snapshot, and that snapshot's size.
        var bytesSinceSnapshot = 0
        var lastSnapshotBytes = 0
        var lastSnapshotAt: ContinuousClock.Instant
        /// How long the last snapshot took the broker to append: about how long the next one holds the journal.
        var lastSnapshotAppend = Duration.zero
        /// A snapshot being encoded off the writer's path, appended at the first batch after it is ready that
        /// leaves room before the shard's next deadline.
        var encodingSnapshot: EncodingSnapshot?
        /// The last batch's effects, while the broker confirms them and the next batch is journaled.
        var pending: PendingEffects?

        mutating func restartSnapshotCounters() {
            entriesSinceSnapshot = 0
            bytesSinceSnapshot = 0
            lastSnapshotAt = .now
        }

        func snapshotDue(_ configuration: ShardRuntimeConfiguration) -> Bool {
            configuration.snapshotDue(
                entries: entriesSinceSnapshot, journalBytes: bytesSinceSnapshot, lastSnapshotBytes: lastSnapshotBytes,
                sinceLastSnapshot: lastSnapshotAt.duration(to: .now))
        }
    }

    let shard: Int
    private let configuration: ShardRuntimeConfiguration
    private let connection: AMQPConnection
    private let publisher: AMQPPublisher
    private let ledger: ShardLedger<Adapter>
    private let inbox = ShardInbox()
    private let timer: ShardTimer
    private let metrics: ShardMetrics
    private let readiness: Readiness
    private let logger: Logger
    private let queueName: String
    private let journalName: String
    /// The journal follower and the queue pump.
    private let background = Mutex<[Task<Void, Never>]>([])
    private let pulses = Mutex<Task<Void, Never>?>(nil)
    private let consumers = Mutex<[AMQPConsumer]>([])
    /// Where a reason this shard stops the runtime is reported: a subscription the broker ended, or a journal
    /// this instance was handed and could not read.
    private let lost: AsyncStream<any ShardStop>.Continuation
    /// Set by `stop()`: the subscriptions it ends are no loss.
    private let stopping = Atomic<Bool>(false)
    /// Set when this instance was handed the shard and must not write it (`JournalUnreadable`): the writer
    /// tries no more, and the runtime stops.
    private let refusedToWrite = Atomic<Bool>(false)

    private init(
        shard: Int, configuration: ShardRuntimeConfiguration, connection: AMQPConnection, publisher: AMQPPublisher,
        readiness: Readiness, lost: AsyncStream<any ShardStop>.Continuation, logger: Logger
    ) {
        self.shard = shard
        self.lost = lost
        self.configuration = configuration
        self.connection = connection
        self.publisher = publisher
        self.readiness = readiness
        var logger = logger
        logger[metadataKey: "shard"] = "\(shard)"
        self.logger = logger
        let metrics = ShardMetrics(service: Adapter.service, shard: shard, factory: configuration.metrics)
        self.metrics = metrics
        let configured = configuration.coreLimits(of: Adapter.self)
        let reports = ShardLedger<Adapter>.Reports(
            configuredLimits: configured,
            limitsDiffer: { [logger] differ, held in
                metrics.limitsDiffer.record(differ ? 1 : 0)
                guard differ else { return }
                logger.notice(
                    "the shard holds other memory limits than this instance is configured with; a takeover by this instance changes them",
                    metadata: ["held": held.listed, "configured": configured.listed])
            },
            unread: { [logger] record in
                metrics.journalUnread.record(record == nil ? 0 : 1)
                readiness.setUnreadable(record.map { "\($0)" }, shard: shard)
                guard record == nil else { return }
                logger.notice("read a snapshot after the journal record this instance could not read: it may write the shard again")
            })
        ledger = ShardLedger(logger: logger, clock: { Self.wallClock() }, reports: reports)
        timer = ShardTimer(inbox: inbox)
        queueName = ServiceTopology.shardQueue(Adapter.service, shard: shard)
        journalName = ServiceTopology.journal(Adapter.service, shard: shard)
    }

    /// Subscribes to the journal (tailing from its restart point, or its start) and to the shard queue, and
    /// starts the pulses.
    /// A subscription the broker ends (not `stop()`) is reported to `lost`.
    static func start(
        shard: Int, configuration: ShardRuntimeConfiguration, connection: AMQPConnection, readiness: Readiness,
        lost: AsyncStream<any ShardStop>.Continuation, logger: Logger
    ) async throws -> ShardWorker {
        let publisher = try await connection.publisher(confirmWindow: configuration.confirmWindow)
        let worker = ShardWorker(
            shard: shard, configuration: configuration, connection: connection, publisher: publisher,
            readiness: readiness, lost: lost, logger: logger)
        try await worker.subscribe()
        return worker
    }

    private func subscribe() async throws {
        var start = StreamOffset.first
        if let point = try await ledger.beginAtRestartPoint(of: journalName, on: connection) {
            start = .offset(point.offset)
            logger.info(
                "reading the journal from its restart point", metadata: ["offset": "\(point.offset)", "epoch": "\(point.epoch)"])
        } else {
            logger.info("reading the journal from its start")
        }
        let journal = try await connection.consume(
            queue: journalName, prefetch: configuration.prefetch, arguments: start.consumerArguments)
        consumers.withLock { $0.append(journal) }
        let follower = Task { [ledger, journalName, metrics] in
            let assembler = JournalRecordAssembler()
            do {
                for try await delivery in journal {
                    switch assembler.add(delivery.body, headers: delivery.properties.headers) {
                    case .record(let record):
                        metrics.journalRecordsRead.increment()
                        // This instance's own records need no decoding: the ledger has their entries.
                        guard await !ledger.receivePrepared(record.label, at: record.offset) else { break }
                        do {
                            await ledger.receive(try JournalEntry.decodeRecord(record.body), at: record.offset)
                        } catch {
                            let metadata: Logger.Metadata = ["error": "\(error)", "offset": "\(record.offset.map { "\($0)" } ?? "?")"]
                            if await ledger.couldNotRead(record.label, reason: "\(error)") {
                                logger.error(
                                    "skipping an unreadable journal record; until a snapshot after it, this instance does not write the shard",
                                    metadata: metadata)
                            } else {
                                logger.warning(
                                    "skipping an unreadable journal record of a superseded writer, or one already applied", metadata: metadata)
                            }
                        }
                    case .held:
                        break
                    case .dropped(let reason):
                        logger.warning("skipping a journal record that is not whole", metadata: ["reason": "\(reason)"])
                    }
                    delivery.ackStreamRead()
                }
                self.subscriptionEnded(journalName, error: nil)
            } catch {
                self.subscriptionEnded(journalName, error: error)
            }
            // Without its journal the shard can neither stand by nor write: waiting for it would be in vain.
            await ledger.endOfJournal()
        }
        let queue: AMQPConsumer
        do {
            queue = try await connection.consume(queue: queueName, prefetch: configuration.prefetch)
        } catch {
            // This worker is not started: its journal subscription ends here, and that is no loss.
            stopping.store(true, ordering: .releasing)
            journal.cancel()
            throw error
        }
        consumers.withLock { $0.append(queue) }
        // Ready to take over only once the broker can hand it the shard queue.
        readiness.set(.standby, shard: shard)
        let pump = Task { [inbox, queueName] in
            do {
                for try await delivery in queue { inbox.add(delivery) }
                self.subscriptionEnded(queueName, error: nil)
            } catch {
                self.subscriptionEnded(queueName, error: error)
            }
        }
        let pulsing = Task { [publisher, queueName, configuration, logger, connection, inbox] in
            let properties = AMQPProperties(headers: [ServiceTopology.pulseHeader: true], type: "tick")
            var generation = connection.generation
            while !Task.isCancelled {
                // A connection lost, even if re-established at once, may have cost this instance the shard queue:
                // the writer looks, though no delivery or timer may come to wake it.
                if connection.generation != generation {
                    generation = connection.generation
                    inbox.wake()
                }
                do {
                    try await publisher.publish([], exchange: "", routingKey: queueName, properties: properties)
                } catch {
                    logger.debug("pulse not published", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: configuration.pulseInterval)
            }
        }
        background.withLock { $0 += [follower, pump] }
        pulses.withLock { $0 = pulsing }
    }

    /// A subscription ended without `stop()`: the broker cancelled it (queue deleted, stream member gone) or
    /// closed its channel.
    private func subscriptionEnded(_ queue: String, error: (any Error)?) {
        guard !stopping.load(ordering: .acquiring) else { return }
        let loss = SubscriptionLost(shard: shard, queue: queue, reason: error.map { "\($0)" } ?? "the broker ended it")
        logger.error("a subscription ended", metadata: ["queue": "\(queue)", "reason": "\(loss.reason)"])
        readiness.subscriptionEnded(shard: shard)
        lost.yield(loss)
    }

    /// Stops the subscriptions and the pulses; unacknowledged deliveries go back to the queue.
    func stop() async {
        stopping.store(true, ordering: .releasing)
        timer.schedule(nil, now: Self.wallClock())
        // Not awaited: while the connection is lost, a pulse waits for it to come back (up to the AMQP
        // configuration's reconnectWaitTimeout, a minute), and closing the connection ends that wait.
        pulses.withLock { $0 }?.cancel()
        for consumer in consumers.withLock({ $0 }) { consumer.cancel() }
        let tasks = background.withLock { $0 }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        inbox.finish()
    }

    // MARK: - Writing

    /// Processes deliveries while this instance is the shard's active consumer; returns when cancelled,
    /// after finishing the batch in flight (and writing a snapshot when `snapshotOnStop`). Finishing waits for
    /// no reconnect and for the journal `stopGrace` at most: with the broker away, nothing it waits for
    /// would come. (Every writer of the runtime is cancelled when it stops, so the connection, which they
    /// share, is told by each.)
    func runWriter(snapshotOnStop: Bool) async {
        await withTaskCancellationHandler {
            await write(snapshotOnStop: snapshotOnStop)
        } onCancel: { [connection, ledger] in
            connection.stopWaitingForReconnects()
            Task { await ledger.shortenWaits(to: Self.stopGrace) }
        }
    }

    static var stopGrace: Duration { .seconds(5) }

    private func write(snapshotOnStop: Bool) async {
        var term: Term?
        // Deliveries taken while this instance could not write, processed once it can. They are kept, not
        // requeued: every requeue counts toward the shard queue's delivery limit, so an outage of the journal
        // would otherwise dead-letter good input.
        var held: [AMQPDelivery] = []
        var failedAttempts = 0
        for await _ in inbox.signals {
            let (taken, oldestArrival, timerFiredAt) = inbox.take(max: Int(configuration.prefetch))
            if let oldestArrival { metrics.stages.inboxWait.recordInterval(since: oldestArrival) }
            if let timerFiredAt { metrics.stages.timerToBatch.recordInterval(since: timerFiredAt) }
            // Deliveries of an earlier connection cannot be acknowledged: the broker delivers them again, to this
            // instance or to the one it hands the shard to meanwhile. Taking the shard over for them would write
            // the journal beside that one's term, again and again, since their acks always fail.
            let current = connection.generation
            let deliveries = (held + taken).filter { $0.connectionGeneration == current }
            held = []
            // A connection lost, even if re-established at once, may have cost this instance the shard queue.
            if let active = term, active.connectionGeneration != current || connection.state != .connected {
                demote(reason: "the connection was lost")
                term = nil
            }
            if !deliveries.isEmpty {
                if term == nil {
                    term = await activate(connectionGeneration: current)
                    // Its deliveries go back to the queue as the runtime closes the connection.
                    if refusedToWrite.load(ordering: .acquiring) { return }
                }
            } else if term == nil {
                // Nothing this instance may write: it is a standby until the broker hands it a delivery.
                continue
            }
            // Otherwise, with no delivery: a tick that may be due, or the last batch's confirms (which wake the
            // writer) to settle.
            var unsettled = deliveries
            if let active = term { (term, unsettled) = await runBatch(deliveries, term: active) }
            if term == nil {
                // Tried again after a pause that grows while the failures last: no busy loop, no flood of logs.
                held = unsettled
                try? await Task.sleep(for: takeoverBackoff.delay(afterFailedAttempts: failedAttempts))
                failedAttempts += 1
                inbox.wake()
            } else {
                failedAttempts = 0
            }
        }
        if var active = term {
            do {
                try await settle(&active)
                if snapshotOnStop, active.entriesSinceSnapshot > 0 || active.encodingSnapshot != nil {
                    try await writeSnapshot(&active)
                }
            } catch {
                logger.error("the last batch or the snapshot at shutdown failed", metadata: ["error": "\(error)"])
            }
            demote(reason: "shutting down")
        }
    }

    /// Runs one batch (with no deliveries: a tick if one is due, and the last batch's effects settled).
    /// Returns the term to continue with, or `nil` when this instance must catch up again
    /// with the deliveries not yet acknowledged, to be processed again then.
    private func runBatch(
        _ deliveries: [AMQPDelivery], term: Term
    ) async -> (term: Term?, unsettled: [AMQPDelivery]) {
        var term = term
        do {
            try await process(deliveries, term: &term)
            return (term, [])
        } catch {
            logger.warning("batch failed; this shard catches up again before it continues", metadata: ["error": "\(error)"])
            demote(reason: "\(error)")
            // Until its effects are confirmed, a pending batch's deliveries are unacknowledged as well.
            return (nil, (term.pending?.deliveries ?? []) + deliveries)
        }
    }

    private func activate(connectionGeneration: UInt64) async -> Term? {
        readiness.set(.catchingUp, shard: shard)
        let started = ContinuousClock.now
        let nonce = UUID().uuidString
        do {
            try await append([JournalEntry(seq: nil, now: Self.wallClock(), epoch: nonce, content: .marker)])
            try await ledger.waitUntil(.markerRead(nonce), timeout: configuration.catchUpTimeout)
            let (appliedSeq, tail) = try await ledger.takeOver(epoch: nonce)
            // Their effects may not all have been confirmed; ids are deterministic, so receivers drop repeats.
            try await publishAll(outgoing(for: tail))
            var term = Term(
                epoch: nonce, connectionGeneration: connectionGeneration, nextSeq: appliedSeq + 1,
                entriesSinceSnapshot: tail.count, lastSnapshotAt: .now)
            let changedLimits = try await journalLimitsIfChanged(&term)
            // After a change of limits, at once: a smaller core is what the next start reads.
            if changedLimits || term.snapshotDue(configuration) { try await writeSnapshot(&term) }
            metrics.catchUp.recordInterval(since: started)
            metrics.active.record(1)
            readiness.set(.active, shard: shard)
            timer.schedule(await ledger.nextDeadline, now: Self.wallClock())
            logger.info(
                "shard active", metadata: ["seq": "\(appliedSeq)", "republished": "\(tail.count)", "epoch": "\(nonce)"])
            return term
        } catch ShardLedger<Adapter>.WaitFailure.unread(let record) {
            // Writing from a core that may lack what other readers applied would fork the shard's history.
            // Stopped, this instance lets the broker hand the shard to another; started again, it reads the
            // journal afresh from its latest snapshot.
            logger.critical("cannot write the shard", metadata: ["reason": "\(record)"])
            readiness.set(.standby, shard: shard)
            refusedToWrite.store(true, ordering: .releasing)
            lost.yield(JournalUnreadable(shard: shard, record: "\(record)"))
            return nil
        } catch {
            logger.warning("could not take over the shard", metadata: ["error": "\(error)"])
            readiness.set(.standby, shard: shard)
            return nil
        }
    }

    /// Journals the configured memory limits as the term's first entry when the core holds others (the
    /// configuration changed, or a new version has other defaults), so every reader changes them at that
    /// entry; returns whether it did.
    private func journalLimitsIfChanged(_ term: inout Term) async throws -> Bool {
        let held = await ledger.limits()
        let wanted = configuration.coreLimits(of: Adapter.self)
        guard held != wanted else { return false }
        let entry = JournalEntry(seq: term.nextSeq, now: Self.wallClock(), epoch: term.epoch, content: .limits(wanted.named))
        await ledger.prepare([(entry, nil)], epoch: term.epoch)
        term.bytesSinceSnapshot += try await append([entry])
        try await ledger.waitUntil(.applied(through: term.nextSeq, epoch: term.epoch), timeout: configuration.catchUpTimeout)
        term.nextSeq += 1
        term.entriesSinceSnapshot += 1
        logger.notice("memory limits changed", metadata: ["from": held.listed, "to": wanted.listed])
        return true
    }

    private func demote(reason: String) {
        timer.schedule(nil, now: Self.wallClock())
        metrics.active.record(0)
        readiness.set(.standby, shard: shard)
        logger.info("shard standing by", metadata: ["reason": "\(reason)"])
    }

    /// Journals the deliveries (and a tick among them, when the core's deadline has passed), applies them as
    /// read back, settles the last batch's effects, then publishes these effects and leaves them pending:
    /// the next batch is journaled while the broker confirms them.
    private func process(_ deliveries: [AMQPDelivery], term: inout Term) async throws {
        let started = ContinuousClock.now
        // A snapshot covers only entries whose effects are confirmed: those after it are published again at
        // a takeover, those before it never.
        if term.encodingSnapshot == nil, term.snapshotDue(configuration) {
            try await settle(&term)
            await startSnapshot(&term)
        }
        try await appendEncodedSnapshot(&term)
        let now = Self.wallClock()
        let firstSeq = term.nextSeq
        // Each entry with its delivery as decoded here (none for a tick), for the ledger to apply as read back.
        var prepared: [(entry: JournalEntry, decoded: DecodedDelivery<Adapter.Input>?)] = []
        var rejections: [OutgoingMessage] = []
        var tick: (position: Int, lateness: Int64)?
        if let deadline = await ledger.nextDeadline, deadline <= now {
            let lateness = now - deadline
            tick = (Self.tickPosition(among: deliveries.map(\.receivedAt), dueAt: .now - .milliseconds(lateness)), lateness)
        }
        func appendTick() {
            metrics.timerLateness.recordMilliseconds(max(0, tick!.lateness))
            prepared.append((JournalEntry(seq: term.nextSeq, now: now, epoch: term.epoch, content: .tick), nil))
            term.nextSeq += 1
        }
        for (position, delivery) in deliveries.enumerated() {
            if position == tick?.position { appendTick() }
            if delivery.properties.headers[ServiceTopology.pulseHeader] != nil {
                metrics.pulses.increment()
                continue
            }
            var input = JournalInput(delivery)
            input.refusal = configuration.admission(input)
            let decoding = Adapter.decode(input)
            switch decoding {
            case .input:
                metrics.inputs.increment()
            case .rejected(let reason, let answer):
                metrics.rejected(.contract)
                logger.info("bad input dead-lettered", metadata: ["reason": "\(reason)", "id": "\(input.messageID ?? "")"])
                rejections.append(deadLetter(input, reason: reason))
                guard answer != nil else { continue }
            }
            prepared.append((JournalEntry(seq: term.nextSeq, now: now, epoch: term.epoch, content: .input(input)), decoding))
            term.nextSeq += 1
        }
        if tick?.position == deliveries.count { appendTick() }
        let entries = prepared.map(\.entry)
        var effects = rejections
        if let lastSeq = entries.last?.seq {
            await ledger.prepare(prepared, epoch: term.epoch)
            let appending = ContinuousClock.now
            term.bytesSinceSnapshot += try await append(entries)
            let confirmed = ContinuousClock.now
            metrics.stages.journalConfirm.record(duration: appending.duration(to: confirmed))
            // Applied only as read back from the journal: an entry that lands after a successor's marker is
            // never applied here, so this instance cannot publish effects its successor did not decide.
            try await ledger.waitUntil(.applied(through: lastSeq, epoch: term.epoch), timeout: configuration.catchUpTimeout)
            metrics.stages.apply.recordInterval(since: confirmed)
            term.entriesSinceSnapshot += entries.count
            effects += outgoing(for: await ledger.applied(firstSeq...lastSeq))
        }
        try await settle(&term)
        // Nothing after this throws: on a failure, the deliveries are either this batch's or pending ones.
        if !effects.isEmpty || !deliveries.isEmpty {
            term.pending = PendingEffects(
                confirmation: Task { [inbox, metrics] in
                    defer { inbox.wake() }
                    let publishing = ContinuousClock.now
                    try await self.publishAll(effects)
                    metrics.stages.effectsConfirm.recordInterval(since: publishing)
                },
                deliveries: deliveries)
        }
        timer.schedule(await ledger.nextDeadline, now: Self.wallClock())
        // Not a batch: the writer woken to settle the last one.
        guard !deliveries.isEmpty || !entries.isEmpty else { return }
        metrics.batchSize.record(deliveries.count)
        metrics.processing.recordInterval(since: started)
    }

    /// Waits for the pending batch's effects to be confirmed, then acknowledges its deliveries.
    private func settle(_ term: inout Term) async throws {
        guard let pending = term.pending else { return }
        try await pending.confirmation.value
        if let last = pending.deliveries.last {
            let acking = ContinuousClock.now
            try last.ack(multiple: true)
            metrics.stages.ack.recordInterval(since: acking)
        }
        term.pending = nil
    }

    /// Encodes and appends a snapshot of the core as it is now (at a takeover and at shutdown).
    private func writeSnapshot(_ term: inout Term) async throws {
        let (core, asOf) = await ledger.coreForSnapshot()
        term.encodingSnapshot = nil
        term.restartSnapshotCounters()
        try await appendSnapshot(try encodeSnapshot(core), asOf: asOf, now: Self.wallClock(), term: &term)
    }

    private func encodeSnapshot(_ core: Adapter.Core) throws -> SnapshotState {
        let started = ContinuousClock.now
        defer { metrics.snapshotEncoding.recordInterval(since: started) }
        return SnapshotState(try WireCodec.encodeSnapshot(core))
    }

    /// Starts encoding a snapshot of the core as it is now on a thread of its own: a large core takes long
    /// to encode, and the shard goes on meanwhile. (A Dispatch queue, not a task: hundreds of milliseconds
    /// of encoding would hold one of the few threads every shard's tasks run on.) The journal's later
    /// entries count from here.
    private func startSnapshot(_ term: inout Term) async {
        let (core, asOf) = await ledger.coreForSnapshot()
        let encoding = EncodingSnapshot(asOf: asOf)
        let encode: @Sendable () -> Void = { encoding.finish(Result { try self.encodeSnapshot(core) }) }
        if configuration.encodesSnapshotsInline { encode() } else { DispatchQueue.global(qos: .utility).async(execute: encode) }
        term.encodingSnapshot = encoding
        term.restartSnapshotCounters()
    }

    /// Appends the snapshot being encoded, if it is ready and the shard's next deadline leaves room for it
    /// (see `ShardRuntimeConfiguration.snapshotAppendsNow`).
    private func appendEncodedSnapshot(_ term: inout Term) async throws {
        guard let encoding = term.encodingSnapshot, let outcome = encoding.outcome else { return }
        // The snapshot's entry bears the time it was decided at.
        let now = Self.wallClock()
        guard
            configuration.snapshotAppendsNow(
                nextDeadline: await ledger.nextDeadline, now: now, lastAppend: term.lastSnapshotAppend,
                heldFor: outcome.readyAt.duration(to: .now))
        else { return }
        term.encodingSnapshot = nil
        metrics.stages.snapshotHeld.recordInterval(since: outcome.readyAt)
        switch outcome.result {
        case .success(let state):
            try await appendSnapshot(state, asOf: encoding.asOf, now: now, term: &term)
        case .failure(let error):
            logger.error("a snapshot could not be encoded", metadata: ["error": "\(error)"])
        }
    }

    private func appendSnapshot(_ state: SnapshotState, asOf: UInt64, now: Instant, term: inout Term) async throws {
        let (snapshot, record) = JournalEntry.snapshot(
            seq: term.nextSeq, now: now, epoch: term.epoch, asOf: asOf, state: state)
        // Read back as prepared, not decoded again: a large core's snapshot takes the journal's reader tens of
        // milliseconds to decode, and the entries after it wait behind it.
        await ledger.prepare([(snapshot, nil)], epoch: term.epoch)
        let appending = ContinuousClock.now
        term.lastSnapshotBytes = try await append(records: [(record, [snapshot][...])])
        term.lastSnapshotAppend = appending.duration(to: .now)
        metrics.stages.snapshotAppend.record(duration: term.lastSnapshotAppend)
        term.nextSeq += 1
        metrics.snapshots.increment()
        metrics.snapshotBytes.record(term.lastSnapshotBytes)
    }

    // MARK: - Publishing

    /// Appends the entries as few records as their size allows (one for a batch of ordinary inputs);
    /// returns the bytes appended.
    @discardableResult
    private func append(_ entries: [JournalEntry]) async throws -> Int {
        try await append(records: JournalEntry.encodeRecords(entries, maxBytes: configuration.journalMessageBytes))
    }

    /// Appends the records, each with the entries it holds, a record larger than a journal message in parts;
    /// returns the bytes appended. Every message carries the latest restart point this instance knows (or says
    /// to read from the start), for an instance starting later.
    private func append(records: [(body: [UInt8], entries: ArraySlice<JournalEntry>)]) async throws -> Int {
        let restartHeaders = await ledger.restartPoint?.headers ?? JournalRestartPoint.fromTheStart
        let messages = records.flatMap { record in
            JournalRecordParts.messages(
                of: record.body, label: JournalRecordLabel(record.entries), maxBytes: configuration.journalMessageBytes
            ).map { message in
                OutgoingMessage(
                    body: message.body, exchange: "", routingKey: journalName,
                    properties: AMQPProperties(
                        contentType: WireProperties.jsonContentType,
                        headers: message.headers.merging(restartHeaders) { own, _ in own }, deliveryMode: .persistent),
                    mandatory: true)
            }
        }
        try await publishAll(messages)
        metrics.journalAppends.increment(by: messages.count)
        metrics.journalEntries.increment(by: records.reduce(0) { $0 + $1.entries.count })
        return messages.reduce(0) { $0 + $1.body.count }
    }

    /// Publishes all in order, pipelined within the confirm window, and returns when every one is confirmed.
    private func publishAll(_ messages: [OutgoingMessage]) async throws {
        try await publisher.publish(contentsOf: messages)
    }

    /// The publishes for applied entries' effects, with ids `<service>.<shard>.<seq>.<effect index>`.
    private func outgoing(for applied: [ShardLedger<Adapter>.AppliedEntry]) -> [OutgoingMessage] {
        var messages: [OutgoingMessage] = []
        for entry in applied {
            for effect in Adapter.actions(for: entry.effects, shard: shard, seq: entry.seq) {
                let action: ShardAction
                switch effect.action {
                case .success(let success):
                    action = success
                case .failure(let error):
                    logger.error(
                        "an effect cannot be encoded and is dropped", metadata: ["id": "\(effect.id)", "error": "\(error)"])
                    continue
                }
                switch action {
                case .publish(let message):
                    messages.append(
                        OutgoingMessage(
                            body: Array(message.body), exchange: message.exchange.rawValue, routingKey: message.routingKey,
                            properties: AMQPProperties(message.properties), mandatory: false))
                case .deadLetter(let reason):
                    guard let input = entry.input else { continue }
                    metrics.rejected(.core)
                    logger.info("input dead-lettered by the core", metadata: ["reason": "\(reason)", "seq": "\(entry.seq)"])
                    messages.append(deadLetter(input, reason: reason))
                case .wakeUp:
                    continue
                case .routerGap(let desk, let expected, let got):
                    metrics.routerGaps.increment()
                    logger.warning(
                        "Router events skipped", metadata: ["desk": "\(desk)", "expected": "\(expected)", "got": "\(got)"])
                    continue
                }
                metrics.effectsPublished.increment()
            }
        }
        return messages
    }

    /// A copy of the delivery for `switchboard.dead`, saying why and where it came from.
    private func deadLetter(_ input: JournalInput, reason: String) -> OutgoingMessage {
        var headers: AMQPTable = [
            "x-switchboard-reason": .string(reason),
            "x-switchboard-service": .string(Adapter.service.rawValue),
            "x-original-exchange": .string(input.exchange),
            "x-original-routing-key": .string(input.routingKey),
        ]
        if let desk = input.deskHeader { headers["desk"] = .string(desk) }
        // Not as `user_id`, which the broker checks against this service's own user: a requeue restores it.
        if let user = input.userID { headers["x-original-user-id"] = .string(user) }
        let properties = AMQPProperties(
            contentType: input.contentType, headers: headers, deliveryMode: .persistent, messageID: input.messageID,
            timestamp: input.timestamp.map { UInt64(clamping: $0) }, type: input.type)
        return OutgoingMessage(
            body: Array(input.body), exchange: ServiceTopology.deadLetterExchange, routingKey: input.routingKey,
            properties: properties, mandatory: false)
    }

    /// Where a due tick goes among a batch's deliveries (received at `receivedAt`, in the order taken): before
    /// the first one received after the deadline. All of a batch run at one `now`, so this keeps the order in
    /// which things happened: an accept or a reply received before the deadline is not judged late because
    /// the timer's turn came in the same batch, and a request received after it meets the state the expiry left.
    static func tickPosition(among receivedAt: [ContinuousClock.Instant], dueAt: ContinuousClock.Instant) -> Int {
        receivedAt.firstIndex { $0 > dueAt } ?? receivedAt.count
    }

    static func wallClock() -> Instant {
        Instant(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }
}

extension Metrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        record(duration: start.duration(to: .now))
    }
}

/// The pauses between a shard writer's attempts to take over after a failure: from 100 ms, doubling up to 5 s,
/// as the connection's own reconnects.
let takeoverBackoff = ReconnectBackoff(initialDelay: .milliseconds(100), maximumDelay: .seconds(5))

/// A batch whose effects were published and are not yet all confirmed, and its deliveries, acknowledged once
/// they are. One at most: the next batch is journaled and applied meanwhile, but its own effects go out only
/// after these are confirmed, so effects keep the order of the journal, and a failure stops both batches.
struct PendingEffects: Sendable {
    let confirmation: Task<Void, any Error>
    let deliveries: [AMQPDelivery]
}

/// The outcome of encoding a snapshot off the writer's path; the writer polls it between batches.
final class EncodingSnapshot: Sendable {
    /// The seq the encoded core is as of.
    let asOf: UInt64
    private let finished = Mutex<(result: Result<SnapshotState, any Error>, at: ContinuousClock.Instant)?>(nil)

    init(asOf: UInt64) {
        self.asOf = asOf
    }

    func finish(_ result: Result<SnapshotState, any Error>) {
        finished.withLock { $0 = (result, .now) }
    }

    /// The encoding's result and when it was ready; `nil` while encoding.
    var outcome: (result: Result<SnapshotState, any Error>, readyAt: ContinuousClock.Instant)? {
        finished.withLock { $0.map { ($0.result, $0.at) } }
    }
}

extension CoreLimits {
    /// As a log shows them (`ListedLimits`).
    fileprivate var listed: Logger.MetadataValue { "\(ListedLimits(named))" }
}
