import CBLAS
import Foundation
import Graph
import TensorCore

/// Where a decoder's LM head is in its graph: the value to tap for the final hidden state (after
/// the final norm, the LM head's input) and the head's weight, so that
/// `logits = hidden · Wᵀ (+ bias)` (layout `.vocabByHidden`) or `hidden · W (+ bias)` (`.hiddenByVocab`).
///
/// Found by walking back from the `logits` output through shape-only or dtype-only nodes
/// (Reshape, Cast, Identity, Squeeze, Unsqueeze, Flatten) and an optional bias Add to a MatMul or
/// Gemm whose other input is a constant. The forms seen in the exports we support:
/// - optimum, tied embeddings: `MatMul(h, Transpose(embed_tokens.weight [V, d]))` → the embedding
///   itself, `.vocabByHidden`, no copy;
/// - optimum untied, dynamo opset 18/23: `MatMul(h, W [d, V])` → `.hiddenByVocab`;
/// - `Gemm(h, E, transB=1)`, E possibly the Gather's embedding table → `.vocabByHidden`.
/// Quantized heads (`MatMulNBits`, genai builder) are reported as unsupported.
public struct LMHeadTap: @unchecked Sendable {
    public enum Layout: String, Sendable {
        /// weight [vocab, d]: logits = h · Wᵀ (tied embeddings, Gemm transB).
        case vocabByHidden
        /// weight [d, vocab]: logits = h · W (MatMul weights are stored [in, out]).
        case hiddenByVocab
    }

    /// The value holding the final hidden state: [batch, seq, d] (or [batch·seq, d] when the
    /// export flattens before a Gemm). Pass it to `Session.run(_:outputs:)`.
    public let hiddenValue: String
    /// The graph output the walk started from.
    public let logitsValue: String
    /// float32, shape per `layout`; a view on the model's weights when stored as float32.
    public let weight: Tensor
    public let layout: Layout
    /// [vocab], when the head has one (none of our exports do).
    public let bias: Tensor?
    /// How the weight was found, for messages and `lpc inspect`: e.g. "Transpose(model.embed_tokens.weight)".
    public let weightDescription: String

    public var hiddenSize: Int { layout == .vocabByHidden ? weight.shape[1] : weight.shape[0] }
    public var vocabularySize: Int { layout == .vocabByHidden ? weight.shape[0] : weight.shape[1] }

    static let passThrough: Set<String> = ["Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Flatten"]

    public static func find(in graph: Graph, logits: String = "logits") throws(LMHeadError) -> LMHeadTap {
        guard graph.outputs.contains(where: { $0.name == logits }) else {
            throw .noLogits(outputs: graph.outputs.map(\.name))
        }
        var producer: [String: Node] = [:]
        for node in graph.nodes { for output in node.outputs where !output.isEmpty { producer[output] = node } }

        var value = logits
        var path: [String] = []
        var bias: Tensor?
        while true {
            guard let node = producer[value] else {
                throw .notFound(logits: logits, path: path, reason: "'\(value)' is not computed by any node")
            }
            path.append(node.qualifiedOpType)
            if passThrough.contains(node.opType) && node.domain.isEmpty {
                value = node.inputs[0]
                continue
            }
            if node.opType == "Add", node.domain.isEmpty, node.inputs.count == 2, bias == nil {
                // A bias: one side constant, the other the matmul.
                if let constant = try constantValue(node.inputs[1], graph: graph, producer: producer) {
                    bias = constant.tensor
                    value = node.inputs[0]
                    continue
                }
                if let constant = try constantValue(node.inputs[0], graph: graph, producer: producer) {
                    bias = constant.tensor
                    value = node.inputs[1]
                    continue
                }
            }
            if node.opType == "MatMulNBits" || node.opType == "GatherBlockQuantized" {
                throw .unsupportedWeight(node: node.displayName, reason: "the LM head is quantized (\(node.qualifiedOpType)); features need a float LM head — export without int4 quantization of lm_head")
            }
            // lpc's fused products (a graph written by `lpc optimize`): MatMulKN is h·W, MatMulNT h·Wᵀ.
            let fused = node.domain == "lpc" && (node.opType == "MatMulKN" || node.opType == "MatMulNT")
            guard fused || node.domain.isEmpty && (node.opType == "MatMul" || node.opType == "Gemm") else {
                throw .notFound(logits: logits, path: path,
                                reason: "'\(value)' comes from \(node.qualifiedOpType) node \(node.displayName), not a MatMul/Gemm")
            }
            let (activation, weightInput) = (node.inputs[0], node.inputs[1])
            if try constantValue(activation, graph: graph, producer: producer) != nil {
                throw .unsupportedWeight(node: node.displayName, reason: "the constant is the first MatMul input (logits = W·h); expected h·W")
            }
            guard let constant = try constantValue(weightInput, graph: graph, producer: producer) else {
                throw .unsupportedWeight(node: node.displayName, reason: "its weight input '\(weightInput)' is not a constant (initializer, Constant, or a Transpose/Cast of one)")
            }
            guard constant.tensor.rank == 2 else {
                throw .unsupportedWeight(node: node.displayName, reason: "weight \(constant.description) has shape \(constant.tensor.shape); expected rank 2")
            }
            var transposed = constant.transposed
            if fused && node.opType == "MatMulNT" { transposed.toggle() }
            if fused && constant.tensor.dtype != .float32 {
                throw .unsupportedWeight(node: node.displayName, reason: "the LM head weight is \(constant.tensor.dtype) (lpc optimize --weights f16/bf16/i16); features need float32 — optimize without --weights")
            }
            if node.opType == "Gemm" {
                if node.int("transA") ?? 0 != 0 {
                    throw .unsupportedWeight(node: node.displayName, reason: "Gemm with transA=1")
                }
                if let alpha = node.float("alpha"), alpha != 1 {
                    throw .unsupportedWeight(node: node.displayName, reason: "Gemm with alpha=\(alpha)")
                }
                if node.int("transB") ?? 0 != 0 { transposed.toggle() }
                if node.inputs.count > 2, !node.inputs[2].isEmpty {
                    guard bias == nil, let c = try constantValue(node.inputs[2], graph: graph, producer: producer),
                          (node.float("beta") ?? 1) == 1 else {
                        throw .unsupportedWeight(node: node.displayName, reason: "Gemm with a non-constant C, a scaled C, or two biases")
                    }
                    bias = c.tensor
                }
            }
            let layout: Layout = transposed ? .vocabByHidden : .hiddenByVocab
            let tap = LMHeadTap(hiddenValue: activation, logitsValue: logits, weight: constant.tensor,
                                layout: layout, bias: bias.map(float32),
                                weightDescription: transposed && constant.transposed ? "Transpose(\(constant.description))" : constant.description)
            if let bias = tap.bias, bias.count != tap.vocabularySize {
                throw .unsupportedWeight(node: node.displayName, reason: "bias of \(bias.count) elements for a vocabulary of \(tap.vocabularySize)")
            }
            return tap
        }
    }

    /// A constant input: an initializer, a Constant node, or a 2-D Transpose / Cast / Identity of
    /// one. `transposed` says whether a Transpose was crossed (the tensor is returned untransposed).
    private struct Constant {
        var tensor: Tensor
        var transposed: Bool
        var description: String
    }

    private static func constantValue(_ name: String, graph: Graph, producer: [String: Node]) throws(LMHeadError) -> Constant? {
        if let tensor = graph.initializers[name] {
            return Constant(tensor: try convert(tensor, name: name), transposed: false, description: name)
        }
        guard let node = producer[name], node.domain.isEmpty else { return nil }
        switch node.opType {
        case "Constant":
            guard let tensor = node.tensor("value") else { return nil }
            return Constant(tensor: try convert(tensor, name: name), transposed: false, description: name)
        case "Identity", "Cast":
            return try constantValue(node.inputs[0], graph: graph, producer: producer)
        case "Transpose":
            guard var inner = try constantValue(node.inputs[0], graph: graph, producer: producer) else { return nil }
            guard inner.tensor.rank == 2, node.ints("perm").map({ $0 == [1, 0] }) ?? true else { return nil }
            inner.transposed.toggle()
            return inner
        default:
            return nil
        }
    }

    private static func convert(_ tensor: Tensor, name: String) throws(LMHeadError) -> Tensor {
        guard tensor.dtype.isFloatingPoint else {
            throw .unsupportedWeight(node: name, reason: "weight dtype \(tensor.dtype) is not a float type")
        }
        return float32(tensor)
    }

    /// logits [rows, vocab] = hidden [rows, d] · head (+ bias), float32, OpenBLAS.
    public func logits(hidden: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>) {
        let (d, vocab) = (hiddenSize, vocabularySize)
        let w = weight.pointer(Float.self)
        if layout == .vocabByHidden {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(vocab), Int32(d), 1,
                        hidden, Int32(d), w, Int32(d), 0, output, Int32(vocab))
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(vocab), Int32(d), 1,
                        hidden, Int32(d), w, Int32(vocab), 0, output, Int32(vocab))
        }
        if let bias {
            let b = bias.pointer(Float.self)
            for row in 0..<rows { for v in 0..<vocab { output[row * vocab + v] += b[v] } }
        }
    }

    /// The weight as a contiguous [vocab, d] float32 tensor (a copy for `.hiddenByVocab`).
    public func weightVocabByHidden() -> Tensor {
        if layout == .vocabByHidden { return weight }
        let (d, vocab) = (hiddenSize, vocabularySize)
        let result = Tensor(uninitialized: .float32, shape: [vocab, d])
        let (src, dst) = (weight.pointer(Float.self), result.pointer(Float.self))
        for i in 0..<d { for v in 0..<vocab { dst[v * d + i] = src[i * vocab + v] } }
        return result
    }
}

/// float32 view (no copy) or converted copy of a floating-point tensor.
func float32(_ tensor: Tensor) -> Tensor {
    if tensor.dtype == .float32 { return tensor }
    return Tensor(tensor.doubles().map { Float($0) }, shape: tensor.shape)
}

public enum LMHeadError: Error, CustomStringConvertible {
    case noLogits(outputs: [String])
    case notFound(logits: String, path: [String], reason: String)
    case unsupportedWeight(node: String, reason: String)

    public var description: String {
        switch self {
        case let .noLogits(outputs):
            "the model has no 'logits' output (outputs: \(outputs.prefix(6).joined(separator: ", "))\(outputs.count > 6 ? ", …" : "")); LPC features need a causal-LM export (optimum: --task text-generation-with-past)"
        case let .notFound(logits, path, reason):
            "cannot find the LM head behind '\(logits)' (walked back through \(path.joined(separator: " ← "))): \(reason). Supported: MatMul or Gemm with a constant weight, optionally behind Reshape/Cast/Add"
        case let .unsupportedWeight(node, reason):
            "unsupported LM head at \(node): \(reason)"
        }
    }
}
