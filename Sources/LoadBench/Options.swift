struct LoadBenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `--name value` pairs, each name at most once.
struct OptionValues {
    private var values: [String: String]

    init(parsing arguments: [String], allowed: Set<String>) throws(LoadBenchError) {
        guard arguments.count.isMultiple(of: 2) else { throw LoadBenchError("every option takes a value") }
        values = [:]
        for index in stride(from: 0, to: arguments.count, by: 2) {
            let name = arguments[index]
            guard allowed.contains(name) else { throw LoadBenchError("unknown option \(name)") }
            guard values.updateValue(arguments[index + 1], forKey: name) == nil else {
                throw LoadBenchError("\(name) given twice")
            }
        }
    }

    func string(_ name: String) throws(LoadBenchError) -> String {
        guard let value = values[name] else { throw LoadBenchError("\(name) is required") }
        return value
    }

    func positiveInt(_ name: String, default defaultValue: Int) throws(LoadBenchError) -> Int {
        guard let text = values[name] else { return defaultValue }
        guard let value = Int(text), value > 0 else { throw LoadBenchError("\(name) must be a positive number") }
        return value
    }
}

struct RunOptions {
    var url: String
    /// `host:port` of each service's metrics server.
    var metricsEndpoints: [String]
    var outputFile: String
    /// Length of each measured phase.
    var phaseSeconds: Int
    /// Conversations in flight at once while searching the maximum rate.
    var concurrency: Int
    /// Conversations of each timer kind (ring expiry, inactivity close).
    var timerConversations: Int

    init(parsing arguments: [String]) throws(LoadBenchError) {
        let values = try OptionValues(
            parsing: arguments,
            allowed: ["--url", "--metrics", "--out", "--seconds", "--concurrency", "--timer-conversations"])
        url = try values.string("--url")
        metricsEndpoints = try values.string("--metrics").split(separator: ",").map(String.init)
        outputFile = try values.string("--out")
        phaseSeconds = try values.positiveInt("--seconds", default: 20)
        concurrency = try values.positiveInt("--concurrency", default: 150)
        timerConversations = try values.positiveInt("--timer-conversations", default: 60)
    }
}

struct ReportOptions {
    var loadFile: String
    var ceilingFile: String
    var rssFile: String
    var jsonFile: String
    var markdownFile: String

    init(parsing arguments: [String]) throws(LoadBenchError) {
        let values = try OptionValues(
            parsing: arguments, allowed: ["--load", "--ceiling", "--rss", "--json", "--markdown"])
        loadFile = try values.string("--load")
        ceilingFile = try values.string("--ceiling")
        rssFile = try values.string("--rss")
        jsonFile = try values.string("--json")
        markdownFile = try values.string("--markdown")
    }
}
