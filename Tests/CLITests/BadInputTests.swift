import Foundation
import Testing
import TestSupport

/// Every broken model and input in Tests/Fixtures/bad (tools/make_bad_models.py) through the CLI
/// as a user meets it: a clear message naming the problem and what it involves, a non-zero exit,
/// no crash (a crash would be a signal, status > 128 or an uncaught-signal termination).
@Suite("Bad input through the CLI")
struct BadInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let path: String
        let expect: String?
        let mentions: [String]
        let input: String?
        let inputName: String?
        let golden: String?
        var testDescription: String { name }
    }

    static func cases() throws -> [Case] {
        let manifest = try Fixtures.json("bad/manifest.json") as? [[String: Any]] ?? []
        return manifest.map { entry in
            Case(name: entry["name"] as? String ?? "", path: entry["path"] as? String ?? "",
                 expect: entry["expect"] as? String, mentions: entry["mentions"] as? [String] ?? [],
                 input: entry["input"] as? String, inputName: entry["input_name"] as? String,
                 golden: entry["golden"] as? String)
        }
    }

    @Test func manifestCoversTheIssuesList() throws {
        let names = Set(try Self.cases().map(\.name))
        for required in ["empty_file", "truncated", "corrupt_bytes", "unknown_ops", "undefined_input", "cycle",
                         "raw_data_size_mismatch", "absurd_dims", "external_path_escape", "external_past_end",
                         "runtime_wrong_dtype", "runtime_wrong_shape"] {
            #expect(names.contains(required), "missing bad-input case \(required)")
        }
    }

    @Test(arguments: try cases())
    func failsClearly(_ testCase: Case) throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("lpc-bad-\(testCase.name)-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        var arguments = ["run", Fixtures.path("bad/" + testCase.path), "--output-dir", output]
        if let input = testCase.input, let inputName = testCase.inputName {
            arguments += ["--input", "\(inputName)=\(Fixtures.path("bad/" + input))"]
        }
        let result = try CLI.run(arguments)
        guard let expect = testCase.expect else {
            #expect(result.status == 0, "\(testCase.name): \(result.stderr)")
            return
        }
        #expect(result.status == 1, "\(testCase.name): exit status \(result.status), stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("error: "), "\(testCase.name): \(result.stderr)")
        #expect(result.stderr.lowercased().contains(expect), "\(testCase.name): expected '\(expect)' in: \(result.stderr)")
        for name in testCase.mentions {
            #expect(result.stderr.contains(name), "\(testCase.name): expected '\(name)' in: \(result.stderr)")
        }
    }

    @Test func inspectListsEveryUnsupportedOpAtOnce() throws {
        let result = try CLI.run(["inspect", Fixtures.path("bad/unknown_ops/model.onnx")])
        #expect(result.status == 2)
        for name in ["FooOp", "BarOp", "com.example:Baz", "first_foo", "second_bar", "third_baz"] {
            #expect(result.stdout.contains(name), "inspect output lacks \(name):\n\(result.stdout)")
        }
    }

    @Test func malformedInputArgumentIsAUsageError() throws {
        let result = try CLI.run(["run", Fixtures.path("bad/runtime_io/model.onnx"), "--input", "x", "--output-dir", "/tmp/x"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("NAME=FILE.npy"))
    }

    @Test func missingModelFileIsNamed() throws {
        let result = try CLI.run(["inspect", "/nonexistent/model.onnx"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("/nonexistent/model.onnx"))
    }
}
