import SwitchboardCommon

/// One readable line per contract message, for `switchboard events tail` and the demo.
public enum EventLine {
    public static func describe(_ event: RouterEvent) -> String {
        let prefix = "\(event.at.rfc3339) \(event.desk) #\(event.seq)"
        return "\(prefix) \(describe(event.body))"
    }

    public static func describe(_ body: RouterEventBody) -> String {
        switch body {
        case .deskConfigured(let settings):
            return "desk.configured \(describe(settings))"
        case .agentChanged(let agent, let status, let capacity, let load, let groups, let reason):
            return "agent.changed \(agent) \(status.rawValue) load \(load)/\(capacity) groups \(list(groups)) (\(reason.rawValue))"
        case .conversationQueued(let conversation, let user, let position, let reason):
            return "conversation.queued \(conversation) user \(user) position \(position) (\(reason.rawValue))"
        case .offerMade(let conversation, let user, let agent, let offer, let attempt, _, let ringMs):
            return "offer.made \(conversation) user \(user) to \(agent) attempt \(attempt) rings \(seconds(ringMs)) offer \(offer)"
        case .offerExpired(let conversation, let agent, let offer):
            return "offer.expired \(conversation) at \(agent) offer \(offer)"
        case .offerDeclined(let conversation, let agent, let offer, let reason):
            return "offer.declined \(conversation) by \(agent) offer \(offer)\(reason.map { " (\($0))" } ?? "")"
        case .offerWithdrawn(let conversation, let agent, let offer, let reason):
            return "offer.withdrawn \(conversation) from \(agent) offer \(offer) (\(reason.rawValue))"
        case .conversationAssigned(let conversation, let user, let agent, _, let mode):
            return "conversation.assigned \(conversation) user \(user) to \(agent) (\(mode.rawValue))"
        case .conversationEnded(let conversation, let agent, let reason):
            return "conversation.ended \(conversation)\(agent.map { " at \($0)" } ?? "") (\(reason.rawValue))"
        case .commandRejected(let rejection):
            return "command.rejected \(describe(rejection))"
        case .agentState(let state):
            return "agent.state \(state.agent) \(state.status.rawValue) rings \(state.rings.count) sessions \(state.sessions.count)"
        }
    }

    public static func describe(_ rejection: CommandRejection) -> String {
        var parts = [rejection.commandType]
        if let agent = rejection.agent { parts.append("by \(agent)") }
        if let conversation = rejection.conversation { parts.append("for \(conversation)") }
        parts.append("(\(rejection.reason.rawValue))")
        return parts.joined(separator: " ")
    }

    public static func describe(_ settings: DeskSettings) -> String {
        let autoAccept = settings.autoAccept ? "on" : "off"
        return "ring \(seconds(settings.ringMs)), countdown every \(seconds(settings.countdownEveryMs)), "
            + "auto-accept \(autoAccept), \(settings.maxOfferAttempts) attempts, break after \(settings.missesBeforeBreak) misses, "
            + "routing \(settings.routing.rawValue), inactivity \(seconds(settings.inactivityMs)), warning \(seconds(settings.warningMs))"
    }

    /// "6s", "1.5s", "off" for 0.
    public static func seconds(_ milliseconds: Milliseconds) -> String {
        if milliseconds == 0 { return "off" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(Double(milliseconds) / 1000)s"
    }

    private static func list(_ groups: [GroupID]) -> String {
        groups.isEmpty ? "-" : groups.map(\.rawValue).joined(separator: ",")
    }
}
