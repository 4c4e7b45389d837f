import DequeModule

/// A map that remembers at most `limit` keys and forgets the oldest first (age = when the key was first
/// remembered; updating a value does not make it younger). Removal is O(1): the arrival queue is cleaned
/// lazily and compacted when stale arrivals outnumber live ones, so memory stays proportional to `count`.
public struct BoundedRecall<Key: Hashable & Codable & Sendable, Value: Hashable & Codable & Sendable>: Sendable {
    private(set) var limit: Int
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

    public init(limit: Int) {
        self.limit = limit
    }

    var count: Int { entries.count }

    subscript(key: Key) -> Value? { entries[key]?.value }

    public func contains(_ key: Key) -> Bool { entries[key] != nil }

    /// Remembers `value` for `key`, replacing what was there (the key keeps its age).
    public mutating func remember(_ key: Key, _ value: Value) {
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

    /// Changes the limit; a smaller one forgets the oldest entries beyond it at once.
    mutating func changeLimit(to limit: Int) {
        self.limit = limit
        forgetBeyondLimit()
        if arrivals.count > 2 * entries.count + 1_024 {
            arrivals = Deque(arrivals.filter { entries[$0.key]?.stamp == $0.stamp })
        }
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
    public static func == (lhs: Self, rhs: Self) -> Bool {
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

/// A snapshot line that does not have the parts its type writes.
struct SnapshotLineError: Error, CustomStringConvertible {
    /// What the line should have held, e.g. "a desk number and a conversation id".
    let expected: String
    let line: String
    var description: String { "not \(expected): \(line)" }
}

extension BoundedRecall {
    /// What a snapshot holds of a memory: its entries oldest first, keys apart from values, because shards
    /// write these memories (up to a million entries) in every snapshot and one JSON value per entry would
    /// cost most of a snapshot's time:
    /// - `keyLines`: keys that are `SnapshotLine`s, one per line of a single string (otherwise `keys`, an array);
    /// - `valueLines`: values that are `SnapshotLine`s, one per line, as the keys (the Router's finished offers,
    ///   each different, which as JSON objects took several times as long per entry as message ids);
    /// - otherwise `runLengths` and `runValues`: the values as runs of equal ones (a memory's values are mostly
    ///   alike; the Router's message ids all have `true`).
    ///
    /// Earlier forms are still read: `values`, one value per key, and `oldestFirst`, key-value pairs.
    ///
    /// A core takes `snapshot()` and `init(restoring:)` itself for its large memories rather than going through
    /// `Codable`: there the key and value types are known, so the pass over every entry is compiled for them
    /// instead of running generically. For 100,000 entries that made a snapshot about 2.5 times faster to write
    /// and 3.5 times faster to read (`CoreBench`).
    struct Snapshot: Codable {
        var limit: Int
        var keyLines: String?
        var keys: [Key]?
        var valueLines: String?
        var runLengths: [Int]?
        var runValues: [Value]?
        var values: [Value]?
        var oldestFirst: [Remembered]?
    }

    struct Remembered: Codable {
        var key: Key
        var value: Value
    }

    /// The snapshot form, with keys and values as lines when they are `SnapshotLine`s.
    func snapshot() -> Snapshot {
        snapshot(keyLines: Self.dynamicLines(Key.self), valueLines: Self.dynamicLines(Value.self))
    }

    init(restoring snapshot: Snapshot) throws {
        try self.init(restoring: snapshot, keyLine: Self.dynamicLine(Key.self), valueLine: Self.dynamicLine(Value.self))
    }

    /// Writes elements of a type known only at run time to be a `SnapshotLine` as lines; `nil` when it is not one.
    fileprivate static func dynamicLines<Element>(_: Element.Type) -> (([Element]) -> String)? {
        guard let lineType = Element.self as? any SnapshotLine.Type else { return nil }
        return { elements in lines(of: elements, as: lineType) }
    }

    /// Reads a line as an element of a type known only at run time to be a `SnapshotLine`.
    fileprivate static func dynamicLine<Element>(_: Element.Type) -> (String) throws -> Element {
        { line in
            guard let lineType = Element.self as? any SnapshotLine.Type else {
                throw corrupted("\(Element.self) cannot be read from lines")
            }
            return try lineType.init(snapshotLine: line) as! Element
        }
    }

    /// `Line` is `Element`, whose type was only known at run time to be a `SnapshotLine`.
    private static func lines<Element, Line: SnapshotLine>(of elements: [Element], as _: Line.Type) -> String {
        joinedLines(unsafeBitCast(elements, to: [Line].self))
    }

    fileprivate static func splitLines(_ text: String) -> [String] {
        guard !text.isEmpty else { return [] }
        return text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            String(Substring($0))
        }
    }

    fileprivate static func joinedLines<Line: SnapshotLine>(_ elements: [Line]) -> String {
        var text = ""
        text.reserveCapacity(elements.count * 16)
        for (index, element) in elements.enumerated() {
            if index > 0 { text.append("\n") }
            text.append(element.snapshotLine)
        }
        return text
    }

    /// One pass over the arrivals, one lookup each.
    fileprivate func snapshot(keyLines: (([Key]) -> String)?, valueLines: (([Value]) -> String)?) -> Snapshot {
        var keys: [Key] = []
        keys.reserveCapacity(count)
        var values: [Value] = []
        var runLengths: [Int] = []
        var runValues: [Value] = []
        for arrival in arrivals {
            guard let entry = entries[arrival.key], entry.stamp == arrival.stamp else { continue }
            keys.append(arrival.key)
            if valueLines != nil {
                values.append(entry.value)
            } else if runValues.last == entry.value {
                runLengths[runLengths.count - 1] += 1
            } else {
                runValues.append(entry.value)
                runLengths.append(1)
            }
        }
        var snapshot = Snapshot(limit: limit)
        if let valueLines {
            snapshot.valueLines = valueLines(values)
        } else {
            snapshot.runLengths = runLengths
            snapshot.runValues = runValues
        }
        if let keyLines {
            snapshot.keyLines = keyLines(keys)
        } else {
            snapshot.keys = keys
        }
        return snapshot
    }

    /// `keyLine` and `valueLine` read the lines of `keyLines` and `valueLines`.
    fileprivate init(
        restoring snapshot: Snapshot, keyLine: (String) throws -> Key, valueLine: (String) throws -> Value
    ) throws {
        self.init(limit: snapshot.limit)
        guard snapshot.keys != nil || snapshot.keyLines != nil else {
            guard let pairs = snapshot.oldestFirst else { throw Self.corrupted("no keys") }
            for remembered in pairs {
                update(remembered.key, startingFrom: remembered.value) { _ in }
            }
            return
        }
        let keys: [Key]
        if let text = snapshot.keyLines {
            keys = try Self.splitLines(text).map(keyLine)
        } else {
            keys = snapshot.keys ?? []
        }
        let values = try Self.values(of: snapshot, line: valueLine)
        guard keys.count == values.count else { throw Self.corrupted("\(keys.count) keys but \(values.count) values") }
        restore(keys: keys, values: values)
    }

    private static func values(of snapshot: Snapshot, line: (String) throws -> Value) throws -> [Value] {
        if let text = snapshot.valueLines {
            return try splitLines(text).map(line)
        }
        guard let runValues = snapshot.runValues else {
            guard let values = snapshot.values else { throw corrupted("no values") }
            return values
        }
        let lengths = snapshot.runLengths ?? []
        guard lengths.count == runValues.count, lengths.allSatisfy({ $0 > 0 }) else {
            throw corrupted("\(lengths.count) run lengths (each at least 1) for \(runValues.count) values")
        }
        var values: [Value] = []
        values.reserveCapacity(lengths.reduce(0, +))
        for (length, value) in zip(lengths, runValues) {
            values.append(contentsOf: repeatElement(value, count: length))
        }
        return values
    }

    /// Remembers `keys` with `values`, oldest first, as `update` one by one would. Keys that are distinct and
    /// within the limit, as every snapshot writes them, take one pass with no eviction checks.
    private mutating func restore(keys: [Key], values: [Value]) {
        var restored: [Key: Entry] = [:]
        restored.reserveCapacity(keys.count)
        var arrivals: Deque<Arrival> = []
        arrivals.reserveCapacity(keys.count)
        for index in keys.indices {
            restored[keys[index]] = Entry(value: values[index], stamp: UInt64(index))
            arrivals.append(Arrival(key: keys[index], stamp: UInt64(index)))
        }
        guard restored.count == keys.count, keys.count <= limit else {
            for (key, value) in zip(keys, values) {
                update(key, startingFrom: value) { _ in }
            }
            return
        }
        entries = restored
        self.arrivals = arrivals
        nextStamp = UInt64(keys.count)
    }

    private static func corrupted(_ description: String) -> DecodingError {
        .dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: "a remembered set: \(description)"))
    }
}

/// Keys that are lines, known as such where the memory's types are: the pass over the entries is compiled
/// for them.
extension BoundedRecall where Key: SnapshotLine {
    func snapshot() -> Snapshot {
        snapshot(keyLines: Self.joinedLines, valueLines: Self.dynamicLines(Value.self))
    }

    init(restoring snapshot: Snapshot) throws {
        try self.init(restoring: snapshot, keyLine: Key.init(snapshotLine:), valueLine: Self.dynamicLine(Value.self))
    }
}

/// Keys and values that are lines (the Router's finished offers), known as such where the memory's types are.
extension BoundedRecall where Key: SnapshotLine, Value: SnapshotLine {
    func snapshot() -> Snapshot {
        snapshot(keyLines: Self.joinedLines, valueLines: Self.joinedLines)
    }

    init(restoring snapshot: Snapshot) throws {
        try self.init(restoring: snapshot, keyLine: Key.init(snapshotLine:), valueLine: Value.init(snapshotLine:))
    }
}

extension BoundedRecall: Codable {
    public init(from decoder: any Decoder) throws {
        try self.init(restoring: Snapshot(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try snapshot().encode(to: encoder)
    }
}
