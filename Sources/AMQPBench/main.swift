import BenchOptions
import Foundation

/// Two jobs, chosen by the first argument:
///   AMQPBench measure --url URL --queue NAME --queue-type classic|quorum [--messages N] [--window W]
///                     [--prefetch P] [--body-bytes B]
///       the same work as bench/c-baseline.c, through SwitchboardAMQP; prints one JSON run record.
///   AMQPBench summarize --runs FILE.jsonl --json OUT.json --markdown OUT.md [--broker-version V]
///       medians per queue type and client, and the Swift/C ratio, from the run records of bench/run.sh.
let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "measure":
        let options = try MeasureOptions(parsing: Array(arguments.dropFirst()))
        let run = try await measure(options)
        print(String(decoding: try JSONEncoder().encode(run), as: UTF8.self))
    case "summarize":
        try summarize(SummarizeOptions(parsing: Array(arguments.dropFirst())))
    default:
        throw BenchError("the first argument must be `measure` or `summarize`")
    }
} catch {
    FileHandle.standardError.write(Data("AMQPBench: \(error)\n".utf8))
    exit(1)
}
