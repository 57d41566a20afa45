import ArgumentParser
import Foundation
import Graph
import ONNXImport
import Runtime

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model's inputs, outputs, opsets, op counts, parameters, and any unsupported ops."
    )

    @Argument(help: "An .onnx file, or a folder holding model.onnx.")
    var model: String

    func run() throws {
        let loaded: ONNXModel
        do { loaded = try ONNXLoader.load(path: model) } catch { exitWithError(error) }
        print(InspectReport(model: loaded).text)
        let unsupported = InspectReport.unsupportedOps(in: loaded.graph)
        if !unsupported.isEmpty { throw ExitCode(2) }
    }
}

/// The text `lpc inspect` prints.
struct InspectReport {
    let model: ONNXModel

    static func unsupportedOps(in graph: Graph) -> [(op: String, nodes: [String])] {
        var byOp: [String: [String]] = [:]
        for node in graph.nodes where OpRegistry.kernel(for: node) == nil {
            byOp[node.qualifiedOpType, default: []].append(node.displayName)
        }
        return byOp.keys.sorted().map { ($0, byOp[$0]!) }
    }

    var text: String {
        let graph = model.graph
        var lines: [String] = []
        lines.append("model:      \(model.path)")
        let producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        lines.append("producer:   \(producer.isEmpty ? "unknown" : producer) (IR version \(model.irVersion))")
        let opsets = graph.opsets.keys.sorted().map { "\($0.isEmpty ? "ai.onnx" : $0) \(graph.opsets[$0]!)" }
        lines.append("opsets:     \(opsets.joined(separator: ", "))")
        lines.append("inputs:")
        for input in graph.inputs where graph.initializers[input.name] == nil {
            lines.append("  \(input.name)  \(input.typeDescription)")
        }
        lines.append("outputs:")
        for output in graph.outputs { lines.append("  \(output.name)  \(output.typeDescription)") }
        let bytes = graph.parameterBytes
        lines.append("parameters: \(graph.parameterCount.formatted()) in \(graph.initializers.count) initializers, \(bytes.formatted()) bytes (\(String(format: "%.1f", Double(bytes) / 1e6)) MB)")
        var counts: [String: Int] = [:]
        for node in graph.nodes { counts[node.qualifiedOpType, default: 0] += 1 }
        lines.append("nodes:      \(graph.nodes.count) of \(counts.count) op types")
        for op in counts.keys.sorted(by: { counts[$0]! != counts[$1]! ? counts[$0]! > counts[$1]! : $0 < $1 }) {
            lines.append("  \(op.padding(toLength: max(28, op.count), withPad: " ", startingAt: 0)) \(counts[op]!)")
        }
        if !model.functionNames.isEmpty {
            lines.append("functions:  \(model.functionNames.joined(separator: ", "))")
        }
        let unsupported = Self.unsupportedOps(in: graph)
        if unsupported.isEmpty {
            lines.append("unsupported ops: none")
        } else {
            lines.append("unsupported ops: \(unsupported.count)")
            for entry in unsupported {
                lines.append("  \(entry.op): \(entry.nodes.map { "'\($0)'" }.joined(separator: ", "))")
            }
        }
        return lines.joined(separator: "\n")
    }
}
