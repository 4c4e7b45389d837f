import Metrics
import SwitchboardCommon

/// One shard's metrics. Labels stay low-cardinality: service, shard, and a fixed set of reasons.
struct ShardMetrics: Sendable {
    /// Why a delivery was dead-lettered.
    enum RejectionKind: String, Sendable {
        /// It broke the contract (parse, validation, size, version, properties): rejected before the core.
        case contract
        /// The core refused it (unknown desk, a type this service does not take).
        case core
    }

    let inputs: Counter
    let pulses: Counter
    private let rejectedByContract: Counter
    private let rejectedByCore: Counter
    let effectsPublished: Counter
    /// Journal messages published: records, each of one or more entries, or the parts of a record too large
    /// for one message.
    let journalAppends: Counter
    let journalEntries: Counter
    /// Journal records this instance read (whole ones, as the journal's readers take them in): what catching
    /// up and standing by cost.
    let journalRecordsRead: Counter
    let batchSize: Recorder
    let processing: Metrics.Timer
    let timerLateness: Metrics.Timer
    let snapshots: Counter
    /// The size of the latest snapshot, and the time each took to encode: what snapshots cost next to the
    /// journal (`snapshot.everyEntries` and the journal's growth decide how often they are taken).
    let snapshotBytes: Gauge
    let snapshotEncoding: Metrics.Timer
    let catchUp: Metrics.Timer
    let active: Gauge
    /// 1 while the shard's core holds other memory limits than this instance is configured with (as it reads
    /// the journal, writer or standby), else 0.
    let limitsDiffer: Gauge
    /// 1 while this instance holds a journal record it could not read, with no snapshot after it: it does not
    /// take the shard over (a standby that cannot stand in), else 0.
    let journalUnread: Gauge
    let routerGaps: Counter
    /// Where a batch's time goes, one `stage` label each (`switchboard_stage_seconds`).
    let stages: Stages

    struct Stages: Sendable {
        /// From the oldest delivery's arrival to the start of its batch.
        let inboxWait: Metrics.Timer
        /// From publishing the batch's journal entries to their confirms.
        let journalConfirm: Metrics.Timer
        /// From the journal confirms to the core having applied the entries, as read back from the journal.
        let apply: Metrics.Timer
        /// From publishing the batch's effects to their confirms.
        let effectsConfirm: Metrics.Timer
        /// Acknowledging the batch's deliveries.
        let ack: Metrics.Timer
        /// From the timer firing to the start of the batch that journals the tick.
        let timerToBatch: Metrics.Timer
        /// From publishing an encoded snapshot to the journal to its confirm: the batch it starts waits for it.
        let snapshotAppend: Metrics.Timer
        /// From a snapshot's encoding finishing to the batch that appends it: the wait for room before the
        /// shard's next deadline.
        let snapshotHeld: Metrics.Timer

        init(dimensions: [(String, String)], factory: any MetricsFactory) {
            func stage(_ name: String) -> Metrics.Timer {
                Metrics.Timer(
                    label: ShardMetrics.stageLabel, dimensions: dimensions + [("stage", name)], factory: factory)
            }
            inboxWait = stage("inbox_wait")
            journalConfirm = stage("journal_confirm")
            apply = stage("apply")
            effectsConfirm = stage("effects_confirm")
            ack = stage("ack")
            timerToBatch = stage("timer_to_batch")
            snapshotAppend = stage("snapshot_append")
            snapshotHeld = stage("snapshot_held")
        }
    }

    init(service: ServiceName, shard: Int, factory: any MetricsFactory) {
        let dimensions = [("service", service.rawValue), ("shard", "\(shard)")]
        func counter(_ label: String, _ more: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions + more, factory: factory)
        }
        func timer(_ label: String) -> Metrics.Timer { Metrics.Timer(label: label, dimensions: dimensions, factory: factory) }
        func gauge(_ label: String) -> Gauge { Gauge(label: label, dimensions: dimensions, factory: factory) }
        inputs = counter("switchboard_inputs_total")
        pulses = counter("switchboard_pulses_total")
        rejectedByContract = counter("switchboard_rejected_total", [("reason", RejectionKind.contract.rawValue)])
        rejectedByCore = counter("switchboard_rejected_total", [("reason", RejectionKind.core.rawValue)])
        effectsPublished = counter("switchboard_effects_published_total")
        journalAppends = counter("switchboard_journal_appends_total")
        journalEntries = counter("switchboard_journal_entries_total")
        journalRecordsRead = counter("switchboard_journal_records_read_total")
        batchSize = Recorder(label: "switchboard_batch_size", dimensions: dimensions, factory: factory)
        processing = timer(Self.batchProcessingLabel)
        timerLateness = timer(Self.timerLatenessLabel)
        snapshots = counter("switchboard_snapshots_total")
        snapshotBytes = gauge("switchboard_snapshot_bytes")
        snapshotEncoding = timer("switchboard_snapshot_encode_seconds")
        catchUp = timer(Self.catchUpLabel)
        active = gauge("switchboard_shard_active")
        limitsDiffer = gauge("switchboard_limits_differ")
        // Exported from the start, as not known to differ until the journal is read.
        limitsDiffer.record(0)
        journalUnread = gauge("switchboard_journal_unread")
        journalUnread.record(0)
        routerGaps = counter("switchboard_router_gaps_total")
        stages = Stages(dimensions: dimensions, factory: factory)
    }

    static let timerLatenessLabel = "switchboard_timer_lateness_seconds"
    static let batchProcessingLabel = "switchboard_batch_processing_seconds"
    static let stageLabel = "switchboard_stage_seconds"
    static let catchUpLabel = "switchboard_catch_up_seconds"

    func rejected(_ kind: RejectionKind) {
        switch kind {
        case .contract: rejectedByContract.increment()
        case .core: rejectedByCore.increment()
        }
    }

    /// The configured limits, so dashboards can set usage (batch size, lateness) against them; the core's
    /// memory limits by their names in snake case (`rememberedMessages` is `remembered_messages`).
    static func recordLimits(_ configuration: ShardRuntimeConfiguration, coreLimits: [String: Int], service: ServiceName) {
        let factory = configuration.metrics
        var limits: [(String, Double)] = [
            ("prefetch", Double(configuration.prefetch)),
            ("batch_size", Double(configuration.prefetch)),
            ("confirm_window", Double(configuration.confirmWindow)),
            ("snapshot_every_entries", Double(configuration.snapshotEveryEntries)),
            ("timers_per_shard", 1),
            ("max_body_bytes", Double(WireCodec.maxBodyBytes)),
        ]
        for (name, value) in coreLimits.sorted(by: { $0.key < $1.key }) {
            let snakeCase = name.reduce(into: "") { text, character in
                text += character.isUppercase ? "_" + character.lowercased() : String(character)
            }
            limits.append((snakeCase, Double(value)))
        }
        for (name, value) in limits {
            Gauge(label: "switchboard_limit", dimensions: [("service", service.rawValue), ("limit", name)], factory: factory)
                .record(value)
        }
    }
}

/// Histogram buckets, by metric label, for the runtime's metrics that need other ones than a Prometheus
/// registry's defaults (5, 10, 25, 50, 100 ms, then coarser, up to 10 s).
public enum RuntimeHistogramBuckets {
    /// A batch and its stages mostly take well under the defaults' first 5 ms; these tell them apart.
    static let batchMilliseconds: [Double] = [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000]

    public static let durations: [String: [Duration]] = [
        // Timer lateness is judged in tens of milliseconds (the system benchmark's target is a p99 of 50 ms):
        // these tell 30 ms from 50.
        ShardMetrics.timerLatenessLabel: [1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 250, 500, 1_000, 2_500, 5_000, 10_000]
            .map { .milliseconds($0) },
        ShardMetrics.batchProcessingLabel: batchMilliseconds.map { .milliseconds($0) },
        ShardMetrics.stageLabel: batchMilliseconds.map { .milliseconds($0) },
        // A takeover waits up to twice the catch-up timeout (30 s by default) for the journal.
        ShardMetrics.catchUpLabel: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300].map { .seconds($0) },
    ]
}
