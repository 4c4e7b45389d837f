import Testing

@testable import LoadBench

/// What the load generator reads of the services' own metrics.
@Suite struct ServiceCountersTests {
    /// A Router's `/metrics` with two shards, as swift-prometheus writes them.
    static func routerMetrics(snapshots: Int, appendSum: Double, appendBuckets: [Double], heldSum: Double) -> String {
        let bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "+Inf"]
        var lines: [String] = []
        for shard in 0..<2 {
            let labels = #"service="router",shard="\#(shard)""#
            lines += [
                "switchboard_snapshots_total{\(labels)} \(snapshots / 2)",
                "switchboard_snapshot_bytes{\(labels)} \(shard == 0 ? 7_800_000 : 1_000)",
                #"switchboard_stage_seconds_sum{\#(labels),stage="snapshot_append"} \#(appendSum / 2)"#,
                #"switchboard_stage_seconds_count{\#(labels),stage="snapshot_append"} \#(snapshots / 2)"#,
                #"switchboard_stage_seconds_sum{\#(labels),stage="snapshot_held"} \#(heldSum / 2)"#,
                #"switchboard_stage_seconds_count{\#(labels),stage="snapshot_held"} \#(snapshots / 2)"#,
                #"switchboard_stage_seconds_sum{\#(labels),stage="journal_confirm"} 99"#,
                #"switchboard_stage_seconds_count{\#(labels),stage="journal_confirm"} 99"#,
            ]
            lines += zip(bounds, appendBuckets).map { bound, count in
                #"switchboard_stage_seconds_bucket{\#(labels),stage="snapshot_append",le="\#(bound)"} \#(count / 2)"#
            }
            lines += bounds.map { bound in
                #"switchboard_stage_seconds_bucket{\#(labels),stage="snapshot_held",le="\#(bound)"} \#(snapshots / 2)"#
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Snapshots over a stretch of the run: counts, sums and buckets taken as the difference of two scrapes, the
    /// latest size as it is at the end.
    @Test func snapshotCostsAreTheDifferenceOfTwoScrapes() throws {
        var before = ServiceCounters()
        before.add(Self.routerMetrics(snapshots: 4, appendSum: 0.08, appendBuckets: [0, 0, 4, 4, 4, 4], heldSum: 0.04))
        var after = ServiceCounters()
        after.add(Self.routerMetrics(snapshots: 14, appendSum: 0.38, appendBuckets: [0, 2, 10, 12, 14, 14], heldSum: 0.14))
        let costs = try #require((after - before).snapshotSummaries.first)
        #expect(costs.service == "router")
        #expect(costs.snapshots == 10)
        #expect(costs.largestLatestBytes == 7_800_000)
        #expect(try abs(#require(costs.appendMeanMilliseconds) - 30) < 1e-9)
        // 6 of the 10 appends took 10–25 ms, 2 up to 50 ms, 2 up to 100 ms.
        #expect(costs.appendsOver25Milliseconds == 4)
        #expect(costs.longestAppendAtMostMilliseconds == 100)
        #expect(try abs(#require(costs.heldMeanMilliseconds) - 10) < 1e-9)
        #expect(costs.longestHeldAtMostMilliseconds == 5)
    }

    /// A service's own timer lateness, as bucket bounds: 148 of 150 ticks within 5 ms, two within 50 ms.
    @Test func timerLatenessPercentilesAreTheBucketBoundsThatHoldThem() throws {
        var counters = ServiceCounters()
        counters.add(
            [("0.001", 100), ("0.005", 148), ("0.05", 150), ("+Inf", 150)].map { bound, count in
                #"switchboard_timer_lateness_seconds_bucket{service="router",shard="0",le="\#(bound)"} \#(count)"#
            }.joined(separator: "\n"))
        let lateness = try #require(counters.timerLatenessSummaries.first)
        #expect(lateness.service == "router" && lateness.ticks == 150)
        #expect(lateness.p50AtMostMilliseconds == 1)
        #expect(lateness.p99AtMostMilliseconds == 50)
    }

    /// A service's batches over a stretch of the run, summed over its shards: sizes and each stage's mean time,
    /// snapshot stages and unknown ones left out.
    @Test func batchCostsAreMeansOverTheStretchSummedOverShards() throws {
        func metrics(batches: Int, sizeSum: Int, wholeSum: Double, stageSums: [String: Double]) -> String {
            var lines: [String] = []
            for shard in 0..<2 {
                let labels = #"service="notifier",shard="\#(shard)""#
                lines += [
                    "switchboard_batch_size_sum{\(labels)} \(Double(sizeSum) / 2)",
                    "switchboard_batch_size_count{\(labels)} \(batches / 2)",
                    #"switchboard_batch_size_bucket{\#(labels),le="+Inf"} \#(batches / 2)"#,
                    "switchboard_batch_processing_seconds_sum{\(labels)} \(wholeSum / 2)",
                    "switchboard_batch_processing_seconds_count{\(labels)} \(batches / 2)",
                    #"switchboard_batch_processing_seconds_bucket{\#(labels),le="0.01"} \#(batches / 2)"#,
                ]
                for (stage, sum) in stageSums {
                    lines += [
                        #"switchboard_stage_seconds_sum{\#(labels),stage="\#(stage)"} \#(sum / 2)"#,
                        #"switchboard_stage_seconds_count{\#(labels),stage="\#(stage)"} \#(batches / 2)"#,
                    ]
                }
            }
            return lines.joined(separator: "\n")
        }
        var before = ServiceCounters()
        before.add(
            metrics(
                batches: 100, sizeSum: 150, wholeSum: 1,
                stageSums: ["inbox_wait": 5, "journal_confirm": 0.3, "apply": 0.1, "effects_confirm": 0.5, "ack": 9]))
        var after = ServiceCounters()
        after.add(
            metrics(
                batches: 1_100, sizeSum: 3_150, wholeSum: 7,
                stageSums: ["inbox_wait": 9, "journal_confirm": 3.3, "apply": 1.1, "effects_confirm": 4.5, "ack": 99]))
        let costs = try #require((after - before).batchSummaries.first)
        #expect(costs.service == "notifier")
        #expect(costs.batches == 1_000)
        #expect(costs.meanSize == 3)
        func near(_ value: Double?, _ expected: Double) -> Bool { value.map { abs($0 - expected) < 1e-9 } ?? false }
        #expect(near(costs.inboxWaitMeanMilliseconds, 4))
        #expect(near(costs.journalConfirmMeanMilliseconds, 3))
        #expect(near(costs.applyMeanMilliseconds, 1))
        #expect(near(costs.effectsConfirmMeanMilliseconds, 4))
        #expect(near(costs.wholeMeanMilliseconds, 6))
        #expect(["inbox_wait", "journal_confirm", "apply", "effects_confirm"].allSatisfy { BatchCounters.stage($0) != nil })
        #expect(BatchCounters.stage("ack") == nil)
    }

    @Test func theRoundsMarkdownShowsWhereBatchesSpentTheirTime() throws {
        let text = markdown(try RoundFixture.load().report())
        #expect(text.contains("| router | 1412 | 3.1 | 4.12 ms | 2.71 ms | 1.38 ms | 4.95 ms | 5.87 ms |"))
        // A service whose stages were not reported shows none.
        #expect(text.contains("| closer | 2702 | 2.4 | – | – | – | – | – |"))
    }

    @Test func theRoundsMarkdownShowsWhatSnapshotsCost() throws {
        let text = markdown(try RoundFixture.load().report())
        #expect(text.contains("| router | 34 | 7.8 MB | 27.10 ms | 12 | ≤ 100.00 ms | 13.70 ms | ≤ 100.00 ms |"))
        #expect(text.contains("| notifier | 145 | 18 kB | 5.40 ms | 1 |"))
    }
}
