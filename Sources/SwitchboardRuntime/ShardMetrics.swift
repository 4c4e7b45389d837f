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
    let journalAppends: Counter
    let batchSize: Recorder
    let processing: Metrics.Timer
    let timerLateness: Metrics.Timer
    let snapshots: Counter
    let catchUp: Metrics.Timer
    let active: Gauge
    let routerGaps: Counter

    init(service: ServiceName, shard: Int) {
        let dimensions = [("service", service.rawValue), ("shard", "\(shard)")]
        inputs = Counter(label: "switchboard_inputs_total", dimensions: dimensions)
        pulses = Counter(label: "switchboard_pulses_total", dimensions: dimensions)
        rejectedByContract = Counter(
            label: "switchboard_rejected_total", dimensions: dimensions + [("reason", RejectionKind.contract.rawValue)])
        rejectedByCore = Counter(
            label: "switchboard_rejected_total", dimensions: dimensions + [("reason", RejectionKind.core.rawValue)])
        effectsPublished = Counter(label: "switchboard_effects_published_total", dimensions: dimensions)
        journalAppends = Counter(label: "switchboard_journal_appends_total", dimensions: dimensions)
        batchSize = Recorder(label: "switchboard_batch_size", dimensions: dimensions)
        processing = Metrics.Timer(label: "switchboard_batch_processing_seconds", dimensions: dimensions)
        timerLateness = Metrics.Timer(label: "switchboard_timer_lateness_seconds", dimensions: dimensions)
        snapshots = Counter(label: "switchboard_snapshots_total", dimensions: dimensions)
        catchUp = Metrics.Timer(label: "switchboard_catch_up_seconds", dimensions: dimensions)
        active = Gauge(label: "switchboard_shard_active", dimensions: dimensions)
        routerGaps = Counter(label: "switchboard_router_gaps_total", dimensions: dimensions)
    }

    func rejected(_ kind: RejectionKind) {
        switch kind {
        case .contract: rejectedByContract.increment()
        case .core: rejectedByCore.increment()
        }
    }

    /// The configured limits, so dashboards can set usage (batch size, lateness) against them.
    static func recordLimits(_ configuration: ShardRuntimeConfiguration, service: ServiceName) {
        let limits: [(String, Double)] = [
            ("prefetch", Double(configuration.prefetch)),
            ("batch_size", Double(configuration.prefetch)),
            ("confirm_window", Double(configuration.confirmWindow)),
            ("snapshot_every_entries", Double(configuration.snapshotEveryEntries)),
            ("timers_per_shard", 1),
            ("max_body_bytes", Double(WireCodec.maxBodyBytes)),
        ]
        for (name, value) in limits {
            Gauge(label: "switchboard_limit", dimensions: [("service", service.rawValue), ("limit", name)]).record(value)
        }
    }
}
