import Foundation
import Logging
import Synchronization
import SwitchboardService
import Testing

@Suite struct JSONLinesLogHandlerTests {
    private final class Lines: Sendable {
        let written = Mutex<[String]>([])
        func append(_ line: String) { written.withLock { $0.append(line) } }
    }

    private func parse(_ line: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func eachEntryIsOneJSONObjectOnOneLine() throws {
        let lines = Lines()
        let fixedTime = Date(timeIntervalSince1970: 1_764_000_000.25)
        var logger = Logger(label: "switchboard-router") { label in
            JSONLinesLogHandler(label: label, logLevel: .info, write: lines.append, now: { fixedTime })
        }
        logger[metadataKey: "instance"] = "host-1"
        logger.info(
            "offer \"made\"\nto agent",
            metadata: ["shard": "2", "agents": ["a1", "a2"], "desk": ["id": "d1"]]
        )
        logger.debug("below the level")

        let written = lines.written.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().contains("\n") == false)

        let object = try parse(line)
        #expect(Set(object.keys) == ["time", "level", "label", "message", "metadata", "source"])
        #expect(object["time"] as? String == "2025-11-24T16:00:00.250Z")
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "switchboard-router")
        #expect(object["message"] as? String == "offer \"made\"\nto agent")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["instance"] as? String == "host-1")
        #expect(metadata["shard"] as? String == "2")
        #expect(metadata["agents"] as? [String] == ["a1", "a2"])
        #expect((metadata["desk"] as? [String: String]) == ["id": "d1"])
    }

    @Test func errorsAndProvidedMetadataAreIncluded() throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "connection refused" } }
        let lines = Lines()
        let provider = Logger.MetadataProvider { ["trace": "t-1"] }
        let logger = Logger(label: "switchboard-closer") { label in
            JSONLinesLogHandler(label: label, logLevel: .trace, metadataProvider: provider, write: lines.append)
        }
        logger.error("connect failed", error: Broken())

        let object = try parse(try #require(lines.written.withLock { $0.first }))
        #expect(object["level"] as? String == "error")
        #expect(object["error"] as? String == "connection refused")
        #expect((object["metadata"] as? [String: String]) == ["trace": "t-1"])
    }
}
