import Foundation

/// Which broker users may send agent commands, and for which desks (the Router's `router.agentCommandUsers`).
///
/// A workstation gateway signs agents in and publishes their commands with its broker user as the AMQP
/// `user_id`, which the broker validates. The Router takes an agent command only when that user has a rule
/// for the command's desk, so a gateway (or any other client with write access to `switchboard.in`) can act
/// only for the desks it serves.
public struct AgentCommandUsers: Hashable, Sendable {
    /// The desks one broker user may send agent commands for.
    public enum Desks: Hashable, Sendable {
        case every
        case only(Set<DeskID>)
    }

    /// A rule that cannot be read; the message names the rule and what is wrong with it.
    public struct RuleError: Error, Hashable, Sendable, CustomStringConvertible {
        public let description: String
    }

    public private(set) var desksByUser: [String: Desks]

    /// Reads rules of the form `user:desk`, where `desk` is a desk id or `*` for every desk
    /// (`switchboard-gateway:*`, `gateway-acme:acme`). Several rules for one user add up. The user is
    /// everything before the last `:`, so a broker user name may itself hold a colon.
    public init(rules: [String]) throws(RuleError) {
        desksByUser = [:]
        for rule in rules {
            let trimmed = rule.trimmingCharacters(in: .whitespaces)
            guard let separator = trimmed.lastIndex(of: ":") else {
                throw RuleError(description: "rule \"\(rule)\" is not of the form user:desk (or user:* for every desk)")
            }
            let user = String(trimmed[..<separator])
            let desk = String(trimmed[trimmed.index(after: separator)...])
            guard !user.isEmpty else {
                throw RuleError(description: "rule \"\(rule)\" names no broker user before the colon")
            }
            if desk == "*" {
                desksByUser[user] = .every
                continue
            }
            guard let deskID = try? DeskID(desk) else {
                throw RuleError(
                    description: "rule \"\(rule)\": \"\(desk)\" is neither * nor a desk id ([A-Za-z0-9_-]{1,64})")
            }
            switch desksByUser[user] {
            case .every:
                continue
            case .only(let desks):
                desksByUser[user] = .only(desks.union([deskID]))
            case nil:
                desksByUser[user] = .only([deskID])
            }
        }
        guard !desksByUser.isEmpty else {
            throw RuleError(description: "no rule given: at least one user:desk is needed")
        }
    }

    /// Why `user` may not send an agent command naming `desks` (the body's desk and the `desk` header, when
    /// they can be read), or `nil` when it may. A command whose desk cannot be read passes only a user
    /// allowed for every desk; it is then refused as invalid.
    public func refusal(user: String?, desks: [DeskID]) -> String? {
        guard let user else {
            return "forbidden: an agent command must carry the broker-validated user_id property"
        }
        switch desksByUser[user] {
        case .every:
            return nil
        case .only(let allowed):
            guard !desks.isEmpty else {
                return "forbidden: broker user \"\(user)\" may not send agent commands without a readable desk"
            }
            guard let desk = desks.first(where: { !allowed.contains($0) }) else { return nil }
            return "forbidden: broker user \"\(user)\" may not send agent commands for desk \"\(desk)\""
        case nil:
            guard let desk = desks.first else {
                return "forbidden: broker user \"\(user)\" may not send agent commands"
            }
            return "forbidden: broker user \"\(user)\" may not send agent commands for desk \"\(desk)\""
        }
    }
}

extension AgentCommandUsers {
    /// The rules in the form they are configured, sorted, for the start-up log.
    public var ruleDescription: String {
        desksByUser.flatMap { user, desks -> [String] in
            switch desks {
            case .every: ["\(user):*"]
            case .only(let ids): ids.map { "\(user):\($0)" }
            }
        }
        .sorted()
        .joined(separator: ",")
    }
}
