import DequeModule

/// A map that remembers at most `limit` keys and forgets the oldest first (age = when the key was first
/// remembered; updating a value does not make it younger). Removal is O(1): the arrival queue is cleaned
/// lazily and compacted when stale arrivals outnumber live ones, so memory stays proportional to `count`.
struct BoundedRecall<Key: Hashable & Codable & Sendable, Value: Hashable & Codable & Sendable>: Sendable {
    let limit: Int
    private var entries: [Key: Entry] = [:]
    private var arrivals: Deque<Arrival> = []
    private var nextStamp: UInt64 = 0

    private struct Entry: Sendable {
        var value: Value
        var stamp: UInt64
    }

    private struct Arrival: Sendable {
        var key: Key
        var stamp: UInt64
    }

    init(limit: Int) {
        self.limit = limit
    }

    var count: Int { entries.count }

    subscript(key: Key) -> Value? { entries[key]?.value }

    func contains(_ key: Key) -> Bool { entries[key] != nil }

    /// Remembers `value` for `key`, replacing what was there (the key keeps its age).
    mutating func remember(_ key: Key, _ value: Value) {
        update(key, startingFrom: value) { $0 = value }
    }

    /// Changes the value remembered for `key`, starting from `initial` when there is none.
    mutating func update(_ key: Key, startingFrom initial: Value, _ change: (inout Value) -> Void) {
        if var entry = entries[key] {
            change(&entry.value)
            entries[key] = entry
            return
        }
        var value = initial
        change(&value)
        entries[key] = Entry(value: value, stamp: nextStamp)
        arrivals.append(Arrival(key: key, stamp: nextStamp))
        nextStamp += 1
        forgetBeyondLimit()
    }

    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let entry = entries.removeValue(forKey: key) else { return nil }
        if arrivals.count > 2 * entries.count + 1_024 {
            arrivals = Deque(arrivals.filter { entries[$0.key]?.stamp == $0.stamp })
        }
        return entry.value
    }

    /// The live entries, oldest first.
    var oldestFirst: [(key: Key, value: Value)] {
        arrivals.compactMap { arrival in
            guard let entry = entries[arrival.key], entry.stamp == arrival.stamp else { return nil }
            return (arrival.key, entry.value)
        }
    }

    private mutating func forgetBeyondLimit() {
        while entries.count > limit, let oldest = arrivals.popFirst() {
            if entries[oldest.key]?.stamp == oldest.stamp {
                entries[oldest.key] = nil
            }
        }
    }
}

extension BoundedRecall: Equatable {
    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.limit == rhs.limit && lhs.count == rhs.count
            && lhs.oldestFirst.elementsEqual(rhs.oldestFirst) { $0.key == $1.key && $0.value == $1.value }
    }
}

/// A key a snapshot can write as one line of text: `snapshotLine` never holds a line break, and
/// `init(snapshotLine:)` reads it back, checking it as the key's own initializer does.
protocol SnapshotLine {
    var snapshotLine: String { get }
    init(snapshotLine: String) throws
}

extension BoundedRecall: Codable {
    /// The form snapshots had before keys and values were written apart.
    private struct Remembered: Codable {
        var key: Key
        var value: Value
    }

    /// Written oldest first, keys apart from values, because shards encode these memories (up to a million
    /// entries) in every snapshot and one JSON value per entry costs most of a snapshot's time:
    /// - `keyLines`: keys that are `SnapshotLine`s, one per line of a single string (otherwise `keys`, an array);
    /// - `runLengths` and `runValues`: the values as runs of equal ones (a memory's values are mostly alike;
    ///   the Router's are all `true`). `values`, an array with one value per key, is read too.
    private enum CodingKeys: String, CodingKey {
        case limit, keyLines, keys, runLengths, runValues, values, oldestFirst
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(limit: try container.decode(Int.self, forKey: .limit))
        guard container.contains(.keys) || container.contains(.keyLines) else {
            for remembered in try container.decode([Remembered].self, forKey: .oldestFirst) {
                update(remembered.key, startingFrom: remembered.value) { _ in }
            }
            return
        }
        let keys = try Self.decodeKeys(container)
        let values = try Self.decodeValues(container)
        guard keys.count == values.count else {
            throw DecodingError.dataCorruptedError(
                forKey: .values, in: container, debugDescription: "\(keys.count) keys but \(values.count) values")
        }
        for (key, value) in zip(keys, values) {
            update(key, startingFrom: value) { _ in }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let live = oldestFirst
        try container.encode(limit, forKey: .limit)
        if Key.self is any SnapshotLine.Type {
            try container.encode(live.map { ($0.key as! any SnapshotLine).snapshotLine }.joined(separator: "\n"), forKey: .keyLines)
        } else {
            try container.encode(live.map(\.key), forKey: .keys)
        }
        var runLengths: [Int] = []
        var runValues: [Value] = []
        for (_, value) in live {
            if runValues.last == value {
                runLengths[runLengths.count - 1] += 1
            } else {
                runValues.append(value)
                runLengths.append(1)
            }
        }
        try container.encode(runLengths, forKey: .runLengths)
        try container.encode(runValues, forKey: .runValues)
    }

    private static func decodeKeys(_ container: KeyedDecodingContainer<CodingKeys>) throws -> [Key] {
        guard container.contains(.keyLines) else { return try container.decode([Key].self, forKey: .keys) }
        guard let lineKey = Key.self as? any SnapshotLine.Type else {
            throw DecodingError.dataCorruptedError(
                forKey: .keyLines, in: container, debugDescription: "\(Key.self) keys cannot be read from lines")
        }
        let text = try container.decode(String.self, forKey: .keyLines)
        guard !text.isEmpty else { return [] }
        return try text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            try lineKey.init(snapshotLine: String(Substring(line))) as! Key
        }
    }

    private static func decodeValues(_ container: KeyedDecodingContainer<CodingKeys>) throws -> [Value] {
        guard container.contains(.runValues) else { return try container.decode([Value].self, forKey: .values) }
        let lengths = try container.decode([Int].self, forKey: .runLengths)
        let runValues = try container.decode([Value].self, forKey: .runValues)
        guard lengths.count == runValues.count, lengths.allSatisfy({ $0 > 0 }) else {
            throw DecodingError.dataCorruptedError(
                forKey: .runLengths, in: container,
                debugDescription: "\(lengths.count) run lengths (each at least 1) for \(runValues.count) values")
        }
        var values: [Value] = []
        values.reserveCapacity(lengths.reduce(0, +))
        for (length, value) in zip(lengths, runValues) {
            values.append(contentsOf: repeatElement(value, count: length))
        }
        return values
    }
}
