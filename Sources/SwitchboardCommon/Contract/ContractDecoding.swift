// Building blocks shared by every contract `Codable` conformance: a key for any field name, and
// validated reads that fail with the contract's wording (turned into a `ContractError` by `WireCodec`).

/// A field name. Contract objects are flat (envelope and body fields side by side), so one key type
/// serves every container.
struct FieldKey: CodingKey, Hashable, ExpressibleByStringLiteral {
    let stringValue: String
    var intValue: Int? { nil }

    init(_ name: String) { stringValue = name }
    init(stringLiteral name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// The allowed range of an integer field and how to say what it must be.
struct IntegerRule: Sendable {
    let range: ClosedRange<Int64>
    /// The lower bound as the error states it, e.g. `> 0` or `>= 1`.
    let lowerBoundText: String

    init(_ range: ClosedRange<Int64>, lowerBoundText: String? = nil) {
        self.range = range
        self.lowerBoundText = lowerBoundText ?? ">= \(range.lowerBound)"
    }

    /// Durations are bounded so that `Instant + duration` can never overflow: one year at most.
    static let longestDuration: Milliseconds = 365 * 24 * 3_600_000
    static let positiveDuration = IntegerRule(1...longestDuration, lowerBoundText: "> 0")
    static let duration = IntegerRule(0...longestDuration)
    static let attemptCount = IntegerRule(1...1_000)
    static let capacity = IntegerRule(1...1_000)
    static let priority = IntegerRule(Int64(Int32.min)...Int64(Int32.max))
    static let count = IntegerRule(0...Int64(Int32.max))
}

/// Texts shown to users (`closureText`, `warningText`, outbound `text`): 1 to 2000 characters, counted
/// as a reader sees them (grapheme clusters), so an accented letter or an emoji counts once.
let userTextLengths = 1...2_000

extension KeyedDecodingContainer where Key == FieldKey {
    func violation(_ key: FieldKey, _ problem: String) -> DecodingError {
        .dataCorrupted(DecodingError.Context(codingPath: codingPath + [key], debugDescription: problem))
    }

    func missing(_ key: FieldKey) -> DecodingError {
        .keyNotFound(key, DecodingError.Context(codingPath: codingPath, debugDescription: "is required"))
    }

    /// An absent field and a `null` one both fail as "is required" (see `ContractError(_:messageType:)`).
    func required<Value: Decodable>(_ key: FieldKey, as type: Value.Type = Value.self) throws -> Value {
        try decode(Value.self, forKey: key)
    }

    /// Absent and `null` both read as `nil`: the contract treats `null` as an absent optional field.
    func optional<Value: Decodable>(_ key: FieldKey, as type: Value.Type = Value.self) throws -> Value? {
        try decodeIfPresent(Value.self, forKey: key)
    }

    func integer(_ key: FieldKey, _ rule: IntegerRule) throws -> Int64 {
        guard let value = try optionalInteger(key, rule) else { throw missing(key) }
        return value
    }

    func optionalInteger(_ key: FieldKey, _ rule: IntegerRule) throws -> Int64? {
        let value: Int64
        do {
            guard let present = try decodeIfPresent(Int64.self, forKey: key) else { return nil }
            value = present
        } catch {
            throw violation(key, "must be an integer")
        }
        if value < rule.range.lowerBound { throw violation(key, "must be an integer \(rule.lowerBoundText)") }
        if value > rule.range.upperBound { throw violation(key, "must be an integer <= \(rule.range.upperBound)") }
        return value
    }

    func sequenceNumber(_ key: FieldKey) throws -> UInt64 {
        let value: UInt64?
        do {
            value = try decodeIfPresent(UInt64.self, forKey: key)
        } catch {
            throw violation(key, "must be an integer >= 0")
        }
        guard let value else { throw missing(key) }
        return value
    }

    func userText(_ key: FieldKey) throws -> String {
        let text = try required(key, as: String.self)
        guard userTextLengths.contains(text.count) else {
            throw violation(key, "must be 1 to 2000 characters")
        }
        return text
    }

    func optionalUserText(_ key: FieldKey) throws -> String? {
        guard let text = try optional(key, as: String.self) else { return nil }
        guard userTextLengths.contains(text.count) else { throw violation(key, "must be 1 to 2000 characters") }
        return text
    }
}

extension KeyedEncodingContainer where Key == FieldKey {
    /// Optional fields are left out when `nil`, never written as `null`.
    mutating func encodeOptional(_ value: (some Encodable)?, forKey key: FieldKey) throws {
        if let value { try encode(value, forKey: key) }
    }
}

/// Raw-value enums of the contract: decoding an unknown value says which values are allowed.
public protocol ContractEnum: RawRepresentable<String>, CaseIterable, Codable {}

extension ContractEnum {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let allowed = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be one of \(allowed)")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
