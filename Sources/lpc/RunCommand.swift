import ArgumentParser
import Foundation
import ONNXImport
import Runtime
import TensorCore

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on .npy inputs and write every output as DIR/<output name>.npy.",
        discussion: "Output names containing '/' are written with '_' in their place."
    )

    @Argument(help: "An .onnx file, or a folder holding model.onnx.")
    var model: String

    @Option(name: .customLong("input"), help: ArgumentHelp("A graph input as NAME=FILE.npy (repeat for each input).", valueName: "NAME=FILE"))
    var inputs: [String] = []

    @Option(help: "Folder for the outputs (created if missing).")
    var outputDir: String

    @Option(help: "Comma-separated output names to write (default: every graph output).")
    var outputs: String?

    @Option(help: "Weight storage: f32 (as exported), auto (f32, packed to f24 where exact in the background: pays off over many runs, not one), f24 (the same float32 values in 3 bytes where exact, else f32), f16, bf16 or i16 (converted once at load).")
    var weights: WeightStorage = .f32

    func validate() throws {
        for input in inputs where !input.contains("=") || input.hasPrefix("=") || input.hasSuffix("=") {
            throw ValidationError("--input '\(input)' must look like NAME=FILE.npy")
        }
    }

    func run() throws {
        do {
            let loaded = try ONNXLoader.load(path: model)
            let session = try Session(graph: loaded.graph, options: SessionOptions(weightStorage: weights))
            var feeds: [String: Tensor] = [:]
            for input in inputs {
                let parts = input.split(separator: "=", maxSplits: 1).map(String.init)
                feeds[parts[0]] = try NPY.read(path: parts[1])
            }
            let requested = outputs?.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            let start = Date()
            let results = try session.run(feeds, outputs: requested)
            let elapsed = Date().timeIntervalSince(start)
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            for name in (requested ?? loaded.graph.outputs.map(\.name)) {
                guard let tensor = results[name] else { continue }
                let file = outputDir + "/" + name.replacingOccurrences(of: "/", with: "_") + ".npy"
                try NPY.write(tensor, to: file)
                print("\(name)  \(tensor.dtype)\(tensor.shape)  -> \(file)")
            }
            print(String(format: "ran %d nodes in %.3f s", loaded.graph.nodes.count, elapsed))
        } catch {
            exitWithError(error)
        }
    }
}
