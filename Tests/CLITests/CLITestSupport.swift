import Foundation
import TestSupport

/// Runs the built `lpc` binary as a user would and captures its exit status and output.
struct CLIResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

enum CLI {
    /// The `lpc` binary next to the test bundle (swift test builds it first).
    static var binary: URL {
        get throws {
            var candidates: [URL] = []
            let runner = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent()
            candidates.append(runner.appendingPathComponent("lpc"))
            candidates.append(runner.deletingLastPathComponent().appendingPathComponent("lpc"))
            let root = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
            candidates.append(root.appendingPathComponent(".build/debug/lpc"))
            for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
                return candidate
            }
            throw FixtureError("the lpc binary was not found (looked in \(candidates.map(\.path))); run swift build first")
        }
    }

    static func run(_ arguments: [String]) throws -> CLIResult {
        try runWithInput(arguments, input: nil)
    }

    /// Runs with `input` on stdin (nil: /dev/null).
    static func runWithInput(_ arguments: [String], input: Data?) throws -> CLIResult {
        let process = Process()
        process.executableURL = try binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(input)
            try stdin.fileHandleForWriting.close()
        }
        // Read before waiting so a large output cannot fill the pipe and block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIResult(status: process.terminationStatus,
                         stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
    }
}
