import CKernels
import Graph
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// `MatMul(x, W)` with W a large 2-D float32 constant ([K, N], as exporters store it) becomes
/// `lpc:MatMulKN(x, W)`: our matrix-vector kernel for a few rows (decode), sgemm for many. The
/// weights stay where the loader put them (the memory map): no copy, no re-layout.
public struct MatMulWeightFusion: GraphPass {
    public var name: String { "MatMul weight kernels" }
    public var minBytes: Int
    public init(minBytes: Int = 1 << 14) { self.minBytes = minBytes }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let m = Matcher(graph, context)
        let types = DTypeInference.infer(graph)
        var changed = false
        for (i, node) in graph.nodes.enumerated() where node.opType == "MatMul" && node.domain.isEmpty && node.inputs.count == 2 {
            guard let w = m.constant(node.inputs[1]), w.rank == 2, w.dtype == .float32, w.byteCount >= minBytes,
                  types[node.inputs[0]] == .float32 else { continue }
            graph.nodes[i] = Node(name: node.name, opType: "MatMulKN", domain: GraphOptimizer.domain,
                                  inputs: node.inputs, outputs: node.outputs)
            changed = true
        }
        return changed
    }
}

/// Converts the weights of `lpc:MatMulKN` / `lpc:MatMulNT` to float16 once, at load. The float32
/// source pages of a memory map are dropped from memory afterwards (they are re-read from the file
/// if something else, e.g. an embedding Gather, still reads them).
public struct WeightConversion: GraphPass {
    public var name: String { "weight conversion" }
    public let storage: WeightStorage
    public init(storage: WeightStorage) { self.storage = storage }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        guard storage != .f32 else { return false }
        guard storage == .f16 else {
            throw RuntimeError.unsupportedOption("--weights \(storage.rawValue) is not supported yet; use f32 or f16")
        }
        var converted: [String: String] = [:]
        for (i, node) in graph.nodes.enumerated() where node.domain == GraphOptimizer.domain && (node.opType == "MatMulKN" || node.opType == "MatMulNT") {
            let name = node.inputs[1]
            guard let w = graph.initializers[name], w.dtype == .float32, !context.inputs.contains(name) else { continue }
            if converted[name] == nil {
                let half = Tensor(uninitialized: .float16, shape: w.shape)
                lpc_f32_to_f16(w.pointer(Float.self), half.raw.assumingMemoryBound(to: UInt16.self), Int64(w.count))
                let newName = name + ".f16"
                graph.initializers[newName] = half
                converted[name] = newName
                if w.storage.isView { Self.release(w) } // keeps the peak near f16 + what is left of f32
            }
            graph.nodes[i].inputs[1] = converted[name]!
        }
        guard !converted.isEmpty else { return false }
        graph.pruneInitializers()
        return true
    }

    /// Drops the resident pages of a memory-mapped tensor (they stay readable from the file).
    static func release(_ tensor: Tensor) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: tensor.raw)
        let alignedStart = (start + page - 1) / page * page
        let end = (start + tensor.byteCount) / page * page
        guard end > alignedStart, let pointer = UnsafeMutableRawPointer(bitPattern: alignedStart) else { return }
        _ = madvise(pointer, end - alignedStart, MADV_DONTNEED)
    }
}
