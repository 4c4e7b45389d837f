import Metrics
import Prometheus

/// The process's one way to set up metrics: swift-metrics backed by a Prometheus registry.
public enum ServiceMetrics {
    /// Makes every swift-metrics instrument of the process record into the returned registry, which
    /// `GET /metrics` exports. Call once, before the first instrument is created.
    public static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}
