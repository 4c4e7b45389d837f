import Foundation
import Logging
import SwitchboardAMQP
import SwitchboardCommon
import Synchronization
@testable import SwitchboardRuntime
import Testing

private let acme = try! DeskID("acme")
private let ann = try! AgentID("ann")
private let t0 = Instant(millisecondsSinceEpoch: 1_764_093_600_000)

/// A journaled delivery of `body` for desk acme, as the runtime would journal it.
private func delivery(_ body: InboundBody, id: String) -> JournalInput {
    let wire = try! WireCodec.outgoing(InboundMessage(id: try! MessageID(id), desk: acme, at: t0, body: body))
    let properties = wire.properties
    return JournalInput(
        exchange: wire.exchange.rawValue, routingKey: wire.routingKey, body: wire.body, contentType: properties.contentType,
        messageID: properties.messageID, type: properties.type, timestamp: properties.timestamp,
        deliveryMode: properties.deliveryMode, deskHeader: properties.deskHeader)
}

private func entry(_ seq: UInt64, _ epoch: String, _ content: JournalEntry.Content) -> JournalEntry {
    JournalEntry(seq: seq, now: t0, epoch: epoch, content: content)
}

private func marker(_ epoch: String) -> JournalEntry {
    JournalEntry(seq: nil, now: t0, epoch: epoch, content: .marker)
}

private let configure = delivery(.deskConfigure(DeskSettingsPatch()), id: "m1")
private let upsert = delivery(.agentUpsert(AgentProfile(agent: ann, groups: [], capacity: 1)), id: "m2")
private let sync = delivery(.agentSync(agent: ann), id: "m3")

/// The label of a record of entries `seqs` of `epoch`, as the journal reader gets it from the headers.
private func label(_ epoch: String, _ seqs: ClosedRange<UInt64>) -> JournalRecordLabel? {
    JournalRecordLabel(ArraySlice(seqs.map { entry($0, epoch, .tick) })).flatMap { JournalRecordLabel($0.headers) }
}

/// A snapshot of the ledger's core as the writer encodes one, and the seq it is as of.
private func encodedSnapshot(_ ledger: ShardLedger<RouterAdapter>) async throws -> (Data, UInt64) {
    let (core, asOf) = await ledger.coreForSnapshot()
    return (try WireCodec.encodeSnapshot(core), asOf)
}

/// The seq of every Router event an applied entry produced, in order.
private func eventSeqs(_ applied: [ShardLedger<RouterAdapter>.AppliedEntry]) -> [UInt64] {
    applied.flatMap { entry in
        entry.effects.compactMap { effect -> UInt64? in
            if case .publish(let event) = effect { return event.seq }
            return nil
        }
    }
}

@Suite struct ShardLedgerTests {
    @Test func entriesOfOneBatchThatArriveOutOfOrderAreAppliedInSeqOrder() async throws {
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "test"), clock: { t0 })
        await ledger.receive([marker("a")])
        await ledger.receive([entry(2, "a", .input(upsert))])
        await ledger.receive([entry(3, "a", .input(sync))])
        #expect(await ledger.appliedSeq == 0)
        await ledger.receive([entry(1, "a", .input(configure))])
        #expect(await ledger.appliedSeq == 3)
        // desk.configured, agent.changed, agent.state: the desk's seq follows the journal's order.
        #expect(eventSeqs(await ledger.applied(1...3)) == [1, 2, 3])
    }

    @Test func appliedGivesExactlyTheEntriesOfItsRange() async throws {
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "test"), clock: { t0 })
        await ledger.receive([marker("a")] + (1...10).map { entry($0, "a", .tick) })
        #expect(await ledger.applied(4...6).map(\.seq) == [4, 5, 6])
        #expect(await ledger.applied(1...1).map(\.seq) == [1])
        #expect(await ledger.applied(10...12).map(\.seq) == [10])
        #expect(await ledger.applied(11...12).isEmpty)
        #expect(await ledger.applied(0...0).isEmpty)
        #expect(await ledger.applied(0...10).count == 10)
    }

    @Test func entriesOfAnEarlierWriterAfterANewMarkerAreIgnored() async throws {
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "test"), clock: { t0 })
        await ledger.receive([marker("a")])
        await ledger.receive([entry(1, "a", .input(configure))])
        // Writer a's entry 3 arrived before its entry 2, which never came: b's marker drops it.
        await ledger.receive([entry(3, "a", .input(sync))])
        await ledger.receive([marker("b")])
        await ledger.receive([entry(2, "a", .input(upsert))])
        #expect(await ledger.appliedSeq == 1)
        await ledger.receive([entry(2, "b", .input(upsert))])
        #expect(await ledger.appliedSeq == 2)
        await #expect(throws: ShardLedger<RouterAdapter>.WaitFailure.self) {
            try await ledger.waitUntil(.applied(through: 2, epoch: "a"), timeout: .seconds(5))
        }
        try await ledger.waitUntil(.applied(through: 2, epoch: "b"), timeout: .seconds(5))
    }

    /// A stopping instance waits for its journal a short grace at most, the waits under way included. (Had
    /// either wait kept its own timeout, it would fail after ten minutes, and as `timedOut(600 s)`.)
    @Test func stoppingShortensEveryWaitForTheJournal() async throws {
        typealias WaitFailure = ShardLedger<RouterAdapter>.WaitFailure
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "test"), clock: { t0 })
        let underWay = Task { try await ledger.waitUntil(.markerRead("never"), timeout: .seconds(600)) }
        // Shortening must reach the wait under way, not just later ones: it starts once the ledger has it.
        while await ledger.waiting == 0 { await Task.yield() }
        await ledger.shortenWaits(to: .milliseconds(50))
        let failed = await #expect(throws: WaitFailure.self) { try await underWay.value }
        #expect(failed == .timedOut(.milliseconds(50)))
        let later = await #expect(throws: WaitFailure.self) {
            try await ledger.waitUntil(.markerRead("never either"), timeout: .seconds(600))
        }
        #expect(later == .timedOut(.milliseconds(50)))
        // What is there already still satisfies a wait at once.
        await ledger.receive([marker("a")])
        try await ledger.waitUntil(.markerRead("a"), timeout: .seconds(600))
    }

    @Test func takingOverHandsBackTheEntriesSinceTheLastSnapshot() async throws {
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "test"), clock: { t0 })
        await ledger.receive([marker("a")])
        await ledger.receive([entry(1, "a", .input(configure))])
        let (state, asOf) = try await encodedSnapshot(ledger)
        await ledger.receive([entry(2, "a", .snapshot(state, asOf: asOf))])
        await ledger.receive([entry(3, "a", .input(upsert))])
        await ledger.receive([marker("b")])
        try await ledger.waitUntil(.markerRead("b"), timeout: .seconds(5))
        let (appliedSeq, tail) = try await ledger.takeOver(epoch: "b")
        #expect(appliedSeq == 3)
        #expect(tail.map(\.seq) == [3])
        #expect(eventSeqs(tail) == [2])
        await #expect(throws: ShardLedger<RouterAdapter>.WaitFailure.self) { try await ledger.takeOver(epoch: "a") }
    }

    @Test func aReaderWhoseJournalStartWasCutOffBeginsAtTheFirstSnapshot() async throws {
        let writer = ShardLedger<RouterAdapter>(logger: Logger(label: "writer"), clock: { t0 })
        await writer.receive([marker("a")])
        await writer.receive([entry(1, "a", .input(configure))])
        await writer.receive([entry(2, "a", .input(upsert))])
        let (state, asOf) = try await encodedSnapshot(writer)

        let reader = ShardLedger<RouterAdapter>(logger: Logger(label: "reader"), clock: { t0 })
        // Retention removed the marker and the first entries.
        await reader.receive([entry(2, "a", .input(upsert))])
        #expect(await reader.appliedSeq == 0)
        await reader.receive([entry(3, "a", .snapshot(state, asOf: asOf))])
        await reader.receive([entry(4, "a", .input(sync))])
        #expect(await reader.appliedSeq == 4)
        // The restored desk knows ann and continues the desk's numbering.
        #expect(eventSeqs(await reader.applied(4...4)) == [3])
    }

    @Test func oldHistoryIsRunOnlyFromTheLastSnapshotWhenTakingOver() async throws {
        let writer = ShardLedger<RouterAdapter>(logger: Logger(label: "writer"), clock: { t0 })
        await writer.receive([marker("a")])
        await writer.receive([entry(1, "a", .input(configure))])
        await writer.receive([entry(2, "a", .input(upsert))])
        let (state, asOf) = try await encodedSnapshot(writer)

        // A day later, a new instance reads the journal from its start.
        let reader = ShardLedger<RouterAdapter>(logger: Logger(label: "reader"), clock: { t0 + 86_400_000 })
        await reader.receive([marker("a")])
        // An entry the snapshot replaces: were it run, the desk's numbering would be off by one.
        await reader.receive([entry(1, "a", .input(delivery(.deskConfigure(DeskSettingsPatch()), id: "m0")))])
        await reader.receive([entry(2, "a", .input(configure))])
        await reader.receive([entry(3, "a", .snapshot(state, asOf: asOf))])
        await reader.receive([entry(4, "a", .input(sync))])
        #expect(await reader.appliedSeq == 4)
        #expect(await reader.applied(1...4).isEmpty, "nothing is run while reading old history")
        await reader.receive([marker("b")])
        let (appliedSeq, tail) = try await reader.takeOver(epoch: "b")
        #expect(appliedSeq == 4)
        #expect(tail.map(\.seq) == [4])
        #expect(eventSeqs(tail) == [3])
    }

    /// The writer goes on journaling while a snapshot is encoded: entries after its `asOf` come before it.
    @Test func aSnapshotAsOfAnEarlierSeqKeepsTheEntriesAfterThatSeq() async throws {
        let writer = ShardLedger<RouterAdapter>(logger: Logger(label: "writer"), clock: { t0 })
        await writer.receive([marker("a")])
        await writer.receive([entry(1, "a", .input(configure))])
        let (state, asOf) = try await encodedSnapshot(writer)
        #expect(asOf == 1)
        let journal = [
            marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .input(upsert)),
            entry(3, "a", .snapshot(state, asOf: 1)), entry(4, "a", .input(sync)),
        ]

        // Read in order and warm: the tail keeps what came after the snapshot's state.
        await writer.receive(Array(journal[2...]))
        await writer.receive([marker("b")])
        let (warmSeq, warmTail) = try await writer.takeOver(epoch: "b")
        #expect(warmSeq == 4)
        #expect(warmTail.map(\.seq) == [2, 4])

        // Read cold a day later: the snapshot, then the entries after seq 1, ann's upsert among them.
        let cold = ShardLedger<RouterAdapter>(logger: Logger(label: "cold"), clock: { t0 + 86_400_000 })
        await cold.receive(journal)
        await cold.receive([marker("b")])
        let (coldSeq, coldTail) = try await cold.takeOver(epoch: "b")
        #expect(coldSeq == 4)
        #expect(coldTail.map(\.seq) == [2, 4])
        #expect(eventSeqs(coldTail) == eventSeqs(warmTail))

        // Cut off by retention before seq 2: the entry read before the snapshot is applied after it.
        let late = ShardLedger<RouterAdapter>(logger: Logger(label: "late"), clock: { t0 })
        await late.receive(Array(journal[2...]))
        #expect(await late.appliedSeq == 4)
        #expect(eventSeqs(await late.applied(2...4)) == eventSeqs(warmTail))
    }

    /// A change of limits counts from its entry on, for every reader: one reading as the journal is written,
    /// one reading old history a day later, and one whose journal starts at a snapshot taken after the change.
    @Test func aChangeOfLimitsIsAppliedAtItsEntryByEveryReader() async throws {
        let small = RouterCore.Limits(rememberedMessages: 1, rememberedOffersPerDesk: 2)
        // A message id the core remembered before the change, and forgets with it.
        let again = delivery(.agentSync(agent: ann), id: "m2")
        let journal = [
            marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .input(upsert)),
            entry(3, "a", .limits(small.named)), entry(4, "a", .input(sync)), entry(5, "a", .input(again)),
        ]
        let warm = ShardLedger<RouterAdapter>(logger: Logger(label: "warm"), clock: { t0 })
        await warm.receive(journal)
        #expect(await warm.limits() == small)
        // Only m3 is remembered after the change: a delivery with m2's id is taken (the agent's state is
        // published); with the limits the core had, it would have been dropped as a duplicate.
        #expect(await warm.applied(3...3).flatMap(\.effects).isEmpty)
        #expect(!eventSeqs(await warm.applied(5...5)).isEmpty)
        let unchanged = ShardLedger<RouterAdapter>(logger: Logger(label: "unchanged"), clock: { t0 })
        await unchanged.receive(journal.filter { if case .limits = $0.content { false } else { true } })
        #expect(await unchanged.limits() == RouterCore.Limits())
        #expect(eventSeqs(await unchanged.applied(5...5)).isEmpty)

        let cold = ShardLedger<RouterAdapter>(logger: Logger(label: "cold"), clock: { t0 + 86_400_000 })
        await cold.receive(journal)
        await cold.receive([marker("b")])
        let (coldSeq, coldTail) = try await cold.takeOver(epoch: "b")
        #expect(coldSeq == 5)
        #expect(coldTail.map(\.seq) == [1, 2, 3, 4, 5])
        #expect(eventSeqs(coldTail) == eventSeqs(await warm.applied(1...5)))
        #expect(await cold.limits() == small)

        let (state, asOf) = try await encodedSnapshot(warm)
        let late = ShardLedger<RouterAdapter>(logger: Logger(label: "late"), clock: { t0 })
        await late.receive([entry(6, "a", .snapshot(state, asOf: asOf))])
        #expect(await late.appliedSeq == 6)
        #expect(await late.limits() == small)
    }

    /// A record this reader could not read (a newer version's, say) whose entries count keeps it from taking
    /// over: other readers applied it, and it did not. A later snapshot as of that record or after gives it the
    /// state they hold, and then it may.
    @Test func aReaderThatCouldNotReadARecordDoesNotTakeOverUntilASnapshotCoversIt() async throws {
        typealias WaitFailure = ShardLedger<RouterAdapter>.WaitFailure
        let full = ShardLedger<RouterAdapter>(logger: Logger(label: "full"), clock: { t0 })
        let told = Told<UInt64?>()
        let reports = ShardLedger<RouterAdapter>.Reports(
            configuredLimits: RouterCore.Limits(), limitsDiffer: { _, _ in }, unread: { told.add($0?.through) })
        let reader = ShardLedger<RouterAdapter>(logger: Logger(label: "reader"), clock: { t0 }, reports: reports)
        await full.receive([marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .input(upsert))])
        await reader.receive([marker("a"), entry(1, "a", .input(configure))])
        #expect(await reader.couldNotRead(label("a", 2...2), reason: "unknown kind"))
        // The successor "b" continues from seq 2, as every reader that read it does.
        for ledger in [full, reader] {
            await ledger.receive([entry(3, "a", .input(sync))])
            await ledger.receive([marker("b"), entry(4, "b", .tick)])
        }
        await reader.receive([marker("c")])
        await #expect(throws: WaitFailure.unread(.init(through: 2, reason: "unknown kind"))) {
            try await reader.takeOver(epoch: "c")
        }

        // b's snapshot as of seq 4, the state every reader of the whole journal holds.
        await full.receive([marker("c")])
        let (state, asOf) = try await encodedSnapshot(full)
        #expect(asOf == 4)
        await reader.receive([entry(5, "c", .snapshot(state, asOf: asOf))])
        #expect(await reader.unread == nil)
        await reader.receive([marker("d")])
        let (seq, _) = try await reader.takeOver(epoch: "d")
        #expect(seq == 5)
        #expect(told.list == [2, nil], "told once when it could not read, once when a snapshot covered it")
    }

    /// A record that no reader counts is no reason to stay out: one of a superseded writer, or one whose
    /// entries were applied already. One that says nothing of itself might be anything, and counts.
    @Test func anUnreadRecordThatNoReaderCountsDoesNotKeepAReaderFromTakingOver() async throws {
        let reader = ShardLedger<RouterAdapter>(logger: Logger(label: "reader"), clock: { t0 })
        await reader.receive([marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .input(upsert))])
        #expect(await !reader.couldNotRead(label("a", 1...2), reason: "applied already"))
        #expect(await !reader.couldNotRead(label("z", 3...3), reason: "superseded"))
        await reader.receive([marker("b")])
        let (seq, _) = try await reader.takeOver(epoch: "b")
        #expect(seq == 2)
        #expect(await reader.couldNotRead(nil, reason: "no label"))
        await reader.receive([marker("c")])
        await #expect(throws: ShardLedger<RouterAdapter>.WaitFailure.unread(.init(through: nil, reason: "no label"))) {
            try await reader.takeOver(epoch: "c")
        }
    }

    /// A snapshot this reader cannot decode leaves its core without the state the snapshot holds: it does not
    /// take over with the state it had before.
    @Test func aReaderThatCannotDecodeASnapshotDoesNotTakeOver() async throws {
        let reader = ShardLedger<RouterAdapter>(logger: Logger(label: "reader"), clock: { t0 })
        await reader.receive([marker("a"), entry(1, "a", .input(configure))])
        await reader.receive([entry(3, "a", .snapshot(Data("not a core".utf8), asOf: 2))])
        await reader.receive([marker("b")])
        await #expect {
            try await reader.takeOver(epoch: "b")
        } throws: { error in
            guard case .unread(let record) = error as? ShardLedger<RouterAdapter>.WaitFailure else { return false }
            return record.through == 2 && record.reason.contains("snapshot as of seq 2")
        }
    }

    /// A reader configured with other limits than the shard's core holds says so once it is warm, and again
    /// each time that changes (a writer's change of limits); a cold reader says nothing until it has run its
    /// history, and one that starts from a snapshot judges the limits the snapshot holds.
    @Test func aReaderConfiguredWithOtherLimitsThanTheShardsCoreReportsIt() async throws {
        let small = RouterCore.Limits(rememberedMessages: 1, rememberedOffersPerDesk: 2)
        func watching(_ configured: RouterCore.Limits) -> (ShardLedger<RouterAdapter>.Reports, Told<Bool>) {
            let told = Told<Bool>()
            return (.init(configuredLimits: configured, limitsDiffer: { differ, _ in told.add(differ) }, unread: { _ in }), told)
        }

        let (watch, reports) = watching(small)
        let warm = ShardLedger<RouterAdapter>(logger: Logger(label: "warm"), clock: { t0 }, reports: watch)
        await warm.receive([marker("a"), entry(1, "a", .input(configure))])
        #expect(await warm.limitsDiffer == true)
        await warm.receive([entry(2, "a", .input(upsert))])
        await warm.receive([entry(3, "a", .limits(small.named))])
        #expect(await warm.limitsDiffer == false)
        await warm.receive([entry(4, "a", .input(sync)), entry(5, "a", .limits(RouterCore.Limits().named))])
        #expect(await warm.limitsDiffer == true)
        #expect(reports.list == [true, false, true], "reported when the answer changes, not per record")

        let (coldWatch, coldReports) = watching(small)
        let cold = ShardLedger<RouterAdapter>(
            logger: Logger(label: "cold"), clock: { t0 + 86_400_000 }, reports: coldWatch)
        await cold.receive([marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .limits(small.named))])
        #expect(await cold.limitsDiffer == nil, "a cold reader has not run its history through the core")
        #expect(coldReports.list.isEmpty)
        _ = await cold.limits()
        #expect(await cold.limitsDiffer == false)
        #expect(coldReports.list == [false])

        let (state, asOf) = try await encodedSnapshot(warm)
        let (lateWatch, lateReports) = watching(RouterCore.Limits())
        let late = ShardLedger<RouterAdapter>(logger: Logger(label: "late"), clock: { t0 }, reports: lateWatch)
        await late.receive([entry(6, "a", .snapshot(state, asOf: asOf))])
        #expect(await late.limitsDiffer == false, "the snapshot holds the defaults again, as configured")
        #expect(lateReports.list == [false])
    }

    @Test func anInvalidAgentCommandIsReplayedAsItsAnswer() async throws {
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "test"), clock: { t0 })
        var invalid = delivery(.agentSync(agent: ann), id: "bad-1")
        invalid.body = Data(#"{"v":1,"type":"offer.accept","id":"bad-1","desk":"acme","at":"2026-11-25T18:00:00.000Z","agent":"ann"}"#.utf8)
        invalid.type = "offer.accept"
        await ledger.receive([marker("a")])
        await ledger.receive([entry(1, "a", .input(configure))])
        await ledger.receive([entry(2, "a", .input(upsert))])
        await ledger.receive([entry(3, "a", .input(invalid))])
        let effects = await ledger.applied(3...3).flatMap(\.effects)
        guard case .publish(let event) = effects.first, case .commandRejected(let rejection) = event.body else {
            Issue.record("expected command.rejected, got \(effects)")
            return
        }
        #expect(rejection.reason == .invalid)
        #expect(rejection.command.rawValue == "bad-1")
    }

    @Test func everyKindOfEntryRoundTripsThroughJSON() throws {
        let entries = [
            entry(1, "a", .input(configure)),
            JournalEntry(seq: 2, now: t0 + 5, epoch: "a", content: .tick),
            entry(3, "a", .snapshot(Data("{}".utf8), asOf: 1)),
            entry(4, "a", .limits(["rememberedMessages": 10])),
            marker("b"),
        ]
        for original in entries {
            #expect(try JournalEntry.decodeRecord(original.encoded()) == [original])
        }
        let whole = JournalEntry.encodeRecords(entries, maxBytes: 1 << 20)
        #expect(whole.count == 1)
        #expect(try JournalEntry.decodeRecord(whole[0].body) == entries)
        #expect(Array(whole[0].entries) == entries)
    }

    @Test func recordsSplitAtTheByteLimitAndKeepTheOrder() throws {
        // Seqs 10...30: every entry encodes to the same size, and three fit in a record of `limit`.
        let entries = (10...30).map { entry(UInt64($0), "a", .input(configure)) }
        let limit = entries[0].encoded().count * 3 + 4
        let records = JournalEntry.encodeRecords(entries, maxBytes: limit)
        #expect(records.count == 7)
        #expect(records.allSatisfy { $0.body.count <= limit && $0.entries.count == 3 })
        #expect(try records.flatMap { try JournalEntry.decodeRecord($0.body) } == entries)
        #expect(records.flatMap(\.entries) == entries)
        // An entry over the limit is a record of its own.
        let alone = JournalEntry.encodeRecords(entries, maxBytes: 1)
        #expect(alone.count == entries.count)
        #expect(try alone.flatMap { try JournalEntry.decodeRecord($0.body) } == entries)
    }

    /// The writer's own records are taken from what it prepared, with the deliveries as it decoded them.
    @Test func aPreparedRecordIsAppliedFromWhatTheWriterPrepared() async throws {
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "test"), clock: { t0 })
        await ledger.receive([marker("a")])
        #expect(await !ledger.receivePrepared(label("a", 1...1)))
        // Decoded at intake as refused (a test stand-in): applied as such, not decoded again.
        await ledger.prepare([(entry(1, "a", .input(configure)), .rejected(reason: "test", answer: nil))], epoch: "a")
        #expect(await !ledger.receivePrepared(label("b", 1...1)))
        #expect(await !ledger.receivePrepared(label("a", 1...2)))
        #expect(await ledger.receivePrepared(label("a", 1...1)))
        #expect(await ledger.appliedSeq == 1)
        #expect(await ledger.applied(1...1).flatMap(\.effects).isEmpty)
        // Taken once: the same seqs again are not prepared any more.
        #expect(await !ledger.receivePrepared(label("a", 1...1)))
        // The same entry decoded from the journal configures the desk.
        await ledger.receive([entry(2, "a", .input(configure))])
        #expect(await !ledger.applied(2...2).flatMap(\.effects).isEmpty)
    }

    @Test func aRecordIsLabelledOnlyWhenItsEntriesAreNumberedAndOfOneEpoch() throws {
        let labelled = try #require(label("a", 3...5))
        #expect(labelled.epoch == "a")
        #expect(labelled.seqs == 3...5)
        #expect(JournalRecordLabel(ArraySlice([marker("a")])) == nil)
        #expect(JournalRecordLabel(ArraySlice([entry(1, "a", .tick), entry(2, "b", .tick)])) == nil)
        #expect(JournalRecordLabel(ArraySlice<JournalEntry>()) == nil)
        #expect(JournalRecordLabel([:]) == nil)
        var reversed = labelled.headers
        reversed[JournalRecordLabel.firstSeqHeader] = .int(6)
        #expect(JournalRecordLabel(reversed) == nil)
    }

    @Test func aRecordOfSeveralEntriesAppliesThemAll() async throws {
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "test"), clock: { t0 })
        await ledger.receive([marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .input(upsert))])
        try await ledger.waitUntil(.applied(through: 2, epoch: "a"), timeout: .seconds(5))
        #expect(await ledger.appliedSeq == 2)
        #expect(await ledger.applied(1...2).count == 2)
    }
}

/// `JournalReplay`: what `switchboard journal replay` shows is what a service's ledger applied.
@Suite struct JournalReplayTests {
    /// The entries as one journal record's body.
    private func record(_ entries: [JournalEntry]) -> [UInt8] {
        let records = JournalEntry.encodeRecords(entries, maxBytes: 1 << 20)
        precondition(records.count == 1)
        return records[0].body
    }

    private func applied(_ steps: [JournalStep]) -> [AppliedStep] {
        steps.compactMap { step in
            if case .applied(let applied) = step { return applied }
            return nil
        }
    }

    @Test func eachDecisionIsShownAsTheServiceMadeItWithTheIdsItPublishedUnder() async throws {
        let journal = [marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .input(upsert)), entry(3, "a", .input(sync))]
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "service"), clock: { t0 })
        await ledger.receive(journal)
        let service = await ledger.applied(1...3)

        let replay = JournalReplay<RouterAdapter>(shard: 3)
        let steps = try await replay.receive(record(journal), headers: [:])
        #expect(steps.first == .writerTerm(epoch: "a", at: t0))
        let replayed = applied(steps)
        #expect(replayed.map(\.seq) == [1, 2, 3])
        #expect(replayed.map(\.input) == [configure, upsert, sync])
        #expect(replayed.allSatisfy { $0.rejection == nil && $0.at == t0 })
        #expect(replayed.map(\.actions) == service.map { Array(RouterAdapter.actions(for: $0.effects, shard: 3, seq: $0.seq)) })
        let published = replayed.flatMap(\.actions).compactMap { effect -> (String, WireMessage)? in
            guard case .success(.publish(let message)) = effect.action else { return nil }
            return (effect.id.rawValue, message)
        }
        #expect(published.map(\.0) == ["router.3.1.0", "router.3.2.0", "router.3.3.0"])
        #expect(published.map(\.1.routingKey) == ["desk.configured", "agent.changed", "agent.state"])
        #expect(published.allSatisfy { $0.1.properties.messageID == $0.0 })
    }

    @Test func aChangeOfLimitsIsShownWhereItIsJournaled() async throws {
        let journal = [marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .limits(["rememberedMessages": 7]))]
        let steps = try await JournalReplay<RouterAdapter>(shard: 0).receive(record(journal), headers: [:])
        #expect(steps.last == .limits(seq: 2, limits: ["rememberedMessages": 7, "rememberedOffersPerDesk": 10_000], at: t0))
    }

    @Test func entriesOfASupersededWriterAreShownAndNotApplied() async throws {
        let replay = JournalReplay<RouterAdapter>(shard: 0)
        _ = try await replay.receive(record([marker("a"), entry(1, "a", .input(configure))]), headers: [:])
        #expect(try await replay.receive(record([marker("b")]), headers: [:]) == [.writerTerm(epoch: "b", at: t0)])
        // The old writer's late append, then its successor's own entry 2.
        #expect(try await replay.receive(record([entry(2, "a", .input(upsert))]), headers: [:]) == [.superseded(seq: 2, epoch: "a", at: t0)])
        let steps = try await replay.receive(record([entry(2, "b", .input(sync))]), headers: [:])
        #expect(applied(steps).map(\.seq) == [2])
        #expect(applied(steps).map(\.input) == [sync])
    }

    @Test func aJournalWhoseStartWasCutOffIsReplayedFromItsFirstSnapshot() async throws {
        let writer = ShardLedger<RouterAdapter>(logger: Logger(label: "writer"), clock: { t0 })
        await writer.receive([marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .input(upsert))])
        let (state, asOf) = try await encodedSnapshot(writer)

        let replay = JournalReplay<RouterAdapter>(shard: 0)
        #expect(try await replay.receive(record([entry(2, "a", .input(upsert))]), headers: [:]).isEmpty)
        let steps = try await replay.receive(record([entry(3, "a", .snapshot(state, asOf: asOf))]), headers: [:])
        #expect(steps == [.restored(asOf: 2, failure: nil), .snapshot(seq: 3, asOf: 2, at: t0)])
        let next = applied(try await replay.receive(record([entry(4, "a", .input(sync))]), headers: [:]))
        // The restored desk knows ann and continues its numbering.
        guard case .success(.publish(let message)) = next.first?.actions.first?.action else {
            Issue.record("expected agent.state, got \(next)")
            return
        }
        #expect(try WireCodec.decodeRouterEvent(message.body).message.seq == 3)
    }

    @Test func aSnapshotThatCannotBeDecodedIsShownWithWhy() async throws {
        let replay = JournalReplay<RouterAdapter>(shard: 0)
        let steps = try await replay.receive(record([entry(5, "a", .snapshot(Data("{}".utf8), asOf: 4))]), headers: [:])
        guard case .restored(4, let failure?) = steps.first else {
            Issue.record("expected a failed restore, got \(steps)")
            return
        }
        #expect(!failure.isEmpty)
    }

    @Test func aRejectedCommandShowsWhyAndItsAnswer() async throws {
        var invalid = delivery(.agentSync(agent: ann), id: "bad-1")
        invalid.body = Data(#"{"v":1,"type":"offer.accept","id":"bad-1","desk":"acme","at":"2026-11-25T18:00:00.000Z","agent":"ann"}"#.utf8)
        invalid.type = "offer.accept"
        let replay = JournalReplay<RouterAdapter>(shard: 0)
        let steps = applied(
            try await replay.receive(
                record([marker("a"), entry(1, "a", .input(configure)), entry(2, "a", .input(upsert)), entry(3, "a", .input(invalid))]), headers: [:]))
        let rejected = try #require(steps.last)
        #expect(rejected.rejection?.contains("offer.accept") == true)
        guard case .success(.publish(let message)) = rejected.actions.first?.action else {
            Issue.record("expected command.rejected, got \(rejected.actions)")
            return
        }
        #expect(message.routingKey == "command.rejected")
    }

    @Test func anUnreadableRecordFails() async throws {
        let replay = JournalReplay<RouterAdapter>(shard: 0)
        await #expect(throws: (any Error).self) { try await replay.receive(Array("not json".utf8), headers: [:]) }
    }
}

/// Where a reader can begin the journal instead of at its start (`JournalRestartPoint`).
@Suite struct JournalRestartPointTests {
    /// Writer a journals 1 and 2, a snapshot as of 1 (encoded while 2 was journaled), then 4. Writer b takes
    /// over at 4 and journals 5; a, not yet aware of it, appends a snapshot after b's marker; b journals 6, then
    /// its snapshot as of its takeover, then 8. Each record is at the offset of its index.
    private func twoWritersJournal() async throws -> [[JournalEntry]] {
        let a = ShardLedger<RouterAdapter>(logger: Logger(label: "a"), clock: { t0 })
        await a.receive([marker("a"), entry(1, "a", .input(configure))])
        let (stateAt1, one) = try await encodedSnapshot(a)
        await a.receive([entry(2, "a", .input(upsert))])
        await a.receive([entry(3, "a", .snapshot(stateAt1, asOf: one))])
        await a.receive([entry(4, "a", .input(sync))])
        let (stateAt4, four) = try await encodedSnapshot(a)
        #expect(one == 1 && four == 4)
        return [
            [marker("a")], [entry(1, "a", .input(configure))], [entry(2, "a", .input(upsert))],
            [entry(3, "a", .snapshot(stateAt1, asOf: 1))], [entry(4, "a", .input(sync))],
            [marker("b")], [entry(5, "b", .input(delivery(.agentSync(agent: ann), id: "m5")))],
            [entry(5, "a", .snapshot(stateAt4, asOf: 4))],
            [entry(6, "b", .input(delivery(.agentSync(agent: ann), id: "m6")))],
            [entry(7, "b", .snapshot(stateAt4, asOf: 4))],
            [entry(8, "b", .input(delivery(.agentSync(agent: ann), id: "m8")))],
        ]
    }

    private func read(
        _ journal: [[JournalEntry]], from offset: Int = 0, beginningAt point: JournalRestartPoint? = nil, clock: Instant
    ) async -> ShardLedger<RouterAdapter> {
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "reader"), clock: { clock })
        if let point { await ledger.begin(at: point) }
        for (index, record) in journal.enumerated().dropFirst(offset) {
            await ledger.receive(record, at: Int64(index))
        }
        return ledger
    }

    @Test func aSnapshotTakenInIsARestartPointAtTheFirstRecordItNeeds() async throws {
        let journal = try await twoWritersJournal()
        let ledger = ShardLedger<RouterAdapter>(logger: Logger(label: "reader"), clock: { t0 })
        var points: [JournalRestartPoint?] = []
        for (index, record) in journal.enumerated() {
            await ledger.receive(record, at: Int64(index))
            points.append(await ledger.restartPoint)
        }
        let a = JournalRestartPoint(offset: 2, epoch: "a")
        let b = JournalRestartPoint(offset: 6, epoch: "b")
        // a's snapshot needs entry 2 (offset 2); a's snapshot after b's marker is no one's; b's needs 5 on.
        #expect(points == [nil, nil, nil, a, a, a, a, a, a, b, b])
        // A record whose offset is not known makes no restart point.
        let unplaced = await read(journal, clock: t0)
        let (state, asOf) = try await encodedSnapshot(unplaced)
        await unplaced.receive([entry(9, "b", .input(delivery(.agentSync(agent: ann), id: "m9")))])
        await unplaced.receive([entry(10, "b", .snapshot(state, asOf: asOf))], at: 12)
        #expect(await unplaced.restartPoint == b)
        await unplaced.receive([entry(11, "b", .snapshot(state, asOf: asOf))], at: 13)
        #expect(await unplaced.restartPoint == b, "entry 9 is still needed")
        let (later, laterAsOf) = try await encodedSnapshot(unplaced)
        await unplaced.receive([entry(12, "b", .snapshot(later, asOf: laterAsOf))], at: 14)
        #expect(await unplaced.restartPoint == JournalRestartPoint(offset: 14, epoch: "b"))
    }

    /// Whether the reader catches up warm (the journal is recent) or cold (it runs history only at a takeover).
    @Test(arguments: [t0, t0 + 86_400_000])
    func aReaderThatBeginsAtARestartPointReachesTheStateOfAReaderFromTheStart(clock: Instant) async throws {
        let journal = try await twoWritersJournal()
        let whole = await read(journal, clock: clock)
        #expect(await whole.appliedSeq == 8)
        for point in [JournalRestartPoint(offset: 2, epoch: "a"), JournalRestartPoint(offset: 6, epoch: "b")] {
            let begun = await read(journal, from: Int(point.offset), beginningAt: point, clock: clock)
            #expect(await begun.appliedSeq == 8, "from \(point)")
            #expect(await begun.epoch == "b")
            #expect(await begun.restartPoint == whole.restartPoint)
            #expect(await begun.coreForSnapshot().core == whole.coreForSnapshot().core)
            for ledger in [whole, begun] { await ledger.receive([marker("c\(point.offset)")]) }
            let (wholeSeq, wholeTail) = try await whole.takeOver(epoch: "c\(point.offset)")
            let (begunSeq, begunTail) = try await begun.takeOver(epoch: "c\(point.offset)")
            #expect(begunSeq == wholeSeq)
            #expect(begunTail.map(\.seq) == wholeTail.map(\.seq))
            #expect(eventSeqs(begunTail) == eventSeqs(wholeTail))
        }
        // Without its epoch, a reader from offset 6 would take a's snapshot after b's marker as its state, and
        // b's entries as a superseded writer's.
        let blind = await read(journal, from: 6, clock: clock)
        #expect(await blind.epoch == "a")
        #expect(await blind.appliedSeq == 5)
    }
}

/// What a ledger told its instance (`ShardLedger.Reports`), in order.
private final class Told<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    var list: [Value] { values.withLock { $0 } }
    func add(_ value: Value) { values.withLock { $0.append(value) } }
}
