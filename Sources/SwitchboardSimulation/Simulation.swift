import Foundation
import OrderedCollections
import SwitchboardCommon

/// A deliberate defect, to prove that the simulator notices when the system misbehaves.
public enum Fault: Hashable, Sendable {
    /// Router facts of this `type` never reach anyone.
    case dropRouterEvents(type: String)
    /// Every closure message is delivered twice.
    case duplicateClosures
}

/// The three cores wired as the services wire them, with a simulated broker between them: at-least-once
/// delivery, per-queue order, races between queues, snapshot restarts, and a clock that only moves when told.
/// After every step it checks the invariants of DESIGN.md (see `Oracle`).
public struct Simulation {
    /// A core and a twin that is never restarted: both get every input, and their effects must agree,
    /// which is what "restoring from a snapshot is identical to not restarting" means.
    struct Replica<Core: Codable> {
        var live: Core
        var twin: Core
        var wakeUp: Instant?

        mutating func restart() throws {
            live = try WireCodec.decodeSnapshot(Core.self, from: WireCodec.encodeSnapshot(live))
        }
    }

    public static let desks = ["north", "south", "east"]
    public static let groups = ["sales", "support", "billing"]

    var router = Replica(live: RouterCore(), twin: RouterCore())
    var notifier = Replica(live: NotifierCore(), twin: NotifierCore())
    var closer = Replica(live: CloserCore(), twin: CloserCore())
    var oracle = Oracle()
    var now = Instant(millisecondsSinceEpoch: 1_795_000_000_000)
    let fault: Fault?
    let generator: ScheduleGenerator
    var interleaving: SeededRandom

    var routerInbox: [InboundMessage] = []
    var eventsToNotifier: [RouterEvent] = []
    var eventsToCloser: [RouterEvent] = []
    var postsToCloser: [InboundMessage] = []
    var lastInbound: InboundMessage?
    var lastEvents: [RouterEvent] = []
    var requested: [DeskID: [ConversationID]] = [:]
    var conversationCount = 0
    var messageCount = 0
    /// Accept clicks awaiting their one definitive answer.
    var pendingAccepts: [MessageID: OfferToken] = [:]

    public init(generator: ScheduleGenerator, seed: UInt64, fault: Fault? = nil) {
        self.generator = generator
        self.fault = fault
        interleaving = SeededRandom.derived(from: seed, 0x5EED)
    }

    // MARK: Running a schedule

    /// Sets up desks and agents, then runs `schedule`; throws the first broken invariant.
    public mutating func run(_ schedule: [Action]) throws(Violation) {
        try setUp()
        for (index, action) in schedule.enumerated() {
            oracle.step = index + 1
            try perform(action)
            try settle()
        }
    }

    private mutating func setUp() throws(Violation) {
        for deskIndex in 0..<generator.desks {
            send(.deskConfigure(DeskSettingsPatch(ringMs: 3_000, inactivityMs: 5_000, warningMs: deskIndex == 0 ? 1_000 : 0)), desk: deskIndex)
            for agentIndex in 0..<generator.agentsPerDesk {
                send(.agentUpsert(AgentProfile(
                    agent: agent(agentIndex), groups: groups(mask: agentIndex % 3 + 1), capacity: agentIndex % 2 + 1,
                    autoAccept: deskIndex == 2 && agentIndex == 0 ? true : nil)), desk: deskIndex)
                send(.agentStatus(agent: agent(agentIndex), status: .online), desk: deskIndex)
            }
        }
        try settle()
    }

    private mutating func perform(_ action: Action) throws(Violation) {
        switch action {
        case .request(let desk, let group, let priority, let preferred):
            conversationCount += 1
            let conversation = try! ConversationID("c\(conversationCount)")
            requested[deskID(desk), default: []].append(conversation)
            send(.conversationRequested(ConversationRequest(
                conversation: conversation, user: try! UserID("u\(conversationCount)"),
                group: group.map { try! GroupID(Self.groups[$0 % Self.groups.count]) }, priority: priority,
                preferredAgent: preferred.map(agent))), desk: desk)
        case .accept(let desk, let pick):
            guard let (agent, conversation, offer) = liveRing(desk: desk, pick: pick) else { return }
            accept(agent: agent, conversation: conversation, offer: offer, desk: desk)
        case .lateAccept(let desk, let pick):
            let stopped = oracle.desks[deskID(desk)]?.stoppedOffers ?? []
            guard !stopped.isEmpty else { return }
            let (agent, conversation, offer) = stopped[pick % stopped.count]
            accept(agent: agent, conversation: conversation, offer: offer, desk: desk)
        case .foreignAccept(let desk, let pick, let agentIndex):
            guard let (owner, conversation, offer) = liveRing(desk: desk, pick: pick), owner != agent(agentIndex) else { return }
            accept(agent: agent(agentIndex), conversation: conversation, offer: offer, desk: desk)
        case .decline(let desk, let pick):
            guard let (agent, conversation, offer) = liveRing(desk: desk, pick: pick) else { return }
            send(.offerDecline(agent: agent, conversation: conversation, offer: offer, reason: "busy"), desk: desk)
        case .status(let desk, let agentIndex, let status):
            send(.agentStatus(agent: agent(agentIndex), status: status), desk: desk)
        case .upsert(let desk, let agentIndex, let capacity, let mask, let autoAccept):
            send(.agentUpsert(AgentProfile(agent: agent(agentIndex), groups: groups(mask: mask), capacity: capacity, autoAccept: autoAccept)), desk: desk)
        case .remove(let desk, let agentIndex):
            send(.agentRemove(agent: agent(agentIndex)), desk: desk)
        case .endSession(let desk, let pick):
            guard let (agent, conversation) = session(desk: desk, pick: pick) else { return }
            send(.sessionEnd(agent: agent, conversation: conversation), desk: desk)
        case .transfer(let desk, let pick, let toAgent, let toGroup):
            guard let (agent, conversation) = session(desk: desk, pick: pick) else { return }
            let target: TransferTarget? =
                if let toAgent { .agent(self.agent(toAgent)) }
                else if let toGroup { .group(try! GroupID(Self.groups[toGroup % Self.groups.count])) }
                else { nil }
            send(.sessionTransfer(agent: agent, conversation: conversation, to: target), desk: desk)
        case .platformEnds(let desk, let pick, let by):
            let live = oracle.desks[deskID(desk)]?.conversations.keys ?? []
            guard !live.isEmpty else { return }
            send(.conversationEnded(conversation: live[pick % live.count], by: by), desk: desk)
        case .agentMessage(let desk, let pick, let skew):
            guard let (agent, conversation) = session(desk: desk, pick: pick) else { return }
            post(PostedMessage(conversation: conversation, from: .agent, agent: agent, sentAt: now + Milliseconds(-skew)), desk: desk)
        case .userMessage(let desk, let pick, let skew):
            guard let (_, conversation) = session(desk: desk, pick: pick) else { return }
            post(PostedMessage(conversation: conversation, from: .user, sentAt: now + Milliseconds(-skew)), desk: desk)
        case .sync(let desk, let agentIndex):
            send(.agentSync(agent: agent(agentIndex)), desk: desk)
        case .configure(let desk, let autoAccept, let ringMs, let inactivityMs, let warningMs):
            var patch = DeskSettingsPatch(ringMs: ringMs, autoAccept: autoAccept, inactivityMs: inactivityMs)
            if let warningMs, warningMs < (inactivityMs ?? oracle.desks[deskID(desk)]?.settings.inactivityMs ?? 0) {
                patch.warningMs = warningMs
            }
            send(.deskConfigure(patch), desk: desk)
        case .advance(let ms):
            try advance(to: now + ms)
        case .duplicateInbound:
            guard let message = lastInbound else { return }
            let effects = try handleRouter(.message(message))
            if effects.contains(where: { if case .publish = $0 { true } else { false } }) {
                throw oracle.violation("a redelivered \(message.body.type) (\(message.id)) had a second effect")
            }
        case .duplicateEvents:
            eventsToNotifier.append(contentsOf: lastEvents)
            eventsToCloser.append(contentsOf: lastEvents)
            let before = oracle
            try deliver()
            if before.desks.values.map(\.workstations) != oracle.desks.values.map(\.workstations) {
                throw oracle.violation("redelivered Router facts changed what workstations show")
            }
        case .restart(let service):
            do {
                switch service {
                case .router: try router.restart()
                case .notifier: try notifier.restart()
                case .closer: try closer.restart()
                }
            } catch {
                throw oracle.violation("\(service) snapshot failed to round-trip: \(error)")
            }
            // A restarted service wakes once to catch up with deadlines that passed while it was down.
            switch service {
            case .router: _ = try handleRouter(.tick)
            case .notifier: try handleNotifier(.tick)
            case .closer: try handleCloser(.tick)
            }
            try deliver()
        }
    }

    // MARK: The simulated broker

    private mutating func send(_ body: InboundBody, desk: Int) {
        messageCount += 1
        let message = InboundMessage(id: try! MessageID("m\(messageCount)"), desk: deskID(desk), at: now, body: body)
        routerInbox.append(message)
    }

    private mutating func accept(agent: AgentID, conversation: ConversationID, offer: OfferToken, desk: Int) {
        send(.offerAccept(agent: agent, conversation: conversation, offer: offer), desk: desk)
        pendingAccepts[routerInbox.last!.id] = offer
    }

    private mutating func post(_ message: PostedMessage, desk: Int) {
        messageCount += 1
        postsToCloser.append(InboundMessage(id: try! MessageID("m\(messageCount)"), desk: deskID(desk), at: now, body: .messagePosted(message)))
    }

    private mutating func settle() throws(Violation) {
        try deliver()
        try oracle.checkSettled(requested: requested)
    }

    /// Delivers until every queue is empty: the Router's inputs first, then its facts to the Notifier in
    /// order, and to the Closer interleaved at random with the chat messages (two queues race there).
    private mutating func deliver() throws(Violation) {
        while true {
            if !routerInbox.isEmpty {
                let message = routerInbox.removeFirst()
                lastInbound = message
                lastEvents = []
                _ = try handleRouter(.message(message))
                if pendingAccepts[message.id] != nil {
                    throw oracle.violation("accept \(message.id) got no answer")
                }
            } else if !eventsToNotifier.isEmpty {
                try handleNotifier(.routerEvent(eventsToNotifier.removeFirst()))
            } else if !eventsToCloser.isEmpty || !postsToCloser.isEmpty {
                let takePost = !postsToCloser.isEmpty && (eventsToCloser.isEmpty || Bool.random(using: &interleaving))
                if takePost {
                    let message = postsToCloser.removeFirst()
                    if case .messagePosted(let posted) = message.body { oracle.observePosted(posted, desk: message.desk) }
                    try handleCloser(.message(message))
                } else {
                    try handleCloser(.routerEvent(eventsToCloser.removeFirst()))
                }
            } else {
                return
            }
        }
    }

    private mutating func advance(to target: Instant) throws(Violation) {
        while true {
            let due = [router.wakeUp, notifier.wakeUp, closer.wakeUp].compactMap { $0 }.filter { $0 <= target }.min()
            guard let due else { break }
            now = max(now, due)
            if let at = router.wakeUp, at <= now { _ = try handleRouter(.tick) }
            try deliver()
            if let at = notifier.wakeUp, at <= now { try handleNotifier(.tick) }
            if let at = closer.wakeUp, at <= now { try handleCloser(.tick) }
            try deliver()
        }
        now = target
    }

    // MARK: Running the cores

    private mutating func handleRouter(_ input: RouterCore.Input) throws(Violation) -> [RouterCore.Effect] {
        let effects = router.live.handle(input, at: now)
        guard effects == router.twin.handle(input, at: now) else {
            throw oracle.violation("the restored Router diverged from its twin on \(input)")
        }
        router.wakeUp = nil
        for effect in effects {
            switch effect {
            case .publish(let event):
                if case .dropRouterEvents(let type) = fault, event.body.type == type { continue }
                try oracle.observe(event)
                try settleAccept(event)
                lastEvents.append(event)
                eventsToNotifier.append(event)
                eventsToCloser.append(event)
            case .deadLetter(let reason):
                if case .message(let message) = input, isValid(message) {
                    throw oracle.violation("valid \(message.body.type) dead-lettered: \(reason)")
                }
            case .wakeUp(let at):
                router.wakeUp = at
            }
        }
        return effects
    }

    private mutating func settleAccept(_ event: RouterEvent) throws(Violation) {
        let answered: MessageID?
        switch event.body {
        case .commandRejected(let rejection) where rejection.commandType == "offer.accept":
            answered = rejection.command
        case .conversationAssigned(_, _, _, let offer?, .accepted):
            answered = pendingAccepts.first { $0.value == offer }?.key
        default:
            answered = nil
        }
        guard let answered else {
            if case .conversationAssigned(let conversation, _, let agent, let offer?, .accepted) = event.body {
                throw oracle.violation("\(conversation) accepted by \(agent) with offer \(offer), but no accept of it awaited an answer")
            }
            return
        }
        guard pendingAccepts.removeValue(forKey: answered) != nil else {
            throw oracle.violation("accept \(answered) answered twice (\(event.body.type))")
        }
    }

    private mutating func handleNotifier(_ input: NotifierCore.Input) throws(Violation) {
        let effects = notifier.live.handle(input, at: now)
        guard effects == notifier.twin.handle(input, at: now) else {
            throw oracle.violation("the restored Notifier diverged from its twin on \(input)")
        }
        notifier.wakeUp = nil
        for effect in effects {
            switch effect {
            case .publish(let event): try oracle.observe(event)
            case .routerGap(let desk, let expected, let got):
                throw oracle.violation("Notifier saw a gap in \(desk)'s facts: expected \(expected), got \(got)")
            case .wakeUp(let at): notifier.wakeUp = at
            }
        }
    }

    private mutating func handleCloser(_ input: CloserCore.Input) throws(Violation) {
        let effects = closer.live.handle(input, at: now)
        guard effects == closer.twin.handle(input, at: now) else {
            throw oracle.violation("the restored Closer diverged from its twin on \(input)")
        }
        closer.wakeUp = nil
        for effect in effects {
            switch effect {
            case .publish(let message):
                try oracle.observe(message, at: now)
                if fault == .duplicateClosures { try oracle.observe(message, at: now) }
            case .send(let message):
                routerInbox.append(message)
            case .deadLetter(let reason):
                if case .message(let message) = input, isValid(message) {
                    throw oracle.violation("valid \(message.body.type) dead-lettered by the Closer: \(reason)")
                }
            case .wakeUp(let at):
                closer.wakeUp = at
            }
        }
    }

    /// Every message the simulation makes names a configured desk, so none may be dead-lettered.
    private func isValid(_ message: InboundMessage) -> Bool {
        Self.desks.prefix(generator.desks).contains(message.desk.rawValue)
    }

    // MARK: Naming

    private func deskID(_ index: Int) -> DeskID { try! DeskID(Self.desks[index % generator.desks]) }
    private func agent(_ index: Int) -> AgentID { try! AgentID("a\(index % generator.agentsPerDesk)") }

    private func groups(mask: Int) -> [GroupID] {
        (0..<generator.groups).filter { mask & (1 << $0) != 0 }.map { try! GroupID(Self.groups[$0]) }
    }

    private func liveRing(desk: Int, pick: Int) -> (AgentID, ConversationID, OfferToken)? {
        let stations = oracle.desks[deskID(desk)]?.workstations ?? [:]
        let rings = stations.flatMap { agent, station in station.rings.map { (agent, $0.key, $0.value) } }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        return rings.isEmpty ? nil : rings[pick % rings.count]
    }

    private func session(desk: Int, pick: Int) -> (AgentID, ConversationID)? {
        let stations = oracle.desks[deskID(desk)]?.workstations ?? [:]
        let sessions = stations.flatMap { agent, station in station.sessions.map { (agent, $0) } }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        return sessions.isEmpty ? nil : sessions[pick % sessions.count]
    }
}
