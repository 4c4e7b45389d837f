import Foundation
import SwitchboardCommon
import Testing

private let acme = RouterFixture.acme
private let ann = RouterFixture.ann
private let bob = RouterFixture.bob
private let cat = RouterFixture.cat
private let sales = RouterFixture.sales
private let t0 = RouterFixture.t0
private let ring = RouterFixture.ringMs
private let chat = RouterFixture.chat
private let user = RouterFixture.user
private let token = RouterFixture.token

@Suite struct RouterDeskStateTests {
    /// ann (capacity 2) rings with c1 and serves c2; bob is offline; c3, c4 (priority 5) and c5 wait.
    private func busyDesk() -> RouterHarness {
        var h = RouterHarness()
        h.configure()
        h.addAgent(ann, capacity: 2, groups: [sales])
        h.addAgent(bob, online: false)
        h.request(1)
        h.now = t0 + 1_000
        h.request(2)
        h.now = t0 + 2_000
        h.accept(ann, 2, offer: 2)
        h.now = t0 + 3_000
        h.request(3)
        h.now = t0 + 4_000
        h.request(4, group: sales, priority: 5)
        h.request(5)
        return h
    }

    @Test func aDeskShowsItsAgentsQueueRingsAndSessionsAsTheyAreNow() throws {
        let state = try #require(busyDesk().core.state(of: acme))
        #expect(state.desk == acme)
        #expect(state.settings == .defaults)
        #expect(state.agents.map(\.agent) == [ann, bob])
        // Load counts the live ring and the session, though no agent.changed said so.
        #expect(state.agents[0].status == .online && state.agents[0].load == 2 && state.agents[0].capacity == 2)
        #expect(state.agents[0].groups == [sales])
        #expect(state.agents[1].status == .offline && state.agents[1].load == 0)

        let ringing = try #require(state.rings.first)
        #expect(state.rings.count == 1)
        #expect(ringing.conversation == chat(1) && ringing.user == user(1) && ringing.agent == ann)
        #expect(ringing.offer == token(1) && ringing.attempt == 1 && ringing.expiresAt == t0 + ring)
        let serving = try #require(state.sessions.first)
        #expect(state.sessions.count == 1)
        #expect(serving.conversation == chat(2) && serving.user == user(2) && serving.agent == ann)
        #expect(serving.mode == .accepted && serving.since == t0 + 2_000)
        // Higher priority first, then in order of arrival.
        #expect(state.waiting.map(\.conversation) == [chat(4), chat(3), chat(5)])
        #expect(state.waiting.map(\.position) == [1, 2, 3])
        #expect(state.waiting[0].group == sales && state.waiting[0].priority == 5)
        #expect(state.waiting[1].reason == .noAgent && state.waiting[1].since == t0 + 3_000)
    }

    @Test func positionsAndTimesFollowTheQueueAsItMoves() throws {
        var h = busyDesk()
        // c1's ring runs out: c1 goes back to the head of its priority; ann, freed, rings with c4.
        h.tick(at: t0 + ring)
        var state = try #require(h.core.state(of: acme))
        #expect(state.rings.map(\.conversation) == [chat(4)])
        #expect(state.waiting.map(\.conversation) == [chat(1), chat(3), chat(5)])
        #expect(state.waiting.map(\.position) == [1, 2, 3])
        #expect(state.waiting[0].reason == .noAgent && state.waiting[0].since == t0 + ring)
        #expect(state.waiting[1].since == t0 + 3_000)

        // bob comes online and rings with the first waiting; everyone behind it moves up.
        h.now = t0 + ring + 500
        h.send(.agentStatus(agent: bob, status: .online))
        state = try #require(h.core.state(of: acme))
        #expect(state.rings.map(\.conversation) == [chat(1), chat(4)])
        #expect(state.rings.map(\.agent) == [bob, ann])
        #expect(state.waiting.map(\.conversation) == [chat(3), chat(5)])
        #expect(state.waiting.map(\.position) == [1, 2])

        // Under automatic service, ann's freed place serves the next one at once, from then on.
        h.now = t0 + ring + 1_000
        h.configure(DeskSettingsPatch(autoAccept: true))
        h.send(.sessionEnd(agent: ann, conversation: chat(2)))
        state = try #require(h.core.state(of: acme))
        #expect(state.sessions.map(\.conversation) == [chat(3)])
        #expect(state.sessions[0].mode == .autoAccepted && state.sessions[0].since == t0 + ring + 1_000)
        #expect(state.waiting.map(\.conversation) == [chat(5)] && state.waiting[0].position == 1)
        #expect(state.agents[0].load == 2)
    }

    @Test func anUnknownDeskHasNoState() {
        #expect(busyDesk().core.state(of: RouterFixture.zeta) == nil)
    }

    @Test func aSnapshotTakenBeforeTimesWereKeptStillLoadsAndShowsThemAsUnknown() throws {
        let h = busyDesk()
        let current = try JSONSerialization.jsonObject(with: JSONEncoder().encode(h.core))
        func withoutEntered(_ value: Any) -> Any {
            if let object = value as? [String: Any] {
                return object.filter { $0.key != "entered" }.mapValues(withoutEntered)
            }
            if let array = value as? [Any] { return array.map(withoutEntered) }
            return value
        }
        let older = try JSONSerialization.data(withJSONObject: withoutEntered(current))
        #expect(older.count < (try JSONEncoder().encode(h.core)).count)

        var restored = try JSONDecoder().decode(RouterCore.self, from: older)
        let state = try #require(restored.state(of: acme))
        #expect(state.waiting.map(\.conversation) == [chat(4), chat(3), chat(5)])
        #expect(state.waiting.allSatisfy { $0.reason == nil && $0.since == nil })
        #expect(state.sessions.map(\.mode) == [nil])
        // It goes on as before, and what happens from now on is known again.
        var h2 = h
        h2.core = restored
        h2.now = t0 + 5_000
        h2.request(6)
        restored = h2.core
        #expect(try #require(restored.state(of: acme)).waiting.last?.since == t0 + 5_000)
    }
}
