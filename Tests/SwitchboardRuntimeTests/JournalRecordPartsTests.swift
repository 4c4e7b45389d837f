import PropertyBased
import SwitchboardAMQP
@testable import SwitchboardRuntime
import SwitchboardTestSupport
import Testing

/// A record larger than a journal message may be is appended in parts and read back whole.
@Suite struct JournalRecordPartsTests {
    private static let label = JournalRecordLabel(
        ["x-switchboard-epoch": "e", "x-switchboard-first-seq": 7, "x-switchboard-last-seq": 9])!

    @Test func aRecordThatFitsIsOneMessageWithItsLabelAlone() {
        let body = [UInt8](repeating: 1, count: 100)
        let messages = JournalRecordParts.messages(of: body, label: Self.label, maxBytes: 100)
        #expect(messages.count == 1)
        #expect(messages[0].body == body)
        #expect(messages[0].headers == Self.label.headers)
        #expect(JournalRecordParts.messages(of: body, label: nil, maxBytes: 100)[0].headers == [:])
    }

    /// Whatever the record's size and the limit, every message is within the limit, all but the last part are
    /// held, and the last one gives back the record and its label.
    @Test func anyRecordComesBackWholeFromItsParts() async {
        let input = Generator { rng in
            (
                body: (0..<Int.random(in: 1...5_000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) },
                maxBytes: Int.random(in: 1...1_200, using: &rng)
            )
        }
        await propertyCheckRecordingErrors(count: 300, input: input) { (record: (body: [UInt8], maxBytes: Int)) in
            let messages = JournalRecordParts.messages(of: record.body, label: Self.label, maxBytes: record.maxBytes)
            #expect(messages.count == (record.body.count + record.maxBytes - 1) / record.maxBytes)
            #expect(messages.allSatisfy { $0.body.count <= record.maxBytes })
            let assembler = JournalRecordAssembler()
            for message in messages.dropLast() {
                #expect(assembler.add(message.body, headers: message.headers).isHeld)
            }
            let last = assembler.add(messages.last!.body, headers: messages.last!.headers).record
            #expect(last?.body == record.body)
            #expect(last?.label == Self.label)
        }
    }

    /// Each record is where its first part is in the journal: a reader that begins there reads all of it.
    @Test func anotherWritersRecordBetweenTwoPartsPassesAtOnce() {
        let parts = JournalRecordParts.messages(of: Array(0..<30), label: Self.label, maxBytes: 10)
        let other = JournalRecordParts.messages(of: [42], label: nil, maxBytes: 10)[0]
        func at(_ offset: Int64, _ headers: AMQPTable) -> AMQPTable { headers.merging([StreamOffset.name: .int(offset)]) { $1 } }
        let assembler = JournalRecordAssembler()
        #expect(assembler.add(parts[0].body, headers: at(10, parts[0].headers)).isHeld)
        let between = assembler.add(other.body, headers: at(11, other.headers)).record
        #expect(between?.body == [42])
        #expect(between?.offset == 11)
        #expect(assembler.add(parts[1].body, headers: at(12, parts[1].headers)).isHeld)
        let whole = assembler.add(parts[2].body, headers: at(13, parts[2].headers)).record
        #expect(whole?.body == Array(0..<30))
        #expect(whole?.offset == 10)
    }

    /// A read that begins after a record's first part, and a writer that stopped before its last: the parts
    /// that make no record are dropped, and the records after them are read.
    @Test func partsThatMakeNoRecordAreDroppedAndTheNextRecordIsRead() {
        let parts = JournalRecordParts.messages(of: Array(0..<30), label: Self.label, maxBytes: 10)
        let assembler = JournalRecordAssembler()
        #expect(assembler.add(parts[1].body, headers: parts[1].headers).isDropped)
        #expect(assembler.add(parts[2].body, headers: parts[2].headers).isDropped)
        #expect(assembler.add(parts[0].body, headers: parts[0].headers).isHeld)
        #expect(assembler.add(parts[2].body, headers: parts[2].headers).isDropped, "part 2 is missing")
        for part in parts.dropLast() {
            #expect(assembler.add(part.body, headers: part.headers).isHeld)
        }
        #expect(assembler.add(parts[2].body, headers: parts[2].headers).record?.body == Array(0..<30))
        var bad = parts[0].headers
        bad[JournalRecordParts.partHeader] = 4
        #expect(assembler.add(parts[0].body, headers: bad).isDropped, "part 4 of 3")
    }
}

extension JournalRecordAssembler.Outcome {
    var record: JournalRecordAssembler.Record? {
        if case .record(let record) = self { record } else { nil }
    }

    var isHeld: Bool {
        if case .held = self { true } else { false }
    }

    var isDropped: Bool {
        if case .dropped = self { true } else { false }
    }
}
