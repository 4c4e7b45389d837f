import Foundation
@testable import SwitchboardCommon
import Testing

@Suite struct BoundedRecallCodingTests {
    /// Three live entries, oldest first: "b" (its value changed after it arrived), "d", "e". "a" was forgotten
    /// beyond the limit and "c" was removed.
    private static func recall() -> BoundedRecall<String, Int> {
        var recall = BoundedRecall<String, Int>(limit: 4)
        for (key, value) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)] { recall.remember(key, value) }
        recall.remove("c")
        recall.remember("b", 20)
        return recall
    }

    @Test func aSnapshotKeepsTheEntriesTheirOrderAndTheLimit() throws {
        let recall = Self.recall()
        let decoded = try WireCodec.decodeSnapshot(BoundedRecall<String, Int>.self, from: WireCodec.encodeSnapshot(recall))
        #expect(decoded == recall)
        #expect(decoded.oldestFirst.map(\.key) == ["b", "d", "e"])
        #expect(decoded.limit == 4)
        var next = decoded
        next.remember("f", 6)
        next.remember("g", 7)
        #expect(next.oldestFirst.map(\.key) == ["d", "e", "f", "g"], "the oldest goes first after a restore too")
    }

    @Test func aSmallerLimitForgetsTheOldestAtOnceAndALargerOneKeepsMore() throws {
        var recall = Self.recall()
        recall.changeLimit(to: 2)
        #expect(recall.oldestFirst.map(\.key) == ["d", "e"])
        #expect(recall.limit == 2)
        recall.changeLimit(to: 3)
        recall.remember("f", 6)
        recall.remember("g", 7)
        #expect(recall.oldestFirst.map(\.key) == ["e", "f", "g"])
        let decoded = try WireCodec.decodeSnapshot(BoundedRecall<String, Int>.self, from: WireCodec.encodeSnapshot(recall))
        #expect(decoded == recall)
    }

    @Test func keysAndValuesAreWrittenApartAndValuesAsRuns() throws {
        let json = try #require(String(data: WireCodec.encodeSnapshot(Self.recall()), encoding: .utf8))
        #expect(json.contains(#""keys":["b","d","e"]"#))
        #expect(json.contains(#""runLengths":[1,1,1]"#))
        #expect(json.contains(#""runValues":[20,4,5]"#))
    }

    /// Message ids hold no line break: one string of lines, and the Router's values (all `true`) one run.
    @Test func keysThatAreLinesAreWrittenAsOneStringAndEqualValuesAsOneRun() throws {
        var recall = BoundedRecall<MessageID, Bool>(limit: 10)
        for id in ["m-1", "m.2", "m3"] { recall.remember(try MessageID(id), true) }
        let data = try WireCodec.encodeSnapshot(recall)
        let json = try #require(String(data: data, encoding: .utf8))
        #expect(json.contains(#""keyLines":"m-1\nm.2\nm3""#), "\(json)")
        #expect(json.contains(#""runLengths":[3]"#) && json.contains(#""runValues":[true]"#), "\(json)")
        let decoded = try WireCodec.decodeSnapshot(BoundedRecall<MessageID, Bool>.self, from: data)
        #expect(decoded == recall)
        let empty = BoundedRecall<MessageID, Bool>(limit: 10)
        #expect(try WireCodec.decodeSnapshot(BoundedRecall<MessageID, Bool>.self, from: WireCodec.encodeSnapshot(empty)) == empty)
    }

    @Test func theClosersConversationKeysAreLinesToo() throws {
        var recall = BoundedRecall<CloserCore.ConversationKey, CloserCore.Ending>(limit: 10)
        recall.remember(CloserCore.ConversationKey(desk: 0, conversation: try ConversationID("c-1")), .endedByRouter)
        recall.remember(CloserCore.ConversationKey(desk: 7, conversation: try ConversationID("c_2")), .closedByInactivity)
        recall.remember(CloserCore.ConversationKey(desk: 7, conversation: try ConversationID("c3")), .closedByInactivity)
        let data = try WireCodec.encodeSnapshot(recall)
        #expect(String(decoding: data, as: UTF8.self).contains(#""keyLines":"0 c-1\n7 c_2\n7 c3""#))
        #expect(try WireCodec.decodeSnapshot(BoundedRecall<CloserCore.ConversationKey, CloserCore.Ending>.self, from: data) == recall)
        for broken in [#""x c-1""#, #""7""#, #""7 not/an/id""#, #""0 c-1\n\n7 c3""#] {
            let snapshot = #"{"limit":10,"keyLines":"# + broken.dropFirst().dropLast() + #"","values":["endedByRouter"]}"#
            #expect(throws: (any Error).self, "\(broken)") {
                try WireCodec.decodeSnapshot(
                    BoundedRecall<CloserCore.ConversationKey, CloserCore.Ending>.self, from: Data(snapshot.utf8))
            }
        }
    }

    /// Each finished offer is different: no runs to write, and as JSON objects they took several times as long
    /// per entry as message ids.
    @Test func theRoutersFinishedOffersAreWrittenAsLinesToo() throws {
        typealias Offers = BoundedRecall<OfferToken, FinishedOffer>
        var recall = Offers(limit: 10)
        for (token, conversation, agent) in [("d.1", "c1", "a1"), ("d:2", "c2", "a-2")] {
            let offer = try OfferToken(token)
            recall.remember(
                offer, FinishedOffer(token: offer, conversation: try ConversationID(conversation), agent: try AgentID(agent)))
        }
        let data = try WireCodec.encodeSnapshot(recall)
        let json = String(decoding: data, as: UTF8.self)
        #expect(json.contains(#""keyLines":"d.1\nd:2""#), "\(json)")
        #expect(json.contains(#""valueLines":"a1 c1 d.1\na-2 c2 d:2""#), "\(json)")
        #expect(!json.contains("runValues"), "\(json)")
        #expect(try WireCodec.decodeSnapshot(Offers.self, from: data) == recall)

        let earlier = #"{"limit":10,"keyLines":"d.1","runLengths":[1],"runValues":[{"token":"d.1","conversation":"c1","agent":"a1"}]}"#
        let decoded = try WireCodec.decodeSnapshot(Offers.self, from: Data(earlier.utf8))
        #expect(decoded[try OfferToken("d.1")]?.conversation == (try ConversationID("c1")), "snapshots written before still read")
        for broken in ["a1 c1", "a/1 c1 d.1", "a1 c/1 d.1", "a1 c1 ", "a1 c1 d.1 d.2"] {
            let snapshot = #"{"limit":10,"keyLines":"d.1","valueLines":"\#(broken)"}"#
            #expect(throws: (any Error).self, "\(broken)") { try WireCodec.decodeSnapshot(Offers.self, from: Data(snapshot.utf8)) }
        }
    }

    /// The Router's desks write their finished offers through `snapshot()` compiled for keys and values that are
    /// both lines; it must write and read the form `Codable` does, and refuse the same broken lines.
    @Test func theRoutersOwnSnapshotOfItsFinishedOffersIsTheFormCodableWritesAndReads() throws {
        typealias Offers = BoundedRecall<OfferToken, FinishedOffer>
        var recall = Offers(limit: 2)
        for number in 1...3 {
            let offer = try OfferToken("d.\(number)")
            recall.remember(
                offer, FinishedOffer(token: offer, conversation: try ConversationID("c\(number)"), agent: try AgentID("a\(number)")))
        }
        let own = try WireCodec.encodeSnapshot(recall.snapshot())
        #expect(own == (try WireCodec.encodeSnapshot(recall)))
        #expect(String(decoding: own, as: UTF8.self).contains(#""valueLines":"a2 c2 d.2\na3 c3 d.3""#))
        let restored = try Offers(restoring: WireCodec.decodeSnapshot(Offers.Snapshot.self, from: own))
        #expect(restored == recall)
        for broken in ["a1 c1", "a/1 c1 d.1", "a1 c1 d.1 d.2"] {
            let snapshot = #"{"limit":10,"keyLines":"d.1","valueLines":"\#(broken)"}"#
            #expect(throws: (any Error).self, "\(broken)") {
                try Offers(restoring: WireCodec.decodeSnapshot(Offers.Snapshot.self, from: Data(snapshot.utf8)))
            }
        }
    }

    /// The cores write their memories through `snapshot()` and read them through `init(restoring:)`, compiled
    /// for their key types; `Codable` works generically. Both must read and write one form.
    @Test func aCoresOwnSnapshotOfAMemoryIsTheFormCodableWritesAndReads() throws {
        var recall = BoundedRecall<CloserCore.ConversationKey, CloserCore.Ending>(limit: 3)
        let endings: [CloserCore.Ending] = [.endedByRouter, .closedByInactivity, .closedByInactivity, .endedByRouter]
        for (number, ending) in zip(1..., endings) {
            recall.remember(CloserCore.ConversationKey(desk: 2, conversation: try ConversationID("c\(number)")), ending)
        }
        let own = try WireCodec.encodeSnapshot(recall.snapshot())
        #expect(own == (try WireCodec.encodeSnapshot(recall)))
        typealias Snapshot = BoundedRecall<CloserCore.ConversationKey, CloserCore.Ending>.Snapshot
        let restored = try BoundedRecall(restoring: WireCodec.decodeSnapshot(Snapshot.self, from: own))
        #expect(restored == recall)
        #expect(restored.oldestFirst.map(\.key.conversation.rawValue) == ["c2", "c3", "c4"])
        var next = restored
        next.remember(CloserCore.ConversationKey(desk: 2, conversation: try ConversationID("c5")), .endedByRouter)
        #expect(next.oldestFirst.map(\.key.conversation.rawValue) == ["c3", "c4", "c5"], "ages go on after a restore")
    }

    /// Snapshots never repeat a key or pass the limit, but one that does is read as if remembered one by one.
    @Test func repeatedKeysAndKeysBeyondTheLimitAreReadAsRememberedOneByOne() throws {
        let snapshot = #"{"limit":2,"keys":["a","b","a","c"],"values":[1,2,3,4]}"#
        let decoded = try WireCodec.decodeSnapshot(BoundedRecall<String, Int>.self, from: Data(snapshot.utf8))
        var expected = BoundedRecall<String, Int>(limit: 2)
        for (key, value) in [("a", 1), ("b", 2), ("a", 3), ("c", 4)] { expected.update(key, startingFrom: value) { _ in } }
        #expect(decoded == expected)
        #expect(decoded.oldestFirst.map(\.key) == ["b", "c"])
        #expect(decoded["b"] == 2 && decoded["c"] == 4)
    }

    @Test func snapshotsWithValuesInOneArrayStillDecode() throws {
        let earlier = #"{"limit":4,"keys":["b","d","e"],"values":[20,4,5]}"#
        let decoded = try WireCodec.decodeSnapshot(BoundedRecall<String, Int>.self, from: Data(earlier.utf8))
        #expect(decoded == Self.recall())
    }

    @Test func snapshotsWrittenInTheEarlierFormStillDecode() throws {
        let earlier = #"{"limit":4,"oldestFirst":[{"key":"b","value":20},{"key":"d","value":4},{"key":"e","value":5}]}"#
        let decoded = try WireCodec.decodeSnapshot(BoundedRecall<String, Int>.self, from: Data(earlier.utf8))
        #expect(decoded == Self.recall())
    }

    @Test func keysWithoutAValueEachAreRefused() {
        for broken in [
            #"{"limit":4,"keys":["b","d"],"values":[20]}"#,
            #"{"limit":4,"keys":["b","d"],"runLengths":[1],"runValues":[20]}"#,
            #"{"limit":4,"keys":["b","d"],"runLengths":[2,0],"runValues":[20,4]}"#,
            #"{"limit":4,"keys":["b","d"],"runLengths":[2],"runValues":[20,4]}"#,
        ] {
            #expect(throws: DecodingError.self, "\(broken)") {
                try WireCodec.decodeSnapshot(BoundedRecall<String, Int>.self, from: Data(broken.utf8))
            }
        }
    }
}
