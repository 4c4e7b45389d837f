import HeapModule

/// Watches user inactivity in served conversations: when an agent's message stays unanswered for the desk's
/// `inactivityMs`, posts one closure message to the user and asks the Router to end the conversation.
///
/// The clock runs from the serving agent's latest message the user has not answered, ordered by `sentAt`
/// rather than by arrival, so races between queues do not matter. One value holds every desk of its shard.
/// The core is pure: the shell passes the time in and runs the returned effects in order.
public struct CloserCore: Codable, Sendable, Equatable {
    public enum Input: Hashable, Sendable {
        /// From `switchboard.in`; only `message.posted` is taken.
        case message(InboundMessage)
        case routerEvent(RouterEvent)
        /// A timer fired: every deadline at or before `now` is handled.
        case tick
    }

    public enum Effect: Hashable, Sendable {
        /// To `switchboard.outbound`.
        case publish(OutboundMessage)
        /// To `switchboard.in`: `conversation.ended` by `inactivity`, for the Router.
        case send(InboundMessage)
        /// The input is bad: a message type the Closer does not take, or an unknown desk.
        case deadLetter(reason: String)
        /// The earliest pending deadline after this step. Always last, present whenever a deadline is pending.
        case wakeUp(at: Instant)
    }

    public struct Limits: Codable, CoreLimits {
        /// Conversations whose messages arrived before their assignment, kept until it arrives.
        public var unassignedConversations: Int
        /// Ended or closed conversations remembered, so late messages are dropped and a conversation is
        /// closed at most once.
        public var endedConversations: Int

        public init(unassignedConversations: Int = 100_000, endedConversations: Int = 1_000_000) {
            self.unassignedConversations = unassignedConversations
            self.endedConversations = endedConversations
        }

        public static var described: [CoreLimitDescription<Self>] {
            [
                .init(
                    "unassignedConversations", \.unassignedConversations,
                    summary: "conversations a Closer shard keeps messages of while their assignment has not arrived"),
                .init(
                    "endedConversations", \.endedConversations,
                    summary: "ended conversations a Closer shard remembers, so late messages are dropped and each"
                        + " conversation is closed at most once"),
            ]
        }
    }

    /// What the core remembers at most.
    public private(set) var limits: Limits
    private var desks: [DeskConfig] = []
    /// Interning: per-conversation state names its desk by a small number instead of a string.
    private var deskNumbers: [DeskID: DeskNumber] = [:]
    private var served: [ConversationKey: ServedConversation] = [:]
    private var unassigned: BoundedRecall<ConversationKey, MessageClock>
    private var ended: BoundedRecall<ConversationKey, Ending>
    /// Derived from `served` (each conversation's `timerAt`), rebuilt on decode rather than stored. At most
    /// one live timer per conversation; entries that no longer match are skipped when they surface.
    private var timers = Heap<ClockTimer>()

    public init() {
        self.init(limits: Limits())
    }

    public init(limits: Limits) {
        self.limits = limits
        unassigned = BoundedRecall(limit: limits.unassignedConversations)
        ended = BoundedRecall(limit: limits.endedConversations)
    }

    /// Changes what the core remembers at most; a smaller limit forgets the oldest entries beyond it at once.
    /// Not an input a message can cause: the runtime journals a change, so every reader makes it at the same
    /// entry.
    public mutating func changeLimits(to limits: Limits) {
        self.limits = limits
        unassigned.changeLimit(to: limits.unassignedConversations)
        ended.changeLimit(to: limits.endedConversations)
    }

    /// Conversations being served, with or without a running clock.
    public var servedCount: Int { served.count }

    public mutating func handle(_ input: Input, at now: Instant) -> [Effect] {
        var effects: [Effect] = []
        switch input {
        case .message(let message):
            take(message, at: now, into: &effects)
        case .routerEvent(let event):
            apply(event)
        case .tick:
            fireTimers(at: now, into: &effects)
        }
        compactTimersIfMostlyStale()
        if let next = nextValidDeadline() {
            effects.append(.wakeUp(at: Instant(millisecondsSinceEpoch: next)))
        }
        return effects
    }

    // MARK: - Chat messages

    /// A message cannot have been sent after it arrived: a `sentAt` later than `now` (a sender's clock running
    /// ahead, or a wrong date) counts as sent now, so it can neither hold the clock stopped nor set a deadline
    /// beyond what it says.
    private mutating func take(_ message: InboundMessage, at now: Instant, into effects: inout [Effect]) {
        switch message.body {
        case .messagePosted(var posted):
            guard let desk = deskNumbers[message.desk] else {
                effects.append(.deadLetter(reason: "message.posted: unknown desk \(message.desk)"))
                return
            }
            posted.sentAt = min(posted.sentAt, now)
            record(posted, for: ConversationKey(desk: desk, conversation: posted.conversation))
        case .conversationRequested, .conversationEnded, .agentStatus, .offerAccept, .offerDecline, .sessionEnd,
             .sessionTransfer, .agentSync, .deskConfigure, .agentUpsert, .agentRemove:
            effects.append(.deadLetter(reason: "\(message.body.type): the Closer takes only message.posted"))
        }
    }

    private mutating func record(_ posted: PostedMessage, for key: ConversationKey) {
        if var conversation = served[key] {
            conversation.record(posted)
            arm(&conversation, key: key)
            served[key] = conversation
        } else if ended[key] == nil {
            unassigned.update(key, startingFrom: MessageClock()) { $0.record(posted, servedBy: .nobody) }
        }
    }

    // MARK: - Router facts

    /// The Closer is sent only some types of Router facts (`ServiceTopology.closerEventTypes`), so the desk's
    /// `seq` skips between them by design: it only drops facts already applied.
    private mutating func apply(_ event: RouterEvent) {
        let desk = deskNumber(for: event.desk)
        guard event.seq > desks[Int(desk)].lastRouterSeq else { return }
        desks[Int(desk)].lastRouterSeq = event.seq
        switch event.body {
        case .deskConfigured(let settings):
            let before = desks[Int(desk)]
            desks[Int(desk)].apply(settings)
            if before.inactivityMs != settings.inactivityMs || before.warningMs != settings.warningMs {
                rearmAll(in: desk)
            }
        case .conversationAssigned(let conversation, let user, let agent, _, let mode):
            assign(ConversationKey(desk: desk, conversation: conversation), user: user, agent: agent, mode: mode)
        case .conversationQueued(let conversation, _, _, let reason):
            requeue(ConversationKey(desk: desk, conversation: conversation), reason: reason)
        case .conversationEnded(let conversation, _, _):
            let key = ConversationKey(desk: desk, conversation: conversation)
            served[key] = nil
            unassigned.remove(key)
            if ended[key] == nil {
                ended.update(key, startingFrom: .endedByRouter) { _ in }
            }
        case .agentChanged, .offerMade, .offerExpired, .offerDeclined, .offerWithdrawn, .commandRejected,
             .agentState:
            break
        }
    }

    /// A conversation's message times are kept for its whole life, so that a later message with an earlier
    /// `sentAt` never moves the clock back. A handover to another agent (a transfer, directly or through the
    /// queue, or a re-queue after the agent was removed) counts as an answer to the messages before it: the
    /// next agent starts with no running clock. Only `sentAt` times are compared, never the Router's clock.
    ///
    /// Chat messages and Router facts come through different queues, so a handover and the messages around
    /// it arrive in any order. A message that names an agent who does not serve the conversation here is held
    /// (see `MessageClock.held`): the next agent's, written before its assignment arrived, starts the clock
    /// once it does. One of the agent who handed the conversation over last (`MessageClock.formerAgent`),
    /// arriving after the handover, was written before it and never does, even if the conversation comes
    /// back to that agent.
    private mutating func assign(_ key: ConversationKey, user: UserID, agent: AgentID, mode: AssignMode) {
        switch ended[key] {
        case .closedByInactivity:
            return
        case .endedByRouter:
            ended.remove(key)
        case nil:
            break
        }
        var conversation = served[key]
            ?? ServedConversation(user: user, agent: nil, clock: unassigned.remove(key) ?? MessageClock())
        conversation.user = user
        switch mode {
        case .transferred:
            conversation.clock.answerAgentMessages(handedOverBy: conversation.agent)
        case .accepted, .autoAccepted:
            break
        }
        conversation.serve(by: agent)
        arm(&conversation, key: key)
        served[key] = conversation
    }

    /// Not served while queued, so no clock runs; the message times wait with any early messages for the
    /// next assignment.
    private mutating func requeue(_ key: ConversationKey, reason: QueueReason) {
        guard let conversation = served.removeValue(forKey: key) else { return }
        var clock = conversation.clock
        switch reason {
        case .transferred, .agentRemoved:
            clock.answerAgentMessages(handedOverBy: conversation.agent)
        case .noAgent, .attemptsExhausted:
            break
        }
        unassigned.update(key, startingFrom: clock) { $0.merge(clock) }
    }

    // MARK: - Timers

    /// Due actions run in order of their own time (then desk and conversation): a timer that fired early,
    /// because the clock moved later after it was set, is put back at the action's time first.
    private mutating func fireTimers(at now: Instant, into effects: inout [Effect]) {
        let nowMs = now.millisecondsSinceEpoch
        while let timer = timers.min, timer.at <= nowMs {
            _ = timers.popMin()
            guard var conversation = served[timer.key], conversation.timerAt == timer.at else { continue }
            conversation.timerAt = ServedConversation.noTimer
            let desk = desks[Int(timer.key.desk)]
            guard let deadline = desk.deadline(of: conversation),
                  let agentMessageAt = conversation.clock.unansweredAgentMessageAt
            else {
                served[timer.key] = conversation
                continue
            }
            if desk.nextAction(of: conversation, deadline: deadline) > timer.at {
                arm(&conversation, key: timer.key)
                served[timer.key] = conversation
                continue
            }
            if nowMs >= deadline {
                close(timer.key, conversation, desk: desk, at: now, into: &effects)
                continue
            }
            conversation.warned = true
            effects.append(.publish(OutboundMessage(desk: desk.id, at: now, body: .inactivityWarning(
                conversation: timer.key.conversation, user: conversation.user, text: desk.warningText,
                idempotencyKey: "warning:\(timer.key.conversation):\(agentMessageAt)"))))
            arm(&conversation, key: timer.key)
            served[timer.key] = conversation
        }
    }

    private mutating func close(
        _ key: ConversationKey, _ conversation: ServedConversation, desk: DeskConfig, at now: Instant,
        into effects: inout [Effect]
    ) {
        served[key] = nil
        ended.remove(key)
        ended.update(key, startingFrom: .closedByInactivity) { _ in }
        effects.append(.publish(OutboundMessage(desk: desk.id, at: now, body: .closureMessage(
            conversation: key.conversation, user: conversation.user, text: desk.closureText,
            idempotencyKey: "closure:\(key.conversation)"))))
        effects.append(.send(InboundMessage(
            id: Self.inactivityEndID(desk: desk.id, conversation: key.conversation), desk: desk.id, at: now,
            body: .conversationEnded(conversation: key.conversation, by: .inactivity))))
    }

    /// `inactivity:<desk>:<conversation>`: the same for every retry, so the Router drops duplicates. `:` cannot
    /// occur in identifiers, so the id is unambiguous. When both identifiers are long the desk is replaced by
    /// its FNV-1a hash to stay within the 128 characters of a message id.
    static func inactivityEndID(desk: DeskID, conversation: ConversationID) -> MessageID {
        let plain = "inactivity:\(desk):\(conversation)"
        let text = plain.utf8.count <= 128 ? plain : "inactivity:\(fnv1a64Hex(desk.rawValue)):\(conversation)"
        // Identifiers are 1 to 64 characters of [A-Za-z0-9_-], so `text` is at most 128 printable characters.
        return try! MessageID(text)
    }

    private static func fnv1a64Hex(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Schedules the conversation's next action (warning or close) unless an earlier timer is already set,
    /// which re-evaluates when it fires. A timer whose clock was stopped by a reply is left to fire and find
    /// nothing to do: keeping it means a chatty conversation costs one timer, not one per exchange, at the
    /// price of a wake-up with nothing due.
    private mutating func arm(_ conversation: inout ServedConversation, key: ConversationKey) {
        let desk = desks[Int(key.desk)]
        guard let deadline = desk.deadline(of: conversation) else { return }
        let next = desk.nextAction(of: conversation, deadline: deadline)
        guard next < conversation.timerAt else { return }
        conversation.timerAt = next
        timers.insert(ClockTimer(at: next, key: key))
    }

    /// After a settings change a deadline may move earlier; a rare admin action, so one pass is fine.
    private mutating func rearmAll(in desk: DeskNumber) {
        for key in served.keys.filter({ $0.desk == desk }) {
            guard var conversation = served[key] else { continue }
            arm(&conversation, key: key)
            served[key] = conversation
        }
    }

    /// Drops surfaced timers that no longer match a conversation, so the answer depends only on `served`
    /// (and is the same after a snapshot restore).
    private mutating func nextValidDeadline() -> Int64? {
        while let timer = timers.min {
            if served[timer.key]?.timerAt == timer.at { return timer.at }
            _ = timers.popMin()
        }
        return nil
    }

    /// Timers of ended or answered conversations stay in the heap until they surface; rebuilding once they
    /// outnumber live conversations keeps memory proportional to what is tracked.
    private mutating func compactTimersIfMostlyStale() {
        guard timers.count > 2 * served.count + 1_024 else { return }
        rebuildTimers()
    }

    private mutating func rebuildTimers() {
        timers = Heap(served.compactMap { key, conversation in
            conversation.timerAt == ServedConversation.noTimer ? nil : ClockTimer(at: conversation.timerAt, key: key)
        })
    }

    /// A desk first seen through any Router fact starts with default settings: the Router only speaks of
    /// desks that exist, even if this shard missed their `desk.configured`.
    private mutating func deskNumber(for id: DeskID) -> DeskNumber {
        if let number = deskNumbers[id] { return number }
        let number = DeskNumber(desks.count)
        desks.append(DeskConfig(id: id))
        deskNumbers[id] = number
        return number
    }

    // MARK: - Snapshot

    private enum CodingKeys: String, CodingKey {
        case limits, desks, served, unassigned, ended
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        limits = try container.decode(Limits.self, forKey: .limits)
        desks = try container.decode([DeskConfig].self, forKey: .desks)
        served = try container.decode(ServedColumns.self, forKey: .served).servedConversations()
        unassigned = try BoundedRecall(
            restoring: container.decode(BoundedRecall<ConversationKey, MessageClock>.Snapshot.self, forKey: .unassigned))
        ended = try BoundedRecall(
            restoring: container.decode(BoundedRecall<ConversationKey, Ending>.Snapshot.self, forKey: .ended))
        deskNumbers = Dictionary(uniqueKeysWithValues: desks.enumerated().map { ($1.id, DeskNumber($0)) })
        rebuildTimers()
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(limits, forKey: .limits)
        try container.encode(desks, forKey: .desks)
        try container.encode(ServedColumns(served), forKey: .served)
        try container.encode(unassigned.snapshot(), forKey: .unassigned)
        try container.encode(ended.snapshot(), forKey: .ended)
    }

    /// Equal when the tracked state is: the timer heap and the desk lookup are indexes over it.
    public static func == (lhs: CloserCore, rhs: CloserCore) -> Bool {
        lhs.limits == rhs.limits && lhs.desks == rhs.desks && lhs.served == rhs.served
            && lhs.unassigned == rhs.unassigned && lhs.ended == rhs.ended
    }
}

// MARK: - State

extension CloserCore {
    typealias DeskNumber = UInt32

    struct DeskConfig: Codable, Sendable, Equatable {
        var id: DeskID
        var lastRouterSeq: UInt64 = 0
        var inactivityMs: Milliseconds = DeskSettings.defaults.inactivityMs
        var warningMs: Milliseconds = DeskSettings.defaults.warningMs
        var closureText: String = DeskSettings.defaults.closureText
        var warningText: String = DeskSettings.defaults.warningText

        init(id: DeskID) {
            self.id = id
        }

        mutating func apply(_ settings: DeskSettings) {
            inactivityMs = settings.inactivityMs
            warningMs = settings.warningMs
            closureText = settings.closureText
            warningText = settings.warningText
        }

        /// When the conversation closes if the user stays silent; `nil` when no clock runs.
        func deadline(of conversation: ServedConversation) -> Int64? {
            guard inactivityMs > 0, let since = conversation.clock.unansweredAgentMessageAt else { return nil }
            return since + inactivityMs
        }

        /// The warning time while the warning is still to be sent, else the deadline.
        func nextAction(of conversation: ServedConversation, deadline: Int64) -> Int64 {
            warningMs > 0 && !conversation.warned ? deadline - warningMs : deadline
        }
    }

    /// A conversation within its desk. The desk is a number to keep a million of these small.
    struct ConversationKey: Hashable, Codable, Sendable, Comparable {
        var desk: DeskNumber
        var conversation: ConversationID

        static func < (lhs: ConversationKey, rhs: ConversationKey) -> Bool {
            lhs.desk != rhs.desk ? lhs.desk < rhs.desk : lhs.conversation < rhs.conversation
        }
    }

    /// Who serves a conversation, as far as its clock is concerned.
    enum Server {
        /// Queued, or not assigned yet: a message naming an agent is held.
        case nobody
        /// Only this agent's messages (and those naming none) count; others are held.
        case agent(AgentID)
        /// Served, by an agent a snapshot of an older version did not record: every agent message counts.
        case unknown
    }

    /// A message by an agent who did not serve the conversation when it arrived.
    struct HeldMessage: Hashable, Codable, Sendable {
        var agent: AgentID
        var sentAt: Int64
    }

    /// The latest `sentAt` of each side, in milliseconds since the epoch (`Int64.min`: none yet).
    struct MessageClock: Hashable, Codable, Sendable {
        var lastAgentMessageAt: Int64 = .min
        var lastUserMessageAt: Int64 = .min
        /// The latest message (by `sentAt`) naming an agent who does not serve the conversation, until the next
        /// assignment: counted if it goes to that agent (who wrote before its assignment arrived here), dropped
        /// otherwise.
        var held: HeldMessage?
        /// The agent who handed the conversation over last: its messages that arrive while it does not serve
        /// the conversation were written before the handover, which answered them.
        var formerAgent: AgentID?

        /// A user message sent at or after the agent's latest answers it.
        var unansweredAgentMessageAt: Int64? {
            lastAgentMessageAt > lastUserMessageAt ? lastAgentMessageAt : nil
        }

        mutating func record(_ posted: PostedMessage, servedBy server: Server) {
            let sentAt = posted.sentAt.millisecondsSinceEpoch
            switch (posted.from, posted.agent, server) {
            case (.user, _, _):
                lastUserMessageAt = max(lastUserMessageAt, sentAt)
            case (.agent, nil, _), (.agent, _, .unknown):
                lastAgentMessageAt = max(lastAgentMessageAt, sentAt)
            case (.agent, let author?, .agent(let serving)) where author == serving:
                lastAgentMessageAt = max(lastAgentMessageAt, sentAt)
            case (.agent, let author?, .agent), (.agent, let author?, .nobody):
                if author != formerAgent, sentAt >= held?.sentAt ?? .min {
                    held = HeldMessage(agent: author, sentAt: sentAt)
                }
            }
        }

        /// At an assignment to `agent`, after any handover's answer: its held message counts, any other is
        /// dropped.
        mutating func release(to agent: AgentID) {
            if let held, held.agent == agent {
                lastAgentMessageAt = max(lastAgentMessageAt, held.sentAt)
            }
            held = nil
        }

        /// A handover by `agent` (`nil`: not known) stops the clock as a user reply would, without inventing a
        /// user message time later than any seen, and answers that agent's messages still to arrive.
        mutating func answerAgentMessages(handedOverBy agent: AgentID?) {
            lastUserMessageAt = max(lastUserMessageAt, lastAgentMessageAt)
            guard let agent else { return }
            formerAgent = agent
            if held?.agent == agent { held = nil }
        }

        mutating func merge(_ other: MessageClock) {
            lastAgentMessageAt = max(lastAgentMessageAt, other.lastAgentMessageAt)
            lastUserMessageAt = max(lastUserMessageAt, other.lastUserMessageAt)
            if let otherHeld = other.held, otherHeld.sentAt >= held?.sentAt ?? .min {
                held = otherHeld
            }
            formerAgent = other.formerAgent ?? formerAgent
        }
    }

    struct ServedConversation: Hashable, Codable, Sendable {
        static let noTimer = Int64.max

        var user: UserID
        /// `nil` only when restored from a snapshot of an older version, which did not record it.
        var agent: AgentID?
        var clock: MessageClock
        /// When this conversation's live timer fires (`noTimer`: none).
        var timerAt: Int64 = noTimer
        /// Whether the warning for the current unanswered agent message was sent.
        var warned = false

        init(user: UserID, agent: AgentID?, clock: MessageClock) {
            self.user = user
            self.agent = agent
            self.clock = clock
        }

        mutating func record(_ posted: PostedMessage) {
            let before = clock.lastAgentMessageAt
            clock.record(posted, servedBy: agent.map(Server.agent) ?? .unknown)
            if clock.lastAgentMessageAt != before {
                warned = false
            }
        }

        /// Now served by `agent`: a message it wrote before this assignment arrived starts its clock.
        mutating func serve(by agent: AgentID) {
            self.agent = agent
            let before = clock.lastAgentMessageAt
            clock.release(to: agent)
            if clock.lastAgentMessageAt != before {
                warned = false
            }
        }
    }

    /// Served conversations column by column: a snapshot of a million encodes and decodes several times
    /// faster than with one keyed object per conversation. The optional columns are absent from snapshots of
    /// older versions; `held` and `formerAgents` name only the rows that have one.
    struct ServedColumns: Codable {
        var desks: [DeskNumber] = []
        var conversations: [ConversationID] = []
        var users: [UserID] = []
        var agents: [AgentID?]? = []
        var lastAgentMessageAt: [Int64] = []
        var lastUserMessageAt: [Int64] = []
        var held: [Sparse<HeldMessage>]? = []
        var formerAgents: [Sparse<AgentID>]? = []
        var timerAt: [Int64] = []
        var warned: [Bool] = []

        /// The value of one row of a column most rows have none of.
        struct Sparse<Value: Codable>: Codable {
            var row: Int
            var value: Value
        }

        init(_ served: [ConversationKey: ServedConversation]) {
            for (row, (key, conversation)) in served.enumerated() {
                desks.append(key.desk)
                conversations.append(key.conversation)
                users.append(conversation.user)
                agents?.append(conversation.agent)
                lastAgentMessageAt.append(conversation.clock.lastAgentMessageAt)
                lastUserMessageAt.append(conversation.clock.lastUserMessageAt)
                if let message = conversation.clock.held { held?.append(Sparse(row: row, value: message)) }
                if let agent = conversation.clock.formerAgent { formerAgents?.append(Sparse(row: row, value: agent)) }
                timerAt.append(conversation.timerAt)
                warned.append(conversation.warned)
            }
        }

        func servedConversations() throws -> [ConversationKey: ServedConversation] {
            let count = desks.count
            let agents = agents ?? Array(repeating: nil, count: count)
            guard [conversations.count, users.count, agents.count, lastAgentMessageAt.count,
                   lastUserMessageAt.count, timerAt.count, warned.count].allSatisfy({ $0 == count })
            else {
                throw DecodingError.dataCorrupted(DecodingError.Context(
                    codingPath: [], debugDescription: "served conversation columns differ in length"))
            }
            let held = try Self.rows(held ?? [], count: count)
            let formerAgents = try Self.rows(formerAgents ?? [], count: count)
            var served: [ConversationKey: ServedConversation] = [:]
            served.reserveCapacity(count)
            for index in 0..<count {
                var conversation = ServedConversation(
                    user: users[index],
                    agent: agents[index],
                    clock: MessageClock(
                        lastAgentMessageAt: lastAgentMessageAt[index], lastUserMessageAt: lastUserMessageAt[index],
                        held: held[index], formerAgent: formerAgents[index]))
                conversation.timerAt = timerAt[index]
                conversation.warned = warned[index]
                served[ConversationKey(desk: desks[index], conversation: conversations[index])] = conversation
            }
            return served
        }

        private static func rows<Value>(_ sparse: [Sparse<Value>], count: Int) throws -> [Value?] {
            var column = [Value?](repeating: nil, count: count)
            for entry in sparse {
                guard column.indices.contains(entry.row) else {
                    throw DecodingError.dataCorrupted(DecodingError.Context(
                        codingPath: [], debugDescription: "a served conversation column names row \(entry.row) of \(count)"))
                }
                column[entry.row] = entry.value
            }
            return column
        }
    }

    enum Ending: String, Hashable, Codable, Sendable {
        case endedByRouter
        /// Closed here: never tracked again, so at most one closure message per conversation.
        case closedByInactivity
    }

    /// Ordered by time, then desk number and conversation, so that timers due together fire in the same
    /// order in every process and after every restore.
    struct ClockTimer: Comparable, Sendable {
        var at: Int64
        var key: ConversationKey

        static func < (lhs: ClockTimer, rhs: ClockTimer) -> Bool {
            lhs.at != rhs.at ? lhs.at < rhs.at : lhs.key < rhs.key
        }
    }
}

/// `<desk number> <conversation>`, for snapshots.
extension CloserCore.ConversationKey: SnapshotLine {
    var snapshotLine: String { "\(desk) \(conversation.rawValue)" }

    init(snapshotLine: String) throws {
        let parts = snapshotLine.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let desk = CloserCore.DeskNumber(parts[0]) else {
            throw SnapshotLineError(expected: "a desk number and a conversation id", line: snapshotLine)
        }
        self.init(desk: desk, conversation: try ConversationID(String(parts[1])))
    }
}
