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
/// nearest even) once, at load, into one huge-page arena (`TensorStorage(weightByteCount:)`). The float32
/// source pages of a memory map are dropped from memory afterwards (they are re-read from the file
/// if something else, e.g. an embedding Gather, still reads them).
public struct WeightConversion: GraphPass {
    public var name: String { "weight conversion" }
    public let storage: WeightStorage
    public init(storage: WeightStorage) { self.storage = storage }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        guard storage != .f32 else { return false }
        let dtype: DType = storage == .f16 ? .float16 : .bfloat16
        // The weights to convert, in first-use order (a decode step reads them in this order).
        var names: [String] = [], seen = Set<String>()
        for node in graph.nodes where Self.converts(node) {
            let name = node.inputs[1]
            guard let w = graph.initializers[name], w.dtype == .float32, !context.inputs.contains(name),
                  seen.insert(name).inserted else { continue }
            names.append(name)
        }
        guard !names.isEmpty else { return false }
        // One arena for all of them, on huge pages (TensorStorage(weightByteCount:)): most layer
        // weights are below 2 MiB (SmolLM2's largest per layer is 1.7 MiB in f16), so separate
        // blocks would come from the heap on 4 KiB pages. Each tensor starts on a cache line.
        var offsets: [Int] = [], total = 0
        for name in names {
            offsets.append(total)
            total += (graph.initializers[name]!.count * dtype.size + 63) / 64 * 64
        }
        let arena = TensorStorage(weightByteCount: total)
        var converted: [String: String] = [:]
        for (name, offset) in zip(names, offsets) {
            let w = graph.initializers[name]!
            let bytes = w.count * dtype.size
            let half = Tensor(dtype: dtype, shape: w.shape,
                              storage: TensorStorage(viewOf: arena.pointer + offset, byteCount: bytes, owner: arena))
            let bits = half.raw.assumingMemoryBound(to: UInt16.self)
            if dtype == .float16 {
                lpc_f32_to_f16(w.pointer(Float.self), bits, Int64(w.count))
            } else {
                lpc_f32_to_bf16_n(w.pointer(Float.self), bits, Int64(w.count))
            }
            let newName = name + "." + storage.rawValue
            graph.initializers[newName] = half
            converted[name] = newName
            if w.storage.isFileMapped { Self.release(w) } // keeps the peak near f16 + what is left of f32
        }
        for i in graph.nodes.indices where Self.converts(graph.nodes[i]) {
            if let newName = converted[graph.nodes[i].inputs[1]] { graph.nodes[i].inputs[1] = newName }
        }
        graph.pruneInitializers()
        return true
    }

    private static func converts(_ node: Node) -> Bool {
        node.domain == GraphOptimizer.domain && (node.opType == "MatMulKN" || node.opType == "MatMulNT") && node.inputs.count > 1
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
