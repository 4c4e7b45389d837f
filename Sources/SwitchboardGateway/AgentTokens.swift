import Foundation
import SwitchboardCommon

/// Who a sign-in token stands for.
public struct AgentIdentity: Hashable, Sendable {
    public var desk: DeskID
    public var agent: AgentID
    /// The name the page shows.
    public var name: String

    public init(desk: DeskID, agent: AgentID, name: String) {
        self.desk = desk
        self.agent = agent
        self.name = name
    }

    /// The routing key of the agent's workstation events: `<desk>.<agent>`.
    public var routingKey: String { "\(desk).\(agent)" }
}

/// A tokens file that cannot be used; the gateway refuses to start with it.
public struct TokenFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// The per-agent sign-in tokens, from a JSON file:
/// `{"agents":[{"token":"…","desk":"acme","agent":"alice","name":"Alice"}]}` (`name` is optional).
public struct AgentTokens: Sendable {
    public struct Entry: Hashable, Sendable {
        public var token: String
        public var identity: AgentIdentity

        public init(token: String, identity: AgentIdentity) {
            self.token = token
            self.identity = identity
        }
    }

    /// Shorter tokens can be guessed.
    public static let minimumTokenLength = 16

    public let entries: [Entry]

    public init(entries: [Entry]) throws(TokenFileError) {
        var seen: Set<String> = []
        for (index, entry) in entries.enumerated() {
            guard entry.token.utf8.count >= Self.minimumTokenLength else {
                throw TokenFileError("agents[\(index)]: the token must be at least \(Self.minimumTokenLength) characters")
            }
            guard seen.insert(entry.token).inserted else {
                throw TokenFileError("agents[\(index)]: the same token is given twice")
            }
        }
        self.entries = entries
    }

    public init(json: Data) throws(TokenFileError) {
        let file: TokensFile
        do {
            file = try JSONDecoder().decode(TokensFile.self, from: json)
        } catch {
            throw TokenFileError("not a JSON object of the form {\"agents\":[{\"token\":…,\"desk\":…,\"agent\":…,\"name\":…}]}")
        }
        var entries: [Entry] = []
        for (index, agent) in file.agents.enumerated() {
            let desk: DeskID
            let agentID: AgentID
            do {
                desk = try DeskID(agent.desk)
                agentID = try AgentID(agent.agent)
            } catch {
                throw TokenFileError("agents[\(index)]: \(error)")
            }
            let name = agent.name?.trimmingCharacters(in: .whitespaces) ?? ""
            entries.append(Entry(
                token: agent.token,
                identity: AgentIdentity(desk: desk, agent: agentID, name: name.isEmpty ? agentID.rawValue : name)))
        }
        try self.init(entries: entries)
    }

    public static func load(path: String) throws(TokenFileError) -> AgentTokens {
        let contents: Data
        do {
            contents = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenFileError("cannot read tokens file \(path): \(error.localizedDescription)")
        }
        do {
            return try AgentTokens(json: contents)
        } catch {
            throw TokenFileError("tokens file \(path): \(error.description)")
        }
    }

    /// The other agents of `identity`'s desk in the tokens file, by name: whom its page offers to transfer to.
    public func colleagues(of identity: AgentIdentity) -> [AgentIdentity] {
        var seen: Set<AgentID> = [identity.agent]
        return entries.map(\.identity)
            .filter { $0.desk == identity.desk && seen.insert($0.agent).inserted }
            .sorted { ($0.name.lowercased(), $0.agent.rawValue) < ($1.name.lowercased(), $1.agent.rawValue) }
    }

    /// The agent a token signs in, comparing with every entry in constant time so that the time taken
    /// tells nothing about how much of a guess was right.
    public func identity(forToken token: String) -> AgentIdentity? {
        let candidate = Array(token.utf8)
        var found: AgentIdentity?
        for entry in entries where Self.constantTimeEquals(candidate, Array(entry.token.utf8)) {
            found = entry.identity
        }
        return found
    }

    /// Looks at every byte of the longer input whatever the contents.
    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt64(lhs.count ^ rhs.count)
        for index in 0..<max(lhs.count, rhs.count) {
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            difference |= UInt64(left ^ right)
        }
        return difference == 0
    }

    private struct TokensFile: Decodable {
        struct Agent: Decodable {
            var token: String
            var desk: String
            var agent: String
            var name: String?
        }

        var agents: [Agent]
    }
}
