import BenchOptions

struct RunOptions {
    var url: String
    /// `host:port` of each service's metrics server.
    var metricsEndpoints: [String]
    var outputFile: String
    /// Length of each measured phase.
    var phaseSeconds: Int
    /// Conversations in flight at once while searching the maximum rate.
    var concurrency: Int
    /// Conversations per second of the quiet phase that measures request→ring's floor.
    var trickleRate: Double
    /// Conversations of each timer kind (ring expiry, inactivity close).
    var timerConversations: Int
    /// The broker's and the services' processes, whose CPU time the closed-loop phase reads.
    var cpu: CPUProbe
    /// Measures request→ring's broker operations alone beside the trickle and the 25% phase, if given the
    /// c-baseline executable.
    var brokerProbe: BrokerProbe?

    init(parsing arguments: [String]) throws(BenchError) {
        let values = try OptionValues(
            parsing: arguments,
            allowed: [
                "--url", "--metrics", "--out", "--seconds", "--concurrency", "--timer-conversations", "--processes",
                "--trickle-rate", "--broker-probe",
            ])
        url = try values.string("--url")
        metricsEndpoints = try values.string("--metrics").split(separator: ",").map(String.init)
        outputFile = try values.string("--out")
        phaseSeconds = try values.positiveInt("--seconds", default: 20)
        concurrency = try values.positiveInt("--concurrency", default: 400)
        timerConversations = try values.positiveInt("--timer-conversations", default: 150)
        trickleRate = Double(try values.positiveInt("--trickle-rate", default: 20))
        cpu = try CPUProbe(parsing: values.optionalString("--processes"))
        brokerProbe = values.optionalString("--broker-probe").map { BrokerProbe(executable: $0, url: url) }
    }
}

struct ReportOptions {
    var loadFile: String
    var ceilingFile: String
    var rssFile: String
    /// Shards per service in the run.
    var shards: Int
    var jsonFile: String
    var markdownFile: String
    /// The broker's CPU seconds during the ceiling round that counts.
    var ceilingBrokerCPUSeconds: Double?

    init(parsing arguments: [String]) throws(BenchError) {
        let values = try OptionValues(
            parsing: arguments,
            allowed: ["--load", "--ceiling", "--rss", "--shards", "--json", "--markdown", "--ceiling-broker-cpu"])
        loadFile = try values.string("--load")
        ceilingFile = try values.string("--ceiling")
        rssFile = try values.string("--rss")
        // A fact of the run, not a preference: no default that could name the wrong one.
        shards = try values.positiveInt("--shards")
        jsonFile = try values.string("--json")
        markdownFile = try values.string("--markdown")
        if let seconds = values.optionalString("--ceiling-broker-cpu") {
            guard let value = Double(seconds), value > 0 else { throw BenchError("--ceiling-broker-cpu takes seconds") }
            ceilingBrokerCPUSeconds = value
        }
    }
}

struct SummaryOptions {
    /// The rounds' reports (written by `report`), in the order of the rounds.
    var reportFiles: [String]
    var jsonFile: String
    var markdownFile: String

    init(parsing arguments: [String]) throws(BenchError) {
        let values = try OptionValues(parsing: arguments, allowed: ["--reports", "--json", "--markdown"])
        reportFiles = try values.string("--reports").split(separator: ",").map(String.init)
        jsonFile = try values.string("--json")
        markdownFile = try values.string("--markdown")
    }
}
