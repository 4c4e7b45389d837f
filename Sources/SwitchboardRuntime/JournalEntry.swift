import Foundation
import SwitchboardAMQP
import SwitchboardCommon

/// One entry of a shard journal (stream `switchboard.S.journal.i`), encoded with the contract's JSON setup.
///
/// Replaying a journal's entries through the core, each at its `now`, reproduces every decision the
/// shard made. Entries are written by one writer at a time; each writer's term starts with a `marker`
/// whose nonce is the term's `epoch`, and readers take only entries of the epoch of the latest marker
/// they read, so a writer that lost its place can never mix its late entries into its successor's.
public struct JournalEntry: Hashable, Sendable {
    public enum Content: Hashable, Sendable {
        /// A delivery as it came (decoded again on replay, with the same result).
        case input(JournalInput)
        /// The shard's timer fired.
        case tick
        /// The encoded core state after every entry up to seq `asOf`, which is below the snapshot's own seq:
        /// the writer encodes it while it goes on journaling, so entries after `asOf` may come before it.
        case snapshot(Data, asOf: UInt64)
        /// A writer starts its term; its `epoch` is the marker's nonce.
        case marker
        /// The core's memory limits change to these, by name (`CoreLimits`), from this entry on. A writer
        /// journals this when it takes over with other limits configured than the core holds, so every reader
        /// changes them at the same entry; a name the core does not have is ignored.
        case limits([String: Int])
    }

    /// Gapless per journal, assigned by the writer. `nil` for markers: a writer appends its marker before it
    /// has read how far the journal goes.
    public var seq: UInt64?
    /// The wall-clock time the core was given for this entry.
    public var now: Instant
    /// The nonce of the marker that began the writing term.
    public var epoch: String
    public var content: Content

    public init(seq: UInt64?, now: Instant, epoch: String, content: Content) {
        self.seq = seq
        self.now = now
        self.epoch = epoch
        self.content = content
    }

    /// The entry's JSON (see `JournalJSON`).
    public func encoded() -> [UInt8] {
        var json = JournalJSON()
        json.write(self)
        return json.bytes
    }

    /// The entries of one journal message (a record): a JSON array, or a single entry as journals written
    /// before records held.
    public static func decodeRecord(_ bytes: [UInt8]) throws -> [JournalEntry] {
        if bytes.first(where: { !$0.isJSONWhitespace }) == UInt8(ascii: "[") {
            return try WireCodec.decodeSnapshot([JournalEntry].self, from: Data(bytes))
        }
        return [try WireCodec.decodeSnapshot(JournalEntry.self, from: Data(bytes))]
    }

    /// A snapshot entry and its record, which is what `encodeRecords([entry])` makes, with the state's base64
    /// as encoded beforehand: a large core's state takes milliseconds to turn into base64, better spent off the
    /// writer's path.
    static func snapshot(
        seq: UInt64, now: Instant, epoch: String, asOf: UInt64, state: SnapshotState
    ) -> (entry: JournalEntry, record: [UInt8]) {
        let entry = JournalEntry(seq: seq, now: now, epoch: epoch, content: .snapshot(state.json, asOf: asOf))
        var json = JournalJSON()
        json.writeRecord(entry, stateBase64: state.base64)
        return (entry, json.bytes)
    }

    /// The entries in order, as records (JSON arrays) of at most `maxBytes` each, each with the entries
    /// it holds; an entry larger than that is a record of its own. A shard appends a batch's entries as one
    /// record, so a batch costs the broker one journal message, not one per entry.
    public static func encodeRecords(
        _ entries: [JournalEntry], maxBytes: Int
    ) -> [(body: [UInt8], entries: ArraySlice<JournalEntry>)] {
        var records: [(body: [UInt8], entries: ArraySlice<JournalEntry>)] = []
        var current: [UInt8] = []
        var start = entries.startIndex
        for index in entries.indices {
            let encoded = entries[index].encoded()
            if !current.isEmpty, current.count + encoded.count + 2 > maxBytes {
                current.append(UInt8(ascii: "]"))
                records.append((current, entries[start..<index]))
                current = []
                start = index
            }
            current.append(current.isEmpty ? UInt8(ascii: "[") : UInt8(ascii: ","))
            current += encoded
        }
        if !current.isEmpty {
            current.append(UInt8(ascii: "]"))
            records.append((current, entries[start...]))
        }
        return records
    }
}

/// A core's encoded state, and its base64 as a snapshot record carries it: both made once, off the writer's path.
struct SnapshotState: Sendable {
    let json: Data
    let base64: [UInt8]

    init(_ json: Data) {
        self.json = json
        base64 = Array(json.base64EncodedData())
    }
}

/// What a journal record of one term's numbered entries says of itself in its AMQP headers: its epoch
/// and the seqs of its entries. A reader that already holds those entries need not decode the record.
struct JournalRecordLabel: Hashable, Sendable {
    static let epochHeader = "x-switchboard-epoch"
    static let firstSeqHeader = "x-switchboard-first-seq"
    static let lastSeqHeader = "x-switchboard-last-seq"

    let epoch: String
    let seqs: ClosedRange<UInt64>

    /// The label of a record of `entries`; `nil` unless they are numbered entries of one epoch.
    init?(_ entries: ArraySlice<JournalEntry>) {
        guard let first = entries.first, let firstSeq = first.seq, let lastSeq = entries.last?.seq, firstSeq <= lastSeq,
            entries.allSatisfy({ $0.epoch == first.epoch })
        else { return nil }
        epoch = first.epoch
        seqs = firstSeq...lastSeq
    }

    /// The label a record carries; `nil` when it carries none or a malformed one.
    init?(_ headers: AMQPTable) {
        guard let epoch = headers[Self.epochHeader]?.stringValue, let first = headers[Self.firstSeqHeader]?.intValue,
            let last = headers[Self.lastSeqHeader]?.intValue, 0 < first, first <= last
        else { return nil }
        self.epoch = epoch
        seqs = UInt64(first)...UInt64(last)
    }

    var headers: AMQPTable {
        [
            Self.epochHeader: .string(epoch), Self.firstSeqHeader: .int(Int64(seqs.lowerBound)),
            Self.lastSeqHeader: .int(Int64(seqs.upperBound)),
        ]
    }
}

extension UInt8 {
    fileprivate var isJSONWhitespace: Bool {
        self == UInt8(ascii: " ") || self == UInt8(ascii: "\n") || self == UInt8(ascii: "\r") || self == UInt8(ascii: "\t")
    }
}

/// Writes journal entries as JSON by hand. Every batch's entries are encoded on the writer's path; through
/// Foundation's `JSONEncoder` that took 12–19% of a busy shard's CPU, and this is about 3.5 times faster.
/// What it writes decodes with `JournalEntry`'s `Decodable` conformance, as the entries `JSONEncoder` wrote
/// before did: an object per entry with its keys in sorted order, absent optionals left out, `Data` as base64.
struct JournalJSON {
    private(set) var bytes: [UInt8] = []

    /// A record of `entry` alone, with its snapshot state (if it is a snapshot) already in base64.
    mutating func writeRecord(_ entry: JournalEntry, stateBase64: [UInt8]) {
        bytes.reserveCapacity(stateBase64.count + 256)
        bytes.append(UInt8(ascii: "["))
        write(entry, stateBase64: stateBase64)
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func write(_ entry: JournalEntry, stateBase64: [UInt8]? = nil) {
        let kind: StaticString =
            switch entry.content {
            case .input: "input"
            case .tick: "tick"
            case .snapshot: "snapshot"
            case .marker: "marker"
            case .limits: "limits"
            }
        var fields = Fields()
        if case .snapshot(_, let asOf) = entry.content { fields.add("asOf", &self) { $0.number(asOf) } }
        fields.add("epoch", &self) { $0.string(entry.epoch) }
        if case .input(let input) = entry.content { fields.add("input", &self) { $0.write(input) } }
        fields.add("kind", &self) { $0.string("\(kind)") }
        if case .limits(let limits) = entry.content { fields.add("limits", &self) { $0.write(limits) } }
        fields.add("now", &self) { $0.number(entry.now.millisecondsSinceEpoch) }
        if let seq = entry.seq { fields.add("seq", &self) { $0.number(seq) } }
        if case .snapshot(let state, _) = entry.content {
            fields.add("state", &self) { json in
                if let stateBase64 { json.quoted(stateBase64) } else { json.base64(state) }
            }
        }
        fields.end(&self)
    }

    private mutating func write(_ input: JournalInput) {
        var fields = Fields()
        fields.add("body", &self) { $0.base64(input.body) }
        if let value = input.contentType { fields.add("contentType", &self) { $0.string(value) } }
        if let value = input.deliveryMode { fields.add("deliveryMode", &self) { $0.number(value) } }
        if let value = input.deskHeader { fields.add("deskHeader", &self) { $0.string(value) } }
        fields.add("exchange", &self) { $0.string(input.exchange) }
        if let value = input.messageID { fields.add("messageID", &self) { $0.string(value) } }
        if let value = input.refusal { fields.add("refusal", &self) { $0.string(value) } }
        fields.add("routingKey", &self) { $0.string(input.routingKey) }
        if let value = input.timestamp { fields.add("timestamp", &self) { $0.number(value) } }
        if let value = input.type { fields.add("type", &self) { $0.string(value) } }
        if let value = input.userID { fields.add("userID", &self) { $0.string(value) } }
        fields.end(&self)
    }

    /// An object of numbers, its keys in sorted order.
    private mutating func write(_ numbers: [String: Int]) {
        var fields = Fields()
        for (name, value) in numbers.sorted(by: { $0.key < $1.key }) {
            fields.add(name, &self) { $0.number(value) }
        }
        fields.end(&self)
    }

    /// The members of one object, written as they are added.
    private struct Fields {
        private var count = 0

        /// A member whose key needs no escaping.
        mutating func add(_ key: StaticString, _ json: inout JournalJSON, value: (inout JournalJSON) -> Void) {
            add(&json, value: value) {
                $0.quoted(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            }
        }

        /// A member whose key is not known at compile time.
        mutating func add(_ key: String, _ json: inout JournalJSON, value: (inout JournalJSON) -> Void) {
            add(&json, value: value) { $0.string(key) }
        }

        private mutating func add(
            _ json: inout JournalJSON, value: (inout JournalJSON) -> Void, key: (inout JournalJSON) -> Void
        ) {
            json.bytes.append(count == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
            count += 1
            key(&json)
            json.bytes.append(UInt8(ascii: ":"))
            value(&json)
        }

        func end(_ json: inout JournalJSON) {
            if count == 0 { json.bytes.append(UInt8(ascii: "{")) }
            json.bytes.append(UInt8(ascii: "}"))
        }
    }

    private mutating func number(_ value: some BinaryInteger) {
        bytes.append(contentsOf: String(value).utf8)
    }

    private mutating func base64(_ data: Data) {
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: data.base64EncodedData())
        bytes.append(UInt8(ascii: "\""))
    }

    /// Bytes that need no escaping (base64, a key), in quotes.
    private mutating func quoted(_ plain: some Sequence<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: plain)
        bytes.append(UInt8(ascii: "\""))
    }

    /// A JSON string: quotes, backslashes and control characters escaped, everything else as its UTF-8.
    private mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)],
                    hex[Int(byte & 0xF)],
                ])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JournalEntry: Decodable {
    private enum Kind: String, Decodable {
        case input, tick, snapshot, marker, limits
    }

    private enum CodingKeys: String, CodingKey {
        case kind, seq, now, epoch, input, state, asOf, limits
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        seq = try container.decodeIfPresent(UInt64.self, forKey: .seq)
        now = Instant(millisecondsSinceEpoch: try container.decode(Int64.self, forKey: .now))
        epoch = try container.decode(String.self, forKey: .epoch)
        switch try container.decode(Kind.self, forKey: .kind) {
        case .input: content = .input(try container.decode(JournalInput.self, forKey: .input))
        case .tick: content = .tick
        case .snapshot:
            guard let seq, seq > 0 else {
                throw DecodingError.dataCorruptedError(forKey: .seq, in: container, debugDescription: "a snapshot needs a seq")
            }
            // Older snapshots hold the state after every entry before them.
            let asOf = try container.decodeIfPresent(UInt64.self, forKey: .asOf) ?? seq - 1
            content = .snapshot(try container.decode(Data.self, forKey: .state), asOf: asOf)
        case .marker: content = .marker
        case .limits: content = .limits(try container.decode([String: Int].self, forKey: .limits))
        }
    }
}

/// A delivery from a shard queue, as journaled: enough to decode it again exactly as it was decoded the
/// first time, and to dead-letter a copy of it.
public struct JournalInput: Decodable, Hashable, Sendable {
    /// The exchange it was published to (`switchboard.in` or `switchboard.events`).
    public var exchange: String
    public var routingKey: String
    /// Base64 in the journal's JSON.
    public var body: Data
    public var contentType: String?
    public var messageID: String?
    public var type: String?
    public var timestamp: Int64?
    public var deliveryMode: UInt8?
    public var deskHeader: String?
    public var userID: String?
    /// Why the shell refused the delivery at intake (`ShardRuntimeConfiguration.admission`), or `nil` when
    /// it admitted it. Decided once, before journaling, and journaled with the delivery, so that replay
    /// decodes it the same way whatever the configuration is then. Absent in older entries: admitted.
    public var refusal: String?

    public init(
        exchange: String, routingKey: String, body: Data, contentType: String? = nil, messageID: String? = nil,
        type: String? = nil, timestamp: Int64? = nil, deliveryMode: UInt8? = nil, deskHeader: String? = nil,
        userID: String? = nil, refusal: String? = nil
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.contentType = contentType
        self.messageID = messageID
        self.type = type
        self.timestamp = timestamp
        self.deliveryMode = deliveryMode
        self.deskHeader = deskHeader
        self.userID = userID
        self.refusal = refusal
    }

    public init(_ delivery: AMQPDelivery) {
        let properties = delivery.properties
        self.init(
            exchange: delivery.exchange, routingKey: delivery.routingKey, body: Data(delivery.body),
            contentType: properties.contentType, messageID: properties.messageID, type: properties.type,
            timestamp: properties.timestamp.map { Int64(clamping: $0) }, deliveryMode: properties.deliveryMode?.rawValue,
            deskHeader: properties.headers["desk"]?.stringValue, userID: properties.userID)
    }

    /// The contract's view of the AMQP properties, for `WireCodec`'s checks.
    public var wireProperties: WireProperties {
        WireProperties(
            contentType: contentType, messageID: messageID, type: type, timestamp: timestamp,
            deliveryMode: deliveryMode, deskHeader: deskHeader, userID: userID)
    }
}
