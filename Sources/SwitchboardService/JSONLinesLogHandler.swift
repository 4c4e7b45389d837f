import Foundation
import Logging

/// Writes each log entry as one JSON object on one line:
/// `{"label":…,"level":…,"message":…,"metadata":{…},"source":…,"time":…}`.
///
/// swift-log ships only a text handler; log collectors want one parseable object per line.
public struct JSONLinesLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let write: @Sendable (String) -> Void
    private let now: @Sendable () -> Date

    /// - Parameters:
    ///   - write: Receives one complete line, newline included.
    ///   - now: The clock for the `time` field.
    public init(
        label: String,
        logLevel: Logger.Level,
        metadataProvider: Logger.MetadataProvider? = nil,
        write: @escaping @Sendable (String) -> Void,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.label = label
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
        self.write = write
        self.now = now
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() {
            merged.merge(provided) { _, provided in provided }
        }
        if let eventMetadata = event.metadata {
            merged.merge(eventMetadata) { _, fromEvent in fromEvent }
        }
        let line = Line(
            time: Self.timeFormat.format(now()),
            level: event.level.rawValue,
            label: label,
            message: event.message.description,
            source: event.source,
            error: event.error.map { String(describing: $0) },
            metadata: merged.mapValues(MetadataJSON.init)
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(line), let text = String(data: data, encoding: .utf8) else {
            write("{\"level\":\"error\",\"message\":\"log entry could not be encoded\"}\n")
            return
        }
        write(text + "\n")
    }

    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    private struct Line: Encodable {
        let time: String
        let level: String
        let label: String
        let message: String
        let source: String
        let error: String?
        let metadata: [String: MetadataJSON]
    }

    private enum MetadataJSON: Encodable {
        case string(String)
        case array([MetadataJSON])
        case object([String: MetadataJSON])

        init(_ value: Logger.Metadata.Value) {
            switch value {
            case .string(let string): self = .string(string)
            case .stringConvertible(let convertible): self = .string(convertible.description)
            case .array(let values): self = .array(values.map(MetadataJSON.init))
            case .dictionary(let values): self = .object(values.mapValues(MetadataJSON.init))
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let string): try container.encode(string)
            case .array(let values): try container.encode(values)
            case .object(let values): try container.encode(values)
            }
        }
    }
}

/// The process's one way to set up logging.
public enum ServiceLogging {
    /// A handler for one logger label in the given format, writing to standard output.
    public static func makeHandler(label: String, format: LogFormat, level: Logger.Level) -> any LogHandler {
        switch format {
        case .text:
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        case .json:
            return JSONLinesLogHandler(label: label, logLevel: level, write: writeToStandardOutput)
        }
    }

    /// Installs the handler for every logger of the process. Call once, before the first `Logger`.
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            makeHandler(label: label, format: format, level: level)
        }
    }

    /// One `write` per line, so lines from several threads never interleave. A log line that cannot be
    /// written (standard output closed) is dropped rather than stopping the service.
    @Sendable private static func writeToStandardOutput(_ line: String) {
        try? FileHandle.standardOutput.write(contentsOf: Data(line.utf8))
    }
}
