import SwitchboardAMQP

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `--name value` pairs, each name at most once.
struct OptionValues {
    private var values: [String: String]

    init(parsing arguments: [String], allowed: Set<String>) throws(BenchError) {
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

    func string(_ name: String) throws(BenchError) -> String {
        guard let value = values[name] else { throw BenchError("\(name) is required") }
        return value
    }

    func optionalString(_ name: String) -> String? { values[name] }

    func positiveInt(_ name: String, default defaultValue: Int) throws(BenchError) -> Int {
        guard let text = values[name] else { return defaultValue }
        guard let value = Int(text), value > 0 else { throw BenchError("\(name) must be a positive number") }
        return value
    }
}

struct MeasureOptions {
    var url: String
    var queue: String
    var queueType: Topology.Queue.Kind
    var messages: Int
    var window: Int
    var prefetch: UInt16
    var bodyBytes: Int

    init(parsing arguments: [String]) throws(BenchError) {
        let values = try OptionValues(
            parsing: arguments,
            allowed: ["--url", "--queue", "--queue-type", "--messages", "--window", "--prefetch", "--body-bytes"])
        url = try values.string("--url")
        queue = try values.string("--queue")
        let typeName = try values.string("--queue-type")
        switch Topology.Queue.Kind(rawValue: typeName) {
        case .classic?: queueType = .classic
        case .quorum?: queueType = .quorum
        case .stream?, nil: throw BenchError("--queue-type must be classic or quorum, not \(typeName)")
        }
        messages = try values.positiveInt("--messages", default: 200_000)
        window = try values.positiveInt("--window", default: 256)
        let prefetch = try values.positiveInt("--prefetch", default: 256)
        guard let narrowPrefetch = UInt16(exactly: prefetch) else { throw BenchError("--prefetch is at most 65535") }
        self.prefetch = narrowPrefetch
        bodyBytes = try values.positiveInt("--body-bytes", default: 300)
        guard bodyBytes >= MemoryLayout<UInt64>.size else { throw BenchError("--body-bytes is at least 8") }
    }
}

struct SummarizeOptions {
    var runsFile: String
    var jsonFile: String
    var markdownFile: String
    var brokerVersion: String?

    init(parsing arguments: [String]) throws(BenchError) {
        let values = try OptionValues(
            parsing: arguments, allowed: ["--runs", "--json", "--markdown", "--broker-version"])
        runsFile = try values.string("--runs")
        jsonFile = try values.string("--json")
        markdownFile = try values.string("--markdown")
        brokerVersion = values.optionalString("--broker-version")
    }
}
