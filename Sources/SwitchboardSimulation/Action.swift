import SwitchboardCommon

/// One step of a simulated schedule. Parameters are small indices, resolved against the world when the
/// step runs (the k-th live ring, the k-th session, ...), so any sub-list of a schedule is still a valid
/// schedule: that is what lets a failing schedule shrink.
public enum Action: Hashable, Sendable, CustomStringConvertible {
    case request(desk: Int, group: Int?, priority: Int, preferredAgent: Int?)
    /// The agent clicks Accept on the pick-th ring its workstation shows.
    case accept(desk: Int, pick: Int)
    /// An agent clicks Accept on an offer that already stopped ringing (a late click).
    case lateAccept(desk: Int, pick: Int)
    /// An agent accepts an offer that rings on someone else's workstation.
    case foreignAccept(desk: Int, pick: Int, agent: Int)
    case decline(desk: Int, pick: Int)
    case status(desk: Int, agent: Int, status: AgentStatus)
    case upsert(desk: Int, agent: Int, capacity: Int, groups: Int, autoAccept: Bool?)
    case remove(desk: Int, agent: Int)
    case endSession(desk: Int, pick: Int)
    case transfer(desk: Int, pick: Int, toAgent: Int?, toGroup: Int?)
    case platformEnds(desk: Int, pick: Int, by: EndedBy)
    /// The serving agent writes; `skewMs` moves `sentAt` into the past, as a platform clock behind ours would.
    case agentMessage(desk: Int, pick: Int, skewMs: Int)
    case userMessage(desk: Int, pick: Int, skewMs: Int)
    case sync(desk: Int, agent: Int)
    case configure(desk: Int, autoAccept: Bool?, ringMs: Milliseconds?, inactivityMs: Milliseconds?, warningMs: Milliseconds?)
    /// Time passes; every timer that falls due on the way fires in order.
    case advance(ms: Milliseconds)
    /// The broker delivers the last Router input a second time (at-least-once delivery).
    case duplicateInbound
    /// The broker delivers the last batch of Router facts to the Notifier and the Closer a second time.
    case duplicateEvents
    /// A service is restarted from a snapshot of its state.
    case restart(Service)

    public enum Service: String, Hashable, Sendable, CaseIterable {
        case router, notifier, closer
    }

    public var description: String {
        switch self {
        case .request(let desk, let group, let priority, let preferred):
            "request(desk: \(desk), group: \(group.map(String.init) ?? "-"), priority: \(priority), preferred: \(preferred.map(String.init) ?? "-"))"
        case .accept(let desk, let pick): "accept(desk: \(desk), pick: \(pick))"
        case .lateAccept(let desk, let pick): "lateAccept(desk: \(desk), pick: \(pick))"
        case .foreignAccept(let desk, let pick, let agent): "foreignAccept(desk: \(desk), pick: \(pick), agent: \(agent))"
        case .decline(let desk, let pick): "decline(desk: \(desk), pick: \(pick))"
        case .status(let desk, let agent, let status): "status(desk: \(desk), agent: \(agent), \(status.rawValue))"
        case .upsert(let desk, let agent, let capacity, let groups, let autoAccept):
            "upsert(desk: \(desk), agent: \(agent), capacity: \(capacity), groups: \(groups), autoAccept: \(autoAccept.map(String.init) ?? "-"))"
        case .remove(let desk, let agent): "remove(desk: \(desk), agent: \(agent))"
        case .endSession(let desk, let pick): "endSession(desk: \(desk), pick: \(pick))"
        case .transfer(let desk, let pick, let toAgent, let toGroup):
            "transfer(desk: \(desk), pick: \(pick), toAgent: \(toAgent.map(String.init) ?? "-"), toGroup: \(toGroup.map(String.init) ?? "-"))"
        case .platformEnds(let desk, let pick, let by): "platformEnds(desk: \(desk), pick: \(pick), by: \(by.rawValue))"
        case .agentMessage(let desk, let pick, let skew): "agentMessage(desk: \(desk), pick: \(pick), skew: \(skew))"
        case .userMessage(let desk, let pick, let skew): "userMessage(desk: \(desk), pick: \(pick), skew: \(skew))"
        case .sync(let desk, let agent): "sync(desk: \(desk), agent: \(agent))"
        case .configure(let desk, let autoAccept, let ringMs, let inactivityMs, let warningMs):
            "configure(desk: \(desk), autoAccept: \(autoAccept.map(String.init) ?? "-"), ringMs: \(ringMs.map(String.init) ?? "-"), inactivityMs: \(inactivityMs.map(String.init) ?? "-"), warningMs: \(warningMs.map(String.init) ?? "-"))"
        case .advance(let ms): "advance(\(ms)ms)"
        case .duplicateInbound: "duplicateInbound"
        case .duplicateEvents: "duplicateEvents"
        case .restart(let service): "restart(\(service.rawValue))"
        }
    }
}

/// Draws schedules with a mix that keeps a small desk busy: many requests and clicks, frequent time jumps,
/// occasional admin changes, duplicates and restarts.
public struct ScheduleGenerator: Sendable {
    public var desks: Int
    public var agentsPerDesk: Int
    public var groups: Int

    public init(desks: Int = 2, agentsPerDesk: Int = 5, groups: Int = 2) {
        self.desks = desks
        self.agentsPerDesk = agentsPerDesk
        self.groups = groups
    }

    public func schedule(length: Int, using random: inout SeededRandom) -> [Action] {
        (0..<length).map { _ in action(using: &random) }
    }

    private func action(using random: inout SeededRandom) -> Action {
        let desk = Int.random(in: 0..<desks, using: &random)
        let agent = Int.random(in: 0..<agentsPerDesk, using: &random)
        let pick = Int.random(in: 0..<8, using: &random)
        let roll = Int.random(in: 0..<1000, using: &random)
        switch roll {
        case 0..<140:
            return .request(
                desk: desk,
                group: Bool.random(using: &random) ? Int.random(in: 0..<groups, using: &random) : nil,
                priority: Int.random(in: 0..<10, using: &random) < 8 ? 0 : Int.random(in: 1...3, using: &random),
                preferredAgent: Int.random(in: 0..<10, using: &random) == 0 ? agent : nil)
        case 140..<290: return .accept(desk: desk, pick: pick)
        case 290..<320: return .lateAccept(desk: desk, pick: pick)
        case 320..<340: return .foreignAccept(desk: desk, pick: pick, agent: agent)
        case 340..<380: return .decline(desk: desk, pick: pick)
        case 380..<420:
            let statuses: [AgentStatus] = [.online, .online, .online, .break, .offline]
            return .status(desk: desk, agent: agent, status: statuses[Int.random(in: 0..<statuses.count, using: &random)])
        case 420..<440:
            return .upsert(
                desk: desk, agent: agent, capacity: Int.random(in: 1...3, using: &random),
                groups: Int.random(in: 1..<(1 << groups), using: &random),
                autoAccept: [nil, true, false][Int.random(in: 0..<3, using: &random)])
        case 440..<446: return .remove(desk: desk, agent: agent)
        case 446..<520: return .endSession(desk: desk, pick: pick)
        case 520..<545:
            let toAgent = Bool.random(using: &random) ? agent : nil
            let toGroup = toAgent == nil && Bool.random(using: &random) ? Int.random(in: 0..<groups, using: &random) : nil
            return .transfer(desk: desk, pick: pick, toAgent: toAgent, toGroup: toGroup)
        case 545..<575:
            return .platformEnds(desk: desk, pick: pick, by: Bool.random(using: &random) ? .user : .admin)
        case 575..<675:
            return .agentMessage(desk: desk, pick: pick, skewMs: Int.random(in: 0..<4, using: &random) == 0 ? Int.random(in: 1...800, using: &random) : 0)
        case 675..<745:
            return .userMessage(desk: desk, pick: pick, skewMs: Int.random(in: 0..<4, using: &random) == 0 ? Int.random(in: 1...800, using: &random) : 0)
        case 745..<760: return .sync(desk: desk, agent: agent)
        case 760..<772:
            return .configure(
                desk: desk,
                autoAccept: [nil, true, false, false][Int.random(in: 0..<4, using: &random)],
                ringMs: Bool.random(using: &random) ? [1_000, 3_000, 10_000][Int.random(in: 0..<3, using: &random)] : nil,
                inactivityMs: Bool.random(using: &random) ? [0, 5_000, 20_000][Int.random(in: 0..<3, using: &random)] : nil,
                warningMs: Bool.random(using: &random) ? [0, 1_000][Int.random(in: 0..<2, using: &random)] : nil)
        case 772..<930:
            return .advance(ms: [1, 10, 250, 999, 1_000, 1_001, 2_500, 7_000][Int.random(in: 0..<8, using: &random)])
        case 930..<960: return .duplicateInbound
        case 960..<985: return .duplicateEvents
        default:
            return .restart(Action.Service.allCases[Int.random(in: 0..<3, using: &random)])
        }
    }
}
