import DequeModule
import Foundation
import SwitchboardCommon

// The cores' benchmark (`make bench`, core part). Release build only; prints a table and writes
// bench-results/core.json and bench-results/core.md. Rates are per second of the measuring thread's CPU time.
//
// Router: inputs/s in a steady state where every input does real routing work: an agent ends a session,
// which frees it and makes an offer to the head of a long waiting queue; the agent accepts; a new
// conversation joins the queue. Measured per routing policy with 10,000 agents and 100,000 waiting, and at
// 10x smaller and larger sizes to show how the cost grows.
// Closer: resident bytes per tracked conversation, and inputs/s, with 1,000,000 tracked conversations.

let start = Instant(millisecondsSinceEpoch: 1_795_000_000_000)
let desk = try DeskID("bench")
let group = try GroupID("support")

func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = statm.split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// CPU time of the calling thread: "inputs/s on one core" is about the work done, and on a shared,
/// noisy machine the thread's CPU time is far steadier than the wall clock.
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let begin = threadCPUSeconds()
    try body()
    return threadCPUSeconds() - begin
}

/// Builds inputs with ids from counters, so the loop spends its time in the core, not in formatting.
struct Inputs {
    var messageCount = 0
    var now = start

    mutating func message(_ body: InboundBody) -> InboundMessage {
        messageCount += 1
        now = now + 1
        return InboundMessage(id: try! MessageID("m\(messageCount)"), desk: desk, at: now, body: body)
    }
}

/// The offers among the Router's effects: which conversation rings which agent, with which token.
func offersMade(in effects: [RouterCore.Effect]) -> [(conversation: ConversationID, agent: AgentID, offer: OfferToken)] {
    effects.compactMap { effect in
        guard case .publish(let event) = effect, case .offerMade(let conversation, _, let agent, let offer, _, _, _) = event.body
        else { return nil }
        return (conversation, agent, offer)
    }
}

struct RouterResult: Codable {
    var policy: String
    var agents: Int
    var waiting: Int
    var inputs: Int
    var inputsPerSecond: Double
    var nanosecondsPerInput: Double
}

func benchRouter(policy: RoutingPolicy, agents agentCount: Int, waiting: Int, cycles: Int) throws -> RouterResult {
    var router = RouterCore()
    var inputs = Inputs()
    _ = router.handle(.message(inputs.message(.deskConfigure(DeskSettingsPatch(ringMs: 30_000, routing: policy)))), at: inputs.now)
    let agents = try (0..<agentCount).map { try AgentID("a\($0)") }
    for agent in agents {
        _ = router.handle(.message(inputs.message(.agentUpsert(AgentProfile(agent: agent, groups: [group], capacity: 1)))), at: inputs.now)
        _ = router.handle(.message(inputs.message(.agentStatus(agent: agent, status: .online))), at: inputs.now)
    }
    var serving = Deque<(AgentID, ConversationID)>()
    var conversationCount = 0
    func nextConversation() throws -> ConversationRequest {
        conversationCount += 1
        return ConversationRequest(conversation: try ConversationID("c\(conversationCount)"), user: try UserID("u\(conversationCount)"), group: group)
    }
    func acceptOffers(in effects: [RouterCore.Effect]) {
        for (conversation, agent, offer) in offersMade(in: effects) {
            _ = router.handle(.message(inputs.message(.offerAccept(agent: agent, conversation: conversation, offer: offer))), at: inputs.now)
            serving.append((agent, conversation))
        }
    }
    for _ in 0..<(agentCount + waiting) {
        let effects = router.handle(.message(inputs.message(.conversationRequested(try nextConversation()))), at: inputs.now)
        acceptOffers(in: effects)
    }
    precondition(serving.count == agentCount, "every agent serves one conversation before the measurement")

    // Pre-build what does not depend on the Router's answers, so the timed loop measures the Router.
    let requests = try (0..<cycles).map { _ in inputs.message(.conversationRequested(try nextConversation())) }
    var handled = 0
    let elapsed = seconds {
        for request in requests {
            let (agent, conversation) = serving.removeFirst()
            let effects = router.handle(.message(inputs.message(.sessionEnd(agent: agent, conversation: conversation))), at: inputs.now)
            acceptOffers(in: effects)
            _ = router.handle(.message(request), at: inputs.now)
            handled += 3
        }
    }
    precondition(serving.count == agentCount, "each freed agent was offered and accepted the head of the queue")
    return RouterResult(
        policy: policy.rawValue, agents: agentCount, waiting: waiting, inputs: handled,
        inputsPerSecond: Double(handled) / elapsed, nanosecondsPerInput: elapsed * 1e9 / Double(handled))
}

struct CloserResult: Codable {
    var tracked: Int
    var residentBytesPerConversation: Double
    var inputs: Int
    var inputsPerSecond: Double
}

func benchCloser(tracked: Int, inputsToTime: Int) throws -> CloserResult {
    var closer = CloserCore()
    var now = start
    var seq: UInt64 = 1
    var settings = DeskSettings.defaults
    settings.inactivityMs = 3_600_000
    _ = closer.handle(.routerEvent(RouterEvent(desk: desk, seq: seq, at: now, body: .deskConfigured(settings: settings))), at: now)
    let agent = try AgentID("a1")
    let before = residentBytes()
    for index in 0..<tracked {
        seq += 1
        now = now + 1
        let conversation = try ConversationID("c\(index)")
        _ = closer.handle(.routerEvent(RouterEvent(
            desk: desk, seq: seq, at: now,
            body: .conversationAssigned(conversation: conversation, user: try UserID("u\(index)"), agent: agent, offer: nil, mode: .autoAccepted))), at: now)
        _ = closer.handle(.message(InboundMessage(
            id: try MessageID("p\(index)"), desk: desk, at: now,
            body: .messagePosted(PostedMessage(conversation: conversation, from: .agent, agent: agent, sentAt: now)))), at: now)
    }
    let perConversation = Double(residentBytes() - before) / Double(tracked)
    precondition(closer.servedCount == tracked)

    var random = SystemRandomNumberGenerator()
    let messages = try (0..<inputsToTime).map { index in
        let author: MessageAuthor = index % 2 == 0 ? .user : .agent
        return InboundMessage(
            id: try MessageID("q\(index)"), desk: desk, at: now,
            body: .messagePosted(PostedMessage(
                conversation: try ConversationID("c\(Int.random(in: 0..<tracked, using: &random))"), from: author,
                agent: author == .agent ? agent : nil, sentAt: now + Milliseconds(index))))
    }
    let elapsed = seconds {
        for message in messages {
            _ = closer.handle(.message(message), at: now)
        }
    }
    return CloserResult(
        tracked: tracked, residentBytesPerConversation: perConversation, inputs: inputsToTime,
        inputsPerSecond: Double(inputsToTime) / elapsed)
}

struct SnapshotResult: Codable {
    var memory: String
    var entries: Int
    var bytes: Int
    var encodeMilliseconds: Double
    var decodeMilliseconds: Double
}

/// Encoding and decoding a snapshot that is mostly what a busy shard remembers: the Router's message ids
/// (UUIDs, as clients send them) and the Closer's ended conversations. Shards encode snapshots often under
/// load, so this is a large share of the services' CPU.
func benchSnapshots(entries: Int) throws -> [SnapshotResult] {
    var now = start
    func message(_ body: InboundBody) throws -> InboundMessage {
        now = now + 1
        return InboundMessage(id: try MessageID(UUID().uuidString.lowercased()), desk: desk, at: now, body: body)
    }
    let agent = try AgentID("a1")
    var router = RouterCore()
    _ = router.handle(.message(try message(.deskConfigure(DeskSettingsPatch()))), at: now)
    let upsert = InboundBody.agentUpsert(AgentProfile(agent: agent, groups: [group], capacity: 1))
    for _ in 0..<entries {
        _ = router.handle(.message(try message(upsert)), at: now)
    }
    var closer = CloserCore()
    var seq: UInt64 = 1
    func event(_ body: RouterEventBody) -> CloserCore.Input {
        seq += 1
        now = now + 1
        return .routerEvent(RouterEvent(desk: desk, seq: seq, at: now, body: body))
    }
    _ = closer.handle(event(.deskConfigured(settings: DeskSettings.defaults)), at: now)
    for index in 0..<entries {
        let conversation = try ConversationID("c\(index)")
        _ = closer.handle(event(.conversationAssigned(
            conversation: conversation, user: try UserID("u\(index)"), agent: agent, offer: nil, mode: .autoAccepted)), at: now)
        _ = closer.handle(event(.conversationEnded(conversation: conversation, agent: agent, reason: .agent)), at: now)
    }
    return [
        try measureSnapshot(of: router, memory: "router: remembered message ids", entries: entries),
        try measureSnapshot(of: routerWithFinishedOffers(entries), memory: "router: finished offers", entries: entries),
        try measureSnapshot(of: closer, memory: "closer: ended conversations", entries: entries),
    ]
}

/// A Router whose one desk remembers `count` finished offers (each accepted, its session then ended), and only
/// the last 1,000 message ids: the snapshot is mostly the finished offers.
func routerWithFinishedOffers(_ count: Int) throws -> RouterCore {
    var router = RouterCore(limits: RouterCore.Limits(rememberedMessages: 1_000, rememberedOffersPerDesk: count))
    var inputs = Inputs()
    let agent = try AgentID("a1")
    _ = router.handle(.message(inputs.message(.deskConfigure(DeskSettingsPatch(ringMs: 30_000)))), at: inputs.now)
    _ = router.handle(.message(inputs.message(.agentUpsert(AgentProfile(agent: agent, groups: [group], capacity: 1)))), at: inputs.now)
    _ = router.handle(.message(inputs.message(.agentStatus(agent: agent, status: .online))), at: inputs.now)
    for index in 0..<count {
        let conversation = try ConversationID("c\(index)")
        let request = ConversationRequest(conversation: conversation, user: try UserID("u\(index)"), group: group)
        let effects = router.handle(.message(inputs.message(.conversationRequested(request))), at: inputs.now)
        for (_, _, offer) in offersMade(in: effects) {
            _ = router.handle(.message(inputs.message(.offerAccept(agent: agent, conversation: conversation, offer: offer))), at: inputs.now)
        }
        _ = router.handle(.message(inputs.message(.sessionEnd(agent: agent, conversation: conversation))), at: inputs.now)
    }
    return router
}

/// The fastest of five encodes and of five decodes: one of each swings by half from run to run on a shared machine.
func measureSnapshot<Core: Codable & Equatable>(of core: Core, memory: String, entries: Int) throws -> SnapshotResult {
    var data = Data()
    var decoded: Core?
    var encode = Double.infinity
    var decode = Double.infinity
    for _ in 0..<5 {
        encode = min(encode, try seconds { data = try WireCodec.encodeSnapshot(core) })
        decode = min(decode, try seconds { decoded = try WireCodec.decodeSnapshot(Core.self, from: data) })
    }
    precondition(decoded == core, "a snapshot must decode to the state it was taken of")
    return SnapshotResult(
        memory: memory, entries: entries, bytes: data.count, encodeMilliseconds: encode * 1_000,
        decodeMilliseconds: decode * 1_000)
}

struct Results: Codable {
    var router: [RouterResult]
    var closer: CloserResult
    var snapshots: [SnapshotResult]
    var targets: [String: Bool]
}

let quick = ProcessInfo.processInfo.environment["BENCH_QUICK"] != nil
let scale = quick ? 10 : 1
var routerResults: [RouterResult] = []
for policy in RoutingPolicy.allCases {
    let result = try benchRouter(policy: policy, agents: 10_000 / scale, waiting: 100_000 / scale, cycles: 100_000 / scale)
    print("router \(policy.rawValue): " + String(format: "agents %7d waiting %8d: %9.0f inputs/s (%.0f ns/input)",
                 result.agents, result.waiting, result.inputsPerSecond, result.nanosecondsPerInput))
    routerResults.append(result)
}
var curve: [RouterResult] = []
for (agents, waiting) in [(1_000, 10_000), (10_000, 100_000), (100_000, 1_000_000)] where !quick || agents <= 10_000 {
    let result = try benchRouter(policy: .longestIdle, agents: agents, waiting: waiting, cycles: 100_000 / scale)
    print(String(format: "router growth agents %7d waiting %8d: %.0f ns/input", agents, waiting, result.nanosecondsPerInput))
    curve.append(result)
}
let closer = try benchCloser(tracked: 1_000_000 / scale, inputsToTime: 1_000_000 / scale)
print(String(format: "closer tracked %d: %.0f resident bytes/conversation, %.0f inputs/s",
             closer.tracked, closer.residentBytesPerConversation, closer.inputsPerSecond))
let snapshots = try benchSnapshots(entries: 100_000 / scale)
for result in snapshots {
    print(String(format: "snapshot, %@ %d: %d bytes, encode %.1f ms, decode %.1f ms", result.memory, result.entries,
                 result.bytes, result.encodeMilliseconds, result.decodeMilliseconds))
}

// Cost per input should grow no faster than log n: ten times the agents and waiting conversations may add a
// constant, not multiply the cost by ten. Allowed: each 10x step costs at most 2x (log growth from 10^4 to
// 10^6 gives about 1.3x per step; linear would be 10x).
let growthSteps = zip(curve, curve.dropFirst()).map { $1.nanosecondsPerInput / $0.nanosecondsPerInput }
let targets = [
    "router >= 200000 inputs/s (every policy)": routerResults.allSatisfy { $0.inputsPerSecond >= 200_000 },
    "router cost per 10x size <= 2x (log n growth)": growthSteps.allSatisfy { $0 <= 2 },
    "closer <= 300 resident bytes per tracked conversation": closer.residentBytesPerConversation <= 300,
]
for (name, met) in targets.sorted(by: { $0.key < $1.key }) {
    print("target \(met ? "met" : "NOT met"): \(name)")
}
print("growth per 10x: " + growthSteps.map { String(format: "%.2fx", $0) }.joined(separator: ", "))

let results = Results(router: routerResults + curve, closer: closer, snapshots: snapshots, targets: targets)
let directory = URL(fileURLWithPath: "bench-results")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
try encoder.encode(results).write(to: directory.appendingPathComponent("core.json"))
var markdown = "# Core benchmark\n\n| policy | agents | waiting | inputs/s | ns/input |\n|---|---|---|---|---|\n"
for result in routerResults + curve {
    markdown += "| \(result.policy) | " + String(format: "%d | %d | %.0f | %.0f |\n", result.agents, result.waiting, result.inputsPerSecond, result.nanosecondsPerInput)
}
markdown += "\nGrowth of ns/input per 10x agents and waiting: " + growthSteps.map { String(format: "%.2fx", $0) }.joined(separator: ", ") + "\n"
markdown += String(format: "\nCloser with %d tracked conversations: %.0f resident bytes per conversation, %.0f inputs/s\n\n",
                   closer.tracked, closer.residentBytesPerConversation, closer.inputsPerSecond)
markdown += "| snapshot of | entries | bytes | encode ms | decode ms |\n|---|---|---|---|---|\n"
for result in snapshots {
    markdown += "| \(result.memory) | " + String(format: "%d | %d | %.1f | %.1f |\n", result.entries, result.bytes,
                                                 result.encodeMilliseconds, result.decodeMilliseconds)
}
markdown += "\n"
for (name, met) in targets.sorted(by: { $0.key < $1.key }) {
    markdown += "- target \(met ? "met" : "NOT met"): \(name)\n"
}
try markdown.write(to: directory.appendingPathComponent("core.md"), atomically: true, encoding: .utf8)
