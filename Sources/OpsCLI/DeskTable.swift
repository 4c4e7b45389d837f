import Foundation
import SwitchboardCommon
import SwitchboardOps

/// Plain-text tables of a `DeskView`.
enum DeskTable {
    static func full(_ view: DeskView, now: Instant) -> String {
        var sections: [String] = []
        if let settings = view.settings {
            sections.append("desk \(view.desk) (last event #\(view.lastSeq))\n  \(EventLine.describe(settings))")
        } else if view.lastSeq == 0 {
            sections.append("desk \(view.desk): no events in switchboard.events.log (never configured, or retention removed them)")
            return sections.joined()
        } else {
            sections.append("desk \(view.desk) (last event #\(view.lastSeq); its desk.configured is no longer in the log)")
        }
        sections.append(agents(view))
        let waiting = view.waiting.sorted { $0.value.position < $1.value.position }.map { conversation, entry in
            [conversation.rawValue, entry.user.rawValue, "\(entry.position)", entry.reason.rawValue,
             age(since: entry.since, now: now)]
        }
        sections.append(table("waiting", ["CONVERSATION", "USER", "POSITION", "REASON", "WAITING"], waiting))
        let rings = view.rings.sorted { $0.key < $1.key }.map { conversation, ring in
            [conversation.rawValue, ring.user.rawValue, ring.agent.rawValue, "\(ring.attempt)",
             remaining(until: ring.expiresAt, now: now), ring.offer.rawValue]
        }
        sections.append(table("ringing", ["CONVERSATION", "USER", "AGENT", "ATTEMPT", "EXPIRES", "OFFER"], rings))
        let sessions = view.sessions.sorted { $0.key < $1.key }.map { conversation, session in
            [conversation.rawValue, session.user.rawValue, session.agent.rawValue, session.mode.rawValue,
             age(since: session.since, now: now)]
        }
        sections.append(table("serving", ["CONVERSATION", "USER", "AGENT", "MODE", "FOR"], sessions))
        return sections.joined(separator: "\n\n")
    }

    static func agents(_ view: DeskView) -> String {
        let rows = view.agents.sorted { $0.key < $1.key }.map { agent, state in
            [agent.rawValue, state.status.rawValue, "\(state.load)/\(state.capacity)",
             state.groups.isEmpty ? "-" : state.groups.map(\.rawValue).joined(separator: ",")]
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

    private static func age(since: Instant, now: Instant) -> String {
        "\(max(0, now - since) / 1000)s"
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
