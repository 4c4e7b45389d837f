// The benchmark programs' command lines: a subcommand, then `--name value` pairs.

public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `--name value` pairs, each name at most once.
public struct OptionValues {
    private var values: [String: String]

    public init(parsing arguments: [String], allowed: Set<String>) throws(BenchError) {
        guard arguments.count.isMultiple(of: 2) else { throw BenchError("every option takes a value") }
        values = [:]
        for index in stride(from: 0, to: arguments.count, by: 2) {
            let name = arguments[index]
            guard allowed.contains(name) else { throw BenchError("unknown option \(name)") }
            guard values.updateValue(arguments[index + 1], forKey: name) == nil else {
                throw BenchError("\(name) given twice")
            }
        }
    }

    public func string(_ name: String) throws(BenchError) -> String {
        guard let value = values[name] else { throw BenchError("\(name) is required") }
        return value
    }

    public func optionalString(_ name: String) -> String? { values[name] }

    /// A required positive number.
    public func positiveInt(_ name: String) throws(BenchError) -> Int {
        guard values[name] != nil else { throw BenchError("\(name) is required") }
        return try positiveInt(name, default: 0)
    }

    public func positiveInt(_ name: String, default defaultValue: Int) throws(BenchError) -> Int {
        guard let text = values[name] else { return defaultValue }
        guard let value = Int(text), value > 0 else { throw BenchError("\(name) must be a positive number") }
        return value
    }
}
