import Foundation
import SwitchboardCommon
import SwitchboardOps
import SwitchboardRuntime
import Testing

struct JournalLineTests {
    private let acme = try! DeskID("acme")
    private let beta = try! DeskID("beta")
    private let t0 = Instant(millisecondsSinceEpoch: 1_764_093_600_000)

    private func expired(_ desk: DeskID, seq: UInt64, id: String) throws -> EffectAction {
        let event = RouterEvent(
            desk: desk, seq: seq, at: t0,
            body: .offerExpired(conversation: try ConversationID("c-\(desk)"), agent: try AgentID("ann"), offer: try OfferToken("o1")))
        let messageID = try MessageID(id)
        return EffectAction(id: messageID, action: .success(.publish(try WireCodec.outgoing(event, id: messageID))))
    }

    private func configure(_ desk: DeskID) throws -> JournalInput {
        let wire = try WireCodec.outgoing(
            InboundMessage(id: try MessageID("m1"), desk: desk, at: t0, body: .deskConfigure(DeskSettingsPatch())))
        return JournalInput(
            exchange: wire.exchange.rawValue, routingKey: wire.routingKey, body: wire.body, messageID: "m1",
            type: wire.properties.type, deskHeader: desk.rawValue, userID: "platform")
    }

    /// A timer firing that expired a ring on each of two desks and set the next timer.
    private func tick() throws -> JournalStep {
        .applied(
            AppliedStep(
                seq: 7, at: t0, input: nil, rejection: nil,
                actions: [
                    try expired(acme, seq: 4, id: "router.0.7.0"), try expired(beta, seq: 9, id: "router.0.7.1"),
                    EffectAction(id: try MessageID("router.0.7.2"), action: .success(.wakeUp(at: t0 + 1_000))),
                ]))
    }

    @Test func aTimerFiringShowsEachEffectWithItsIdAndNotTheTimerItSets() throws {
        #expect(
            JournalLine.describe(try tick()) == [
                "2025-11-25T18:00:00.000Z #7 timer",
                "    → router.0.7.0 acme #4 offer.expired c-acme at ann offer o1",
                "    → router.0.7.1 beta #9 offer.expired c-beta at ann offer o1",
            ])
    }

    @Test func aDeskFilterKeepsThatDesksEffectsOnly() throws {
        #expect(
            JournalLine.describe(try tick(), desk: acme) == [
                "2025-11-25T18:00:00.000Z #7 timer", "    → router.0.7.0 acme #4 offer.expired c-acme at ann offer o1",
            ])
        #expect(JournalLine.describe(try tick(), desk: try DeskID("gamma")).isEmpty)
    }

    @Test func anInputShowsWhereItCameFromAndWhyItWasRejected() throws {
        let rejected = JournalStep.applied(
            AppliedStep(
                seq: 3, at: t0, input: try configure(beta), rejection: "desk.configure: ringMs: must be positive",
                actions: [EffectAction(id: try MessageID("router.0.3.0"), action: .success(.deadLetter(reason: "unknown desk")))]))
        #expect(
            JournalLine.describe(rejected) == [
                "2025-11-25T18:00:00.000Z #3 desk.configure from switchboard.in (id m1, desk beta, user platform) "
                    + "rejected: desk.configure: ringMs: must be positive",
                "    → dead-lettered: unknown desk",
            ])
        #expect(JournalLine.describe(rejected, desk: beta).count == 2)
        #expect(JournalLine.describe(rejected, desk: acme).isEmpty)
    }

    @Test func anEffectThatCarriesItsOwnIdIsShownWithIt() throws {
        // The Closer's conversation.ended keeps the core's id however often it is published.
        let ended = try WireCodec.outgoing(
            InboundMessage(
                id: try MessageID("closer-ended-c1"), desk: acme, at: t0,
                body: .conversationEnded(conversation: try ConversationID("c1"), by: .inactivity)))
        let step = JournalStep.applied(
            AppliedStep(
                seq: 5, at: t0, input: nil, rejection: nil,
                actions: [EffectAction(id: try MessageID("closer.0.5.0"), action: .success(.publish(ended)))]))
        let lines = JournalLine.describe(step)
        #expect(lines.count == 2)
        #expect(lines.last?.hasPrefix("    → closer-ended-c1 to switchboard.in conversation.ended {") == true, "\(lines)")
    }

    @Test func shardWideStepsShowWithAnyDeskButSnapshotsOnlyWithout() {
        let term = JournalStep.writerTerm(epoch: "e1", at: t0)
        let snapshot = JournalStep.snapshot(seq: 12, asOf: 10, at: t0)
        #expect(JournalLine.describe(term, desk: acme) == ["2025-11-25T18:00:00.000Z writer term e1 begins: an instance took the shard"])
        #expect(JournalLine.describe(snapshot) == ["2025-11-25T18:00:00.000Z #12 snapshot of the state as of #10"])
        #expect(JournalLine.describe(snapshot, desk: acme).isEmpty)
        #expect(
            JournalLine.describe(.superseded(seq: 5, epoch: "e0", at: t0), desk: acme) == [
                "2025-11-25T18:00:00.000Z #5 of writer term e0 not applied: a later term had begun"
            ])
        #expect(JournalLine.describe(.restored(asOf: 9, failure: nil)).first?.contains("from the snapshot as of #9") == true)
        #expect(JournalLine.describe(.restored(asOf: 9, failure: "bad state")).first?.contains("cannot be decoded (bad state)") == true)
        #expect(
            JournalLine.describe(
                .limits(seq: 13, limits: ["rememberedOffersPerDesk": 500, "rememberedMessages": 20_000], at: t0), desk: acme)
                == ["2025-11-25T18:00:00.000Z #13 memory limits from here on: rememberedMessages=20000,rememberedOffersPerDesk=500"])
    }
}
