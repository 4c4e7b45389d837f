import Metrics

/// The gateway's instruments, exported on `/metrics`. Labels stay low-cardinality: no agent names.
public struct GatewayMetrics: Sendable {
    /// Why the gateway refused something.
    public enum Rejection: String, Sendable, CaseIterable {
        /// A page sent a message that is not a valid command.
        case invalidCommand
        /// A sign-in with a token that is not in the tokens file.
        case invalidToken
        /// A workstation event that breaks the contract or names another agent.
        case invalidEvent
        /// A command the broker did not confirm.
        case publishFailed
        /// A page of an agent that has `AgentSession.Settings.maxPages` open here already.
        case tooManyPages
        /// A command over a page's rate (`CommandRate`).
        case tooManyCommands
    }

    /// Agents with at least one open page.
    public let connectedAgents: Gauge
    /// Agents signed in, connected or in their grace period.
    public let sessions: Gauge
    public let openSockets: Gauge
    /// Workstation events relayed to pages (one per event, whatever the number of sockets).
    public let relayedEvents: Counter
    public let syncs: Counter
    public let signOffs: Counter
    /// Grace periods that ended here while a page of the agent was open on another gateway: no sign-off.
    public let handedOver: Counter

    public init() {
        connectedAgents = Gauge(label: "switchboard_gateway_connected_agents")
        sessions = Gauge(label: "switchboard_gateway_sessions")
        openSockets = Gauge(label: "switchboard_gateway_open_sockets")
        relayedEvents = Counter(label: "switchboard_gateway_relayed_events_total")
        syncs = Counter(label: "switchboard_gateway_syncs_total")
        signOffs = Counter(label: "switchboard_gateway_sign_offs_total")
        handedOver = Counter(label: "switchboard_gateway_handed_over_total")
    }

    /// A command from a page, published on `switchboard.in`.
    public func commandPublished(type: String) {
        Counter(label: "switchboard_gateway_commands_total", dimensions: [("type", type)]).increment()
    }

    public func rejected(_ rejection: Rejection) {
        Counter(label: "switchboard_gateway_rejections_total", dimensions: [("reason", rejection.rawValue)]).increment()
    }
}
