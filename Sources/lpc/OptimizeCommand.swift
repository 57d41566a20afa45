import ArgumentParser
import Foundation
import Graph
import ONNXImport
import Runtime

/// `lpc optimize MODEL -o OUT`: runs the graph passes once and writes the result as a model folder
/// whose later loads map the weights in place and skip the passes.
struct OptimizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimize",
        abstract: "Write the optimized graph as a new ONNX model folder that loads without running the passes.",
        discussion: """
        The output is a valid ONNX file (fused ops in the custom domain 'lpc') with every weight in
        one external data file, each at an aligned offset (64 bytes, pages for large tensors), so
        a load maps them without copying. The model's metadata records the pass version; loads of
        a folder written by an older lpc run the passes again. Tokenizer and config files of the
        source folder are copied, so OUT is a complete model folder.
        Examples:
          lpc optimize models/SmolLM2-135M-Instruct -o models/SmolLM2-135M-Instruct-lpc
          lpc optimize models/SmolLM2-135M-Instruct -o models/SmolLM2-f16 --weights f16
        """
    )

    @Argument(help: "An .onnx file, or a folder holding model.onnx.")
    var model: String

    @Option(name: [.short, .customLong("output")], help: "The folder to write (created if missing).")
    var output: String

    @Option(help: "Weight storage written: f32 (as exported), f24 (the same float32 values in 3 bytes where exact, in the kernels' tiles, written as uint8 [K, N, 3]), f16, bf16 or i16 (MatMul weights converted once; i16: int16 with a float32 scale per output, the closest to f32 at 2 bytes a weight).")
    var weights: WeightStorage = .f32

    @Flag(help: "Replace an existing model.onnx in the output folder.")
    var force = false

    func run() throws {
        do { try optimize() } catch { exitWithError(error) }
    }

    private func optimize() throws {
        guard weights != .auto else {
            throw OptimizeError("--weights auto is chosen at load, not written: write f32 (loads as auto by default) or f24")
        }
        let start = Date()
        let loaded = try ONNXLoader.load(path: model)
        let parsed = Date()
        if GraphOptimizer.isOptimized(loaded.graph) {
            throw OptimizeError("'\(model)' was already written by lpc optimize (pass version \(GraphOptimizer.passVersion)); use it as it is")
        }
        let sourceFolder = URL(fileURLWithPath: loaded.path).deletingLastPathComponent().standardizedFileURL.path
        let outFolder = URL(fileURLWithPath: output).standardizedFileURL.path
        guard realPath(sourceFolder) != realPath(outFolder) else {
            throw OptimizeError("the output folder is the model's own folder; choose another folder with -o")
        }
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: outFolder, withIntermediateDirectories: true)
        let outModel = outFolder + "/model.onnx"
        if fileManager.fileExists(atPath: outModel) && !force {
            throw OptimizeError("'\(outModel)' exists; pass --force to replace it")
        }

        // The session runs the passes and checks that every op of the result has a kernel.
        let session = try Session(graph: loaded.graph, options: SessionOptions(weightStorage: weights))
        let passed = Date()
        var options = ONNXWriteOptions()
        options.irVersion = max(loaded.irVersion, 8)
        options.producerVersion = GraphOptimizer.passVersion
        options.metadata = loaded.graph.metadata
        options.metadata[GraphOptimizer.optimizedKey] = GraphOptimizer.passVersion
        options.metadata[F24Packing.weightsKey] = weights.rawValue
        options.metadata["lpc.source_producer"] = "\(loaded.producerName) \(loaded.producerVersion)"
        let dataBytes = try ONNXWriter.write(session.graph, to: outModel, options: options)
        let written = Date()

        let copied = try copyCompanionFiles(from: sourceFolder, to: outFolder, skipping: loaded.path)
        // Reload: what we wrote must parse and skip the passes.
        let reloaded = try ONNXLoader.load(path: outModel)
        guard GraphOptimizer.isOptimized(reloaded.graph), reloaded.graph.nodes.count == session.graph.nodes.count else {
            throw OptimizeError("the written model did not reload as an optimized graph (internal error)")
        }
        print("wrote \(outModel): \(loaded.graph.nodes.count) → \(session.graph.nodes.count) nodes, "
              + String(format: "%.1f MB", Double(dataBytes) / 1e6) + " of weights in model.onnx_data (\(weights.rawValue))")
        if !copied.isEmpty { print("copied: " + copied.joined(separator: ", ")) }
        print(String(format: "done in %.2f s: parse %.2f s, passes %.2f s, write %.2f s, copy and reload %.2f s",
                     Date().timeIntervalSince(start), parsed.timeIntervalSince(start), passed.timeIntervalSince(parsed),
                     written.timeIntervalSince(passed), Date().timeIntervalSince(written)))
    }

    /// Copies the folder's other files (tokenizer, configs, templates): everything but ONNX models
    /// and their data files. Returns the names copied.
    private func copyCompanionFiles(from source: String, to destination: String, skipping modelFile: String) throws -> [String] {
        let fileManager = FileManager.default
        let modelExtensions = [".onnx", ".onnx_data", ".onnx.data", ".data"]
        var copied: [String] = []
        for name in try fileManager.contentsOfDirectory(atPath: source).sorted() {
            let path = source + "/" + name
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  !name.hasPrefix("."), !modelExtensions.contains(where: { name.hasSuffix($0) }) else { continue }
            let target = destination + "/" + name
            if fileManager.fileExists(atPath: target) { try fileManager.removeItem(atPath: target) }
            try fileManager.copyItem(atPath: path, toPath: target)
            copied.append(name)
        }
        return copied
    }

    private func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

struct OptimizeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
