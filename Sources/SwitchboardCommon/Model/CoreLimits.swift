/// A core's memory limits: each bounds how many of something the core remembers, and has a name that the
/// journal and a service's configuration (`limits.<name>`) know it by.
public protocol CoreLimits: Hashable, Sendable {
    /// Every limit, in the order `--help` lists them.
    static var described: [CoreLimitDescription<Self>] { get }
}

/// One named limit of a `CoreLimits` type.
public struct CoreLimitDescription<Limits: CoreLimits>: Sendable {
    public let name: String
    /// What it bounds, for `--help`.
    public let summary: String
    public let keyPath: any WritableKeyPath<Limits, Int> & Sendable

    public init(_ name: String, _ keyPath: any WritableKeyPath<Limits, Int> & Sendable, summary: String) {
        self.name = name
        self.keyPath = keyPath
        self.summary = summary
    }
}

extension CoreLimits {
    /// Every limit by name.
    public var named: [String: Int] {
        Dictionary(uniqueKeysWithValues: Self.described.map { ($0.name, self[keyPath: $0.keyPath]) })
    }

    /// These limits with those named in `values` changed; names these limits do not have are left out.
    public func changing(_ values: [String: Int]) -> Self {
        var changed = self
        for limit in Self.described {
            if let value = values[limit.name] { changed[keyPath: limit.keyPath] = value }
        }
        return changed
    }
}

/// Limits by name as logs and `switchboard journal replay` show them: `name=value` in name order, comma-separated.
public struct ListedLimits: CustomStringConvertible, Sendable {
    public let named: [String: Int]

    public init(_ named: [String: Int]) {
        self.named = named
    }

    public var description: String {
        named.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

/// The limits of a core that remembers nothing beyond its live state (the Notifier's).
public struct NoCoreLimits: CoreLimits {
    public static var described: [CoreLimitDescription<Self>] { [] }

    public init() {}
}
