import Synchronization
import SwitchboardAMQP

/// A journal record larger than one journal message may be (a large core's snapshot: the Router's reaches
/// megabytes) is appended as several messages in a row, its parts: each part is a slice of the record's
/// bytes, with the record's label and `x-switchboard-part` (1-based) of `x-switchboard-parts`. Readers put
/// the parts back together before they decode the record (`JournalRecordAssembler`).
///
/// The broker refuses a message over its `max_message_size` (16 MiB by default since RabbitMQ 4.0, 128 MiB
/// before) by closing the channel: a snapshot over it would fail the batch that appends it, every time, and
/// the shard would never get past it.
enum JournalRecordParts {
    static let partHeader = "x-switchboard-part"
    static let partsHeader = "x-switchboard-parts"

    /// The messages that carry `body`: the record as it is when it fits in `maxBytes`, otherwise its parts.
    static func messages(
        of body: [UInt8], label: JournalRecordLabel?, maxBytes: Int
    ) -> [(body: [UInt8], headers: AMQPTable)] {
        precondition(maxBytes > 0, "a journal message holds at least one byte")
        let headers = label?.headers ?? [:]
        guard body.count > maxBytes else { return [(body, headers)] }
        let starts = Array(stride(from: 0, to: body.count, by: maxBytes))
        return starts.enumerated().map { index, start in
            var part = headers
            part[partHeader] = .int(Int64(index + 1))
            part[partsHeader] = .int(Int64(starts.count))
            return (Array(body[start..<min(start + maxBytes, body.count)]), part)
        }
    }

    /// Which part of how many a message is; `nil` for a whole record.
    static func position(_ headers: AMQPTable) -> (part: Int, of: Int)? {
        guard let part = headers[partHeader]?.intValue, let count = headers[partsHeader]?.intValue else { return nil }
        return (Int(part), Int(count))
    }
}

/// Puts a journal's messages back together into records, as they are read in order. A whole record passes
/// through at once; parts are held until the last one arrives. Records of another writer may come between
/// two parts (a writer that lost its place still appending), so parts are held by their record's label.
/// Parts that cannot make a record (the first ones are not there because reading began after them, or the
/// writer stopped before it had appended the rest, and a successor's marker follows) are dropped: that
/// record was never whole in the journal, so no reader ever takes it in.
final class JournalRecordAssembler: Sendable {
    /// A whole record, the label it carries, and where it is in the journal (its first part's offset).
    struct Record {
        let body: [UInt8]
        let label: JournalRecordLabel?
        var offset: Int64?
    }

    enum Outcome {
        case record(Record)
        /// A part, held until its record is whole.
        case held
        /// A part that belongs to no record this reader can put together; why.
        case dropped(String)
    }

    private struct Partial {
        var body: [UInt8]
        let offset: Int64?
        var nextPart: Int
        let parts: Int
    }

    /// Records being put together at once, at most: more than one only while writers overlap.
    static var partialLimit: Int { 4 }

    private let partials = Mutex<[(label: JournalRecordLabel?, partial: Partial)]>([])

    /// Takes in the next message of the journal.
    func add(_ body: [UInt8], headers: AMQPTable) -> Outcome {
        let label = JournalRecordLabel(headers)
        let offset = StreamOffset.position(in: headers)
        guard let position = JournalRecordParts.position(headers) else {
            return .record(Record(body: body, label: label, offset: offset))
        }
        guard position.of >= 2, (1...position.of).contains(position.part) else {
            return .dropped("part \(position.part) of \(position.of) is no part of a record")
        }
        return partials.withLock { partials in
            let index = partials.firstIndex { $0.label == label }
            if position.part == 1 {
                if let index { partials.remove(at: index) }
                if partials.count == Self.partialLimit { partials.removeFirst() }
                partials.append((label, Partial(body: body, offset: offset, nextPart: 2, parts: position.of)))
                return .held
            }
            guard let index, partials[index].partial.nextPart == position.part, partials[index].partial.parts == position.of
            else {
                if let index { partials.remove(at: index) }
                return .dropped("part \(position.part) of \(position.of) follows no part \(position.part - 1)")
            }
            partials[index].partial.body += body
            partials[index].partial.nextPart += 1
            guard position.part == position.of else { return .held }
            let whole = partials.remove(at: index).partial
            return .record(Record(body: whole.body, label: label, offset: whole.offset))
        }
    }
}
