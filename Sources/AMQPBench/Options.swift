import BenchOptions
import SwitchboardAMQP

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
