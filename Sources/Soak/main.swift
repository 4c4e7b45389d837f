import Foundation
import SwitchboardSimulation

// `make soak STEPS=n SEED=n`: drives the deterministic simulator for as many steps as asked.
let environment = ProcessInfo.processInfo.environment
let steps = environment["STEPS"].flatMap(Int.init) ?? 1_000_000
let seed = environment["SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
print("soak: seed \(seed), \(steps) steps")
let started = Date()
let report = Simulator.run(seed: seed, steps: steps)
if let failure = report.failure {
    print(failure)
    exit(1)
}
for (kind, count) in report.tally.sorted(by: { $0.key < $1.key }) {
    print("  \(kind): \(count)")
}
let seconds = Date().timeIntervalSince(started)
print("soak: \(report.steps) steps in \(report.episodes) episodes, \(Int(Double(report.steps) / seconds)) steps/s; every invariant held")
