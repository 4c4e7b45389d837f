import BenchOptions
import Foundation

/// The system benchmark's load generator, in two jobs chosen by the first argument:
///   switchboard-loadbench run --url URL --metrics HOST:PORT,... --out FILE.json [--seconds S] [--concurrency N]
///           [--trickle-rate N] [--processes broker=PID,router=PID,...] [--broker-probe PATH-TO-C-BASELINE]
///       plays users and agents through the running services and writes the measurements, with the CPU time
///       of the named processes (and its own) in the closed-loop phase.
///   switchboard-loadbench report --load FILE.json --ceiling FILE.json --rss FILE.json --json OUT.json --markdown OUT.md
///           [--ceiling-broker-cpu SECONDS]
///       joins them with the broker's ceiling (and its CPU time) and the services' memory into one round's
///       report.
///   switchboard-loadbench summarize --reports ROUND1.json,ROUND2.json,... --json OUT.json --markdown OUT.md
///       judges each target on its median over the rounds, with the median round in detail
///       (bench-results/system.{json,md}).
let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "run":
        let options = try RunOptions(parsing: Array(arguments.dropFirst()))
        let result = try await LoadRun(options: options).measure()
        try writeJSON(result, to: options.outputFile)
    case "report":
        try writeReport(ReportOptions(parsing: Array(arguments.dropFirst())))
    case "summarize":
        try writeSummary(SummaryOptions(parsing: Array(arguments.dropFirst())))
    default:
        throw BenchError("the first argument must be `run`, `report` or `summarize`")
    }
} catch {
    FileHandle.standardError.write(Data("switchboard-loadbench: \(error)\n".utf8))
    exit(1)
}
