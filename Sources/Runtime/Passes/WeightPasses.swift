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

/// Converts the weights of `lpc:MatMulKN` / `lpc:MatMulNT` to float16 or bfloat16 (round to
/// nearest even) once, at load, into huge-page storage (`TensorStorage(weightByteCount:)`). The float32
/// source pages of a memory map are dropped from memory afterwards (they are re-read from the file
/// if something else, e.g. an embedding Gather, still reads them).
public struct WeightConversion: GraphPass {
    public var name: String { "weight conversion" }
    public let storage: WeightStorage
    public init(storage: WeightStorage) { self.storage = storage }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        guard storage != .f32 else { return false }
        let dtype: DType = storage == .f16 ? .float16 : .bfloat16
        var converted: [String: String] = [:]
        for (i, node) in graph.nodes.enumerated() where node.domain == GraphOptimizer.domain && (node.opType == "MatMulKN" || node.opType == "MatMulNT") {
            let name = node.inputs[1]
            guard let w = graph.initializers[name], w.dtype == .float32, !context.inputs.contains(name) else { continue }
            if converted[name] == nil {
                // Streamed whole every decode step: 2 MiB-aligned, on huge pages (TensorStorage).
                let half = Tensor(dtype: dtype, shape: w.shape, storage: TensorStorage(weightByteCount: w.count * dtype.size))
                let bits = half.raw.assumingMemoryBound(to: UInt16.self)
                if dtype == .float16 {
                    lpc_f32_to_f16(w.pointer(Float.self), bits, Int64(w.count))
                } else {
                    lpc_f32_to_bf16_n(w.pointer(Float.self), bits, Int64(w.count))
                }
                let newName = name + "." + storage.rawValue
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
