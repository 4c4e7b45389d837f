import Foundation

/// Configuration files a test writes, in a folder of the test's own that goes when the test does.
final class ConfigFiles {
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: folder)
    }

    /// Writes `json` to a new file in the folder and returns its path.
    func write(_ json: String) throws -> String {
        let path = folder.appendingPathComponent("\(UUID().uuidString).json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}
