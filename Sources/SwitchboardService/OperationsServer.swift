import Hummingbird
import Logging
import Prometheus

/// The HTTP server for operators: `GET /metrics`, `GET /health/live`, `GET /health/ready`.
public enum OperationsServer {
    /// The Prometheus text exposition format that `/metrics` serves.
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The routes, apart from the server so they can be served on any address.
    public static func router(
        health: some HealthReporting,
        registry: PrometheusCollectorRegistry
    ) -> Router<BasicRequestContext> {
        let router = Router()
        addRoutes(to: router, health: health, registry: registry)
        return router
    }

    /// Adds the three routes to a router that serves other things too (the gateway's page).
    public static func addRoutes<Context: RequestContext>(
        to router: Router<Context>,
        health: some HealthReporting,
        registry: PrometheusCollectorRegistry
    ) {
        router.get("/metrics") { _, _ in
            EditedResponse(headers: [.contentType: metricsContentType], response: registry.emitToString())
        }
        router.get("/health/live") { _, _ in
            healthResponse(health.liveness(), healthyText: "live")
        }
        router.get("/health/ready") { _, _ in
            healthResponse(health.readiness(), healthyText: "ready")
        }
    }

    /// A server to run as a service of the process's `ServiceGroup`.
    ///
    /// - Parameter onServerRunning: Called with the bound port once the server listens (useful with port 0).
    public static func application(
        host: String,
        port: Int,
        health: some HealthReporting,
        registry: PrometheusCollectorRegistry,
        logger: Logger,
        onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> Application<RouterResponder<BasicRequestContext>> {
        Application(
            router: router(health: health, registry: registry),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                await onServerRunning(channel.localAddress?.port ?? port)
            },
            logger: logger
        )
    }

    private static func healthResponse(_ status: HealthStatus, healthyText: String) -> EditedResponse<HealthBody> {
        switch status {
        case .healthy:
            EditedResponse(status: .ok, response: HealthBody(status: healthyText, reason: nil))
        case .unhealthy(let reason):
            EditedResponse(
                status: .serviceUnavailable,
                response: HealthBody(status: "not \(healthyText)", reason: reason)
            )
        }
    }

    private struct HealthBody: ResponseEncodable {
        let status: String
        let reason: String?
    }
}
