import Foundation
import Histogram
import SwitchboardAMQP
import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime

/// What a simulated conversation is there to measure.
enum ConversationKind: Sendable {
    /// request → ring → accept → agent, user, agent message → End Session.
    case lifecycle
    /// The first ring is left to expire; the next ring is accepted, then End Session.
    case ringExpiry
    /// Accepted; the agent writes once and the user stays silent until the inactivity close.
    case inactivity
}

/// The users and agents of the benchmark, and what they measured. Deliveries come in from the
/// workstation and outbound queues; every reply is published on its own task, so a slow confirm never
/// holds up the next delivery.
actor Players {
    struct Conversation {
        var kind: ConversationKind
        var desk: DeskID
        var user: UserID
        /// When the request was due: in a paced phase its place in the schedule, so a generator that falls
        /// behind counts its own lateness instead of hiding it.
        var requestedAt: ContinuousClock.Instant
        /// The same moment on the wall clock, which the services' times are on.
        var requestedAtWall: Instant
        var rang = false
        var firstExpiry: Instant?
    }

    let desks: BenchDesks
    private let publisher: AMQPPublisher
    /// The broker user of the publishing connection, sent as `user_id`: the Router takes agent commands
    /// only from a user allowed for their desk.
    private let brokerUser: String
    private let runPrefix = "lb\(UInt32.random(in: 0...UInt32.max))-"
    private var nextNumber = 0
    private var nextLoadDesk = 0
    private var open: [ConversationID: Conversation] = [:]
    /// When each inactivity conversation's closure is due. Kept apart from `open`: its closure message and its
    /// `session.ended` come through different queues, in either order.
    private var closuresDue: [ConversationID: Instant] = [:]

    /// While set, each finished lifecycle conversation is replaced by a new one (closed loop).
    private var keepConcurrency = false
    private(set) var lifecycleCompletions: [ContinuousClock.Instant] = []
    private(set) var inputsPublished = 0
    private(set) var publishFailures = 0
    private(set) var bodyBytes = 0
    private(set) var bodies = 0
    private(set) var requestToRing = Players.histogram()
    private(set) var requestToRingLegs = RingLegs()
    private(set) var expiryToNextRing = Players.histogram()
    private(set) var expiryToNextRingLegs = RingLegs()
    private(set) var inactivityToClosure = Players.histogram()

    init(desks: BenchDesks, publisher: AMQPPublisher, brokerUser: String) {
        self.desks = desks
        self.publisher = publisher
        self.brokerUser = brokerUser
    }

    /// Microseconds, up to ten minutes.
    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    }

    /// Conversations not yet ended, and closure messages not yet received.
    var openCount: Int { open.count + closuresDue.count }

    func resetRequestToRing() {
        requestToRing = Self.histogram()
        requestToRingLegs = RingLegs()
    }

    func setKeepConcurrency(_ keep: Bool) { keepConcurrency = keep }

    func clearCompletions() { lifecycleCompletions.removeAll(keepingCapacity: true) }

    // MARK: Users

    /// Starts a conversation that was due at `scheduledAt` (now, if not given).
    func start(_ kind: ConversationKind, scheduledAt: ContinuousClock.Instant? = nil) {
        nextNumber += 1
        let desk: DeskID
        switch kind {
        case .lifecycle:
            desk = desks.load[nextLoadDesk % desks.load.count]
            nextLoadDesk += 1
        case .ringExpiry: desk = desks.ringExpiry
        case .inactivity: desk = desks.inactivity
        }
        let conversation = try! ConversationID("\(runPrefix)\(nextNumber)")
        let user = try! UserID("u\(nextNumber)")
        let now = ContinuousClock.now
        let due = min(scheduledAt ?? now, now)
        let lateMilliseconds = Milliseconds((now - due) / .milliseconds(1))
        open[conversation] = Conversation(
            kind: kind, desk: desk, user: user, requestedAt: due, requestedAtWall: WallClock.now() + (-lateMilliseconds))
        send(desk: desk, [.conversationRequested(ConversationRequest(conversation: conversation, user: user))])
    }

    // MARK: What arrives

    func onWorkstationEvent(_ event: WorkstationEvent, bodyBytes size: Int) {
        bodyBytes += size
        bodies += 1
        switch event.body {
        case .ring(let conversation, _, let offer, let expiresAt, _, let serverTime):
            onRing(conversation, offer: offer, expiresAt: expiresAt, serverTime: serverTime, agent: event.agent)
        case .sessionStarted(let conversation, _, _):
            onSessionStarted(conversation, agent: event.agent)
        case .sessionEnded(let conversation, _):
            onSessionEnded(conversation)
        case .countdown, .ringStopped, .statusChanged, .commandRejected, .state:
            break
        }
    }

    func onOutbound(_ message: OutboundMessage, bodyBytes size: Int) {
        bodyBytes += size
        bodies += 1
        switch message.body {
        case .closureMessage(let conversation, _, _, _):
            guard let due = closuresDue.removeValue(forKey: conversation) else { return }
            Self.recordLateness(since: due, in: &inactivityToClosure)
        case .inactivityWarning:
            break
        }
    }

    private func onRing(
        _ conversation: ConversationID, offer: OfferToken, expiresAt: Instant, serverTime: Instant, agent: AgentID
    ) {
        guard var entry = open[conversation] else { return }
        let accept = InboundBody.offerAccept(agent: agent, conversation: conversation, offer: offer)
        switch entry.kind {
        case .lifecycle, .inactivity:
            // Request→ring is the lifecycle desks' measure; an inactivity conversation's ring is only answered.
            if !entry.rang && entry.kind == .lifecycle {
                let waited = ContinuousClock.now - entry.requestedAt
                _ = requestToRing.record(UInt64(max(0, waited / .microseconds(1))))
                requestToRingLegs.record(
                    startedAt: entry.requestedAtWall, expiresAt: expiresAt, ringMs: desks.ringMs(of: entry.desk),
                    serverTime: serverTime, receivedAt: WallClock.now())
            }
            entry.rang = true
            open[conversation] = entry
            send(desk: entry.desk, [accept])
        case .ringExpiry:
            if let firstExpiry = entry.firstExpiry {
                let receivedAt = WallClock.now()
                Self.recordLateness(since: firstExpiry, in: &expiryToNextRing)
                expiryToNextRingLegs.record(
                    startedAt: firstExpiry, expiresAt: expiresAt, ringMs: desks.ringMs(of: entry.desk),
                    serverTime: serverTime, receivedAt: receivedAt)
                send(desk: entry.desk, [accept])
            } else {
                entry.firstExpiry = expiresAt
                open[conversation] = entry
            }
        }
    }

    private func onSessionStarted(_ conversation: ConversationID, agent: AgentID) {
        guard let entry = open[conversation] else { return }
        let end = InboundBody.sessionEnd(agent: agent, conversation: conversation)
        switch entry.kind {
        case .lifecycle:
            send(
                desk: entry.desk,
                [
                    post(conversation, from: .agent, agent: agent), post(conversation, from: .user, agent: nil),
                    post(conversation, from: .agent, agent: agent), end,
                ])
        case .ringExpiry:
            send(desk: entry.desk, [end])
        case .inactivity:
            let sentAt = WallClock.now()
            closuresDue[conversation] = sentAt + desks.inactivityMs
            let posted = PostedMessage(conversation: conversation, from: .agent, agent: agent, sentAt: sentAt)
            send(desk: entry.desk, [.messagePosted(posted)])
        }
    }

    private func onSessionEnded(_ conversation: ConversationID) {
        guard let entry = open.removeValue(forKey: conversation) else { return }
        switch entry.kind {
        case .lifecycle:
            lifecycleCompletions.append(.now)
            if keepConcurrency { start(.lifecycle) }
        case .ringExpiry, .inactivity:
            break
        }
    }

    // MARK: Publishing

    private func post(_ conversation: ConversationID, from author: MessageAuthor, agent: AgentID?) -> InboundBody {
        .messagePosted(PostedMessage(conversation: conversation, from: author, agent: agent, sentAt: WallClock.now()))
    }

    /// Publishes `bodies` one after the other (each confirmed before the next), on a task of its own, which it
    /// returns: what must reach the broker before anything else is published (a desk's set-up) waits for it.
    @discardableResult
    func send(desk: DeskID, _ bodies: [InboundBody]) -> Task<Void, Never> {
        let messages = bodies.map { body in
            try! WireCodec.outgoing(
                InboundMessage(id: try! MessageID(UUID().uuidString.lowercased()), desk: desk, at: WallClock.now(), body: body)
            ).publishedAs(brokerUser)
        }
        inputsPublished += messages.count
        for message in messages {
            bodyBytes += message.body.count
            self.bodies += 1
        }
        return Task { [publisher] in
            do {
                for message in messages { try await publisher.publish(message) }
            } catch {
                self.countPublishFailure(error)
            }
        }
    }

    private func countPublishFailure(_ error: any Error) {
        if publishFailures == 0 {
            FileHandle.standardError.write(Data("switchboard-loadbench: a publish failed: \(error)\n".utf8))
        }
        publishFailures += 1
    }

    static func record(milliseconds: Milliseconds, in histogram: inout Histogram<UInt64>) {
        _ = histogram.record(UInt64(max(0, milliseconds)) * 1_000)
    }

    /// How long after `due` (a service's deadline, to the millisecond) this moment is, to the microsecond: the
    /// wall clock read in whole milliseconds would take up to one off every sample.
    static func recordLateness(since due: Instant, in histogram: inout Histogram<UInt64>) {
        let nowMicroseconds = Date().timeIntervalSince1970 * 1e6
        let late = nowMicroseconds - Double(due.millisecondsSinceEpoch) * 1e3
        _ = histogram.record(UInt64(max(0, late)))
    }
}
