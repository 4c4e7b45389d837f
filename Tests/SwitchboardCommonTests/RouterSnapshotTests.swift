import Foundation
import SwitchboardCommon
import Testing

private let ann = RouterFixture.ann
private let bob = RouterFixture.bob
private let cat = RouterFixture.cat
private let sales = RouterFixture.sales
private let t0 = RouterFixture.t0
private let ring = RouterFixture.ringMs
private let chat = RouterFixture.chat
private let token = RouterFixture.token

@Suite struct RouterSnapshotTests {
    private func restarted(_ core: RouterCore) throws -> RouterCore {
        try JSONDecoder().decode(RouterCore.self, from: JSONEncoder().encode(core))
    }

    @Test func aCoreRestoredFromItsSnapshotContinuesExactlyLikeTheOriginal() throws {
        var h = RouterHarness()
        h.configure(DeskSettingsPatch(maxOfferAttempts: 2, missesBeforeBreak: 2))
        h.configure(DeskSettingsPatch(autoAccept: true), desk: RouterFixture.zeta)
        h.addAgent(ann, capacity: 2, groups: [sales])
        h.addAgent(bob)
        h.addAgent(cat, online: false)
        h.request(1)
        h.request(2, group: sales, priority: 3)
        h.request(3)
        h.request(4, preferredAgent: cat)
        h.accept(bob, 2, offer: 2)
        h.now = t0 + 1_000
        h.request(5)
        h.send(.offerDecline(agent: ann, conversation: chat(1), offer: token(1), reason: nil))

        var original = h.core
        var copy = try restarted(h.core)
        #expect(copy == original)
        var later: [(RouterCore.Input, Instant)] = []
        func message(_ id: String, _ body: InboundBody, desk: DeskID = RouterFixture.acme) -> RouterCore.Input {
            .message(InboundMessage(id: try! MessageID(id), desk: desk, at: t0, body: body))
        }
        later.append((message("x-1", .agentStatus(agent: cat, status: .online)), t0 + 2_000))
        later.append((.tick, t0 + ring))
        later.append((.tick, t0 + ring + 1_000))
        later.append((message("x-2", .offerAccept(agent: ann, conversation: chat(1), offer: token(1))), t0 + ring + 1_500))
        later.append((message("x-3", .sessionTransfer(agent: bob, conversation: chat(2), to: nil)), t0 + ring + 2_000))
        later.append((message("x-1", .agentStatus(agent: cat, status: .offline)), t0 + ring + 2_500))
        later.append((.tick, t0 + 3 * ring))
        later.append((message("x-4", .agentSync(agent: ann)), t0 + 3 * ring))
        later.append((message("x-5", .agentUpsert(AgentProfile(agent: cat, groups: [], capacity: 2))), t0 + 3 * ring))
        later.append((message("x-6", .conversationRequested(ConversationRequest(
            conversation: chat(6), user: RouterFixture.user(6))), desk: RouterFixture.zeta), t0 + 3 * ring))
        later.append((.tick, t0 + 5 * ring))

        var published = 0
        for (input, now) in later {
            let expected = original.handle(input, at: now)
            #expect(copy.handle(input, at: now) == expected)
            #expect(copy == original)
            copy = try restarted(copy)
            published += expected.count { if case .publish = $0 { true } else { false } }
        }
        // The scenario must exercise the restored state, not only produce wake-ups.
        #expect(published >= 10)
        _ = copy.handle(message("x-7", .agentSync(agent: ann)), at: t0 + 5 * ring)
        #expect(copy != original)
    }
}
