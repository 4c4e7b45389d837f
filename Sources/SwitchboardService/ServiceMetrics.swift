import Metrics
import Prometheus
import SwitchboardRuntime

/// The process's one way to set up metrics: swift-metrics backed by a Prometheus registry.
public enum ServiceMetrics {
    /// Makes every swift-metrics instrument of the process record into the returned registry, which
    /// `GET /metrics` exports. Call once, before the first instrument is created.
    public static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(factory(registry: registry))
        return registry
    }

    /// The factory `bootstrapPrometheus` installs, recording into `registry`, with the runtime's own
    /// histogram buckets where it needs them.
    public static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = RuntimeHistogramBuckets.durations
        return factory
    }
}
