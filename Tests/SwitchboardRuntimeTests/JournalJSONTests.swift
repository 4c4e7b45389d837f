import Foundation
import PropertyBased
import SwitchboardCommon
@testable import SwitchboardRuntime
import SwitchboardTestSupport
import Testing

/// The journal's JSON is written by hand (`JournalJSON`) and read with `JournalEntry`'s `Decodable`
/// conformance, as the entries written before were.
@Suite struct JournalJSONTests {
    /// Whatever an entry holds (any text, any bytes, optionals present or not), its JSON is valid and decodes
    /// to the same entry, alone and in records.
    @Test func anyEntryDecodesFromItsJSONAloneAndInRecords() async {
        await propertyCheckRecordingErrors(count: 500, input: Generator { rng in RandomEntry.batch(&rng) }) { (entries: [JournalEntry]) throws in
            for entry in entries {
                let json = entry.encoded()
                #expect(try JSONSerialization.jsonObject(with: Data(json)) is [String: Any])
                #expect(try JournalEntry.decodeRecord(json) == [entry])
            }
            for maxBytes in [1, 600, 1 << 20] {
                let records = JournalEntry.encodeRecords(entries, maxBytes: maxBytes)
                #expect(try records.flatMap { try JournalEntry.decodeRecord($0.body) } == entries)
            }
            // A snapshot's record, with its state encoded beforehand off the writer's path, is the one any
            // other record of it would be.
            for entry in entries {
                guard case .snapshot(let state, let asOf) = entry.content, let seq = entry.seq else { continue }
                let snapshot = JournalEntry.snapshot(
                    seq: seq, now: entry.now, epoch: entry.epoch, asOf: asOf, state: SnapshotState(state))
                #expect(snapshot.entry == entry)
                #expect(snapshot.record == JournalEntry.encodeRecords([entry], maxBytes: 1)[0].body)
            }
        }
    }

    /// An input entry as the shards write it, byte for byte: keys in sorted order, absent optionals left out,
    /// the body as base64, and only quotes, backslashes and control characters escaped.
    @Test func anInputEntryIsWrittenAsExpected() {
        let input = JournalInput(
            exchange: "switchboard.in", routingKey: "offer.accept", body: Data("{\"a\":1}".utf8),
            contentType: "application/json", messageID: "m-1", deskHeader: "acme/\"1\"\n\u{1}é")
        let entry = JournalEntry(
            seq: 7, now: Instant(millisecondsSinceEpoch: 1_764_000_000_123), epoch: "e", content: .input(input))
        let expected =
            #"{"epoch":"e","input":{"body":"eyJhIjoxfQ==","contentType":"application/json","#
            + #""deskHeader":"acme/\"1\"\n\u0001é","exchange":"switchboard.in","messageID":"m-1","#
            + #""routingKey":"offer.accept"},"kind":"input","now":1764000000123,"seq":7}"#
        #expect(String(decoding: entry.encoded(), as: UTF8.self) == expected)
    }

    @Test("a change of limits is an object of numbers, its names in sorted order")
    func limitsEntry() throws {
        let entry = JournalEntry(
            seq: 3, now: Instant(millisecondsSinceEpoch: 5), epoch: "e",
            content: .limits(["rememberedOffersPerDesk": 1_000, "rememberedMessages": 20_000]))
        let expected =
            #"{"epoch":"e","kind":"limits","limits":{"rememberedMessages":20000,"rememberedOffersPerDesk":1000},"now":5,"seq":3}"#
        #expect(String(decoding: entry.encoded(), as: UTF8.self) == expected)
        #expect(try JournalEntry.decodeRecord(Array(expected.utf8)) == [entry])
    }
}

private enum RandomEntry {
    static func batch(_ rng: inout some RandomNumberGenerator & SendableMetatype) -> [JournalEntry] {
        (0..<Int.random(in: 1...6, using: &rng)).map { _ in entry(&rng) }
    }

    static func entry(_ rng: inout some RandomNumberGenerator & SendableMetatype) -> JournalEntry {
        let content: JournalEntry.Content =
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: .tick
            case 1: .marker
            case 2: .snapshot(bytes(&rng), asOf: UInt64.random(in: 0...UInt64.max - 1, using: &rng))
            case 3: .limits(limits(&rng))
            default: .input(input(&rng))
            }
        let seq: UInt64? =
            if case .marker = content { nil } else { UInt64.random(in: 1...UInt64.max, using: &rng) }
        return JournalEntry(
            seq: seq, now: Instant(millisecondsSinceEpoch: Int64.random(in: 0...Int64.max, using: &rng)),
            epoch: text(&rng), content: content)
    }

    static func input<R: RandomNumberGenerator & SendableMetatype>(_ rng: inout R) -> JournalInput {
        func maybe<T>(_ make: (inout R) -> T) -> T? {
            Bool.random(using: &rng) ? make(&rng) : nil
        }
        return JournalInput(
            exchange: text(&rng), routingKey: text(&rng), body: bytes(&rng), contentType: maybe(text),
            messageID: maybe(text), type: maybe(text), timestamp: maybe { Int64.random(in: .min ... .max, using: &$0) },
            deliveryMode: maybe { UInt8.random(in: 0...255, using: &$0) }, deskHeader: maybe(text), userID: maybe(text),
            refusal: maybe(text))
    }

    /// Names that JSON must escape, or must not, and any numbers.
    static func limits(_ rng: inout some RandomNumberGenerator) -> [String: Int] {
        var limits: [String: Int] = [:]
        for _ in 0..<Int.random(in: 0...4, using: &rng) {
            limits[text(&rng)] = Int.random(in: .min ... .max, using: &rng)
        }
        return limits
    }

    static func bytes(_ rng: inout some RandomNumberGenerator) -> Data {
        Data((0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    /// Text that JSON must escape, or must not: quotes, backslashes, slashes, every control character,
    /// DEL, line and paragraph separators, accents, emoji, and any other scalar.
    static func text(_ rng: inout some RandomNumberGenerator) -> String {
        let tricky: [Unicode.Scalar] = ["\"", "\\", "/", "\u{7F}", "\u{2028}", "\u{2029}", "é", "\u{301}", "😀", "\u{FEFF}"]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...20, using: &rng) {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: scalars.append(Unicode.Scalar(UInt8.random(in: 0..<0x20, using: &rng)))
            case 1: scalars.append(tricky.randomElement(using: &rng)!)
            case 2: scalars.append(Unicode.Scalar(UInt8.random(in: 0x20..<0x7F, using: &rng)))
            default:
                let value = UInt32.random(in: 0...0x10FFFF, using: &rng)
                scalars.append(Unicode.Scalar(value) ?? "x")
            }
        }
        return String(scalars)
    }
}
