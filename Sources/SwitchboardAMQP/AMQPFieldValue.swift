/// A value in an AMQP field table: message headers, queue and exchange arguments, consumer arguments.
///
/// Integers travel as signed 64-bit (`l`), which RabbitMQ accepts for every numeric `x-` argument.
/// Values the broker sends in narrower integer kinds are widened to `.int` on the way in.
public enum AMQPFieldValue: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case double(Double)
    /// Seconds since the Unix epoch (AMQP `T`), as used by `x-stream-offset` timestamps.
    case timestamp(UInt64)
    case bytes([UInt8])
    case table(AMQPTable)
    case array([AMQPFieldValue])
    case void
}

/// An AMQP field table. Entry order carries no meaning in AMQP 0-9-1, so a dictionary is enough.
public typealias AMQPTable = [String: AMQPFieldValue]

extension AMQPFieldValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension AMQPFieldValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension AMQPFieldValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension AMQPFieldValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension AMQPFieldValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, AMQPFieldValue)...) {
        self = .table(AMQPTable(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension AMQPFieldValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: AMQPFieldValue...) { self = .array(elements) }
}

extension AMQPFieldValue {
    /// The string inside a `.string` value, or nil.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer inside an `.int` value, or nil.
    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }
}
