import Foundation
import SwitchboardCommon
import SwitchboardOps

/// Plain-text tables of a desk's state.
enum DeskTable {
    static func full(_ desk: RouterDeskState, now: Instant) -> String {
        var sections = ["desk \(desk.desk) (last event #\(desk.lastSeq))\n  \(EventLine.describe(desk.settings))"]
        sections.append(agents(desk))
        let waiting = desk.waiting.map { entry in
            [entry.conversation.rawValue, entry.user.rawValue, "\(entry.position)", "\(entry.priority)",
             entry.group?.rawValue ?? "-", entry.reason?.rawValue ?? "-", age(since: entry.since, now: now)]
        }
        sections.append(
            table("waiting", ["CONVERSATION", "USER", "POSITION", "PRIORITY", "GROUP", "REASON", "WAITING"], waiting))
        let rings = desk.rings.map { ring in
            [ring.conversation.rawValue, ring.user.rawValue, ring.agent.rawValue, "\(ring.attempt)",
             remaining(until: ring.expiresAt, now: now), ring.offer.rawValue]
        }
        sections.append(table("ringing", ["CONVERSATION", "USER", "AGENT", "ATTEMPT", "EXPIRES", "OFFER"], rings))
        let sessions = desk.sessions.map { session in
            [session.conversation.rawValue, session.user.rawValue, session.agent.rawValue, session.mode?.rawValue ?? "-",
             age(since: session.since, now: now)]
        }
        sections.append(table("serving", ["CONVERSATION", "USER", "AGENT", "MODE", "FOR"], sessions))
        return sections.joined(separator: "\n\n")
    }

    static func agents(_ desk: RouterDeskState) -> String {
        let rows = desk.agents.map { agent in
            [agent.agent.rawValue, agent.status.rawValue, "\(agent.load)/\(agent.capacity)",
             agent.groups.isEmpty ? "-" : agent.groups.map(\.rawValue).joined(separator: ",")]
        }
        return table("agents", ["AGENT", "STATUS", "LOAD", "GROUPS"], rows)
    }

    static func table(_ title: String, _ header: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "\(title): none" }
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        let lines = ([header] + rows).map { row in
            row.enumerated().map { column, cell in
                cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        return "\(title) (\(rows.count)):\n" + lines.map { "  " + $0 }.joined(separator: "\n")
    }

    /// `-` when the Router does not know since when.
    private static func age(since: Instant?, now: Instant) -> String {
        since.map { "\(max(0, now - $0) / 1000)s" } ?? "-"
    }

    private static func remaining(until: Instant, now: Instant) -> String {
        let left = until - now
        return left > 0 ? "in \((left + 999) / 1000)s" : "due"
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }
}
