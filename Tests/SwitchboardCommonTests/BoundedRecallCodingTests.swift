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

    @Test func keysAndValuesAreWrittenAsTwoArrays() throws {
        let json = try #require(String(data: WireCodec.encodeSnapshot(Self.recall()), encoding: .utf8))
        #expect(json.contains(#""keys":["b","d","e"]"#))
        #expect(json.contains(#""values":[20,4,5]"#))
    }

    @Test func snapshotsWrittenInTheEarlierFormStillDecode() throws {
        let earlier = #"{"limit":4,"oldestFirst":[{"key":"b","value":20},{"key":"d","value":4},{"key":"e","value":5}]}"#
        let decoded = try WireCodec.decodeSnapshot(BoundedRecall<String, Int>.self, from: Data(earlier.utf8))
        #expect(decoded == Self.recall())
    }

    @Test func keysWithoutAValueEachAreRefused() {
        let broken = #"{"limit":4,"keys":["b","d"],"values":[20]}"#
        #expect(throws: DecodingError.self) {
            try WireCodec.decodeSnapshot(BoundedRecall<String, Int>.self, from: Data(broken.utf8))
        }
    }
}
