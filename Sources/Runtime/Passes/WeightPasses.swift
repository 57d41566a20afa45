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

/// Converts the weights of `lpc:MatMulKN` / `lpc:MatMulNT` once, at load, into one huge-page
/// arena (`TensorStorage(weightByteCount:)`), to
/// - float16 or bfloat16 (round to nearest even), read by the 16-bit kernels as they are; or
/// - int16 (`.i16`): per output (a column of a [K, N] weight, a row of an [N, K] one) the scale
///   s = max |w| / 32767 and q = round(w / s). The product runs on the integers (exact in
///   float32) and scales its result: `lpc:MatMulKN(x, q, s)` = (x · q) ⊙ s, s a third input [N]
///   (MatMulGrouping keeps them in `scaled` groups).
///
/// Why i16: float16 keeps 11 significant bits whatever the weight's size, so its rounding error
/// is relative and the largest weights carry most of it; a per-output int16 grid spends the same
/// 16 bits evenly over [-max, max]. On SmolLM2-135M the relative RMS weight error is 1.9e-4 for
/// float16 and 3.5e-5 for i16, and over 12 prompts (random, chat, prose; 57–256 tokens) the
/// logits move from float32 by up to 0.070 (f16) or 0.013 (i16) at prefill positions and 0.023
/// or 0.003 at a decode step (tools/check_weight_precision.py). Keeping some products in float32
/// does not fix f16: its error is spread over every layer (tools/weight_rounding_sensitivity.py:
/// the LM head and the first 6 layers in float32 still leave 0.031). The scales are applied by
/// the product's kernel: as separate Mul nodes (211 for SmolLM2) they cost ~2 ms per decode
/// step. A weight with a non-finite value stays float32 under i16.
///
/// The float32 source pages of a memory map are dropped from memory afterwards (they are
/// re-read from the file if something else, e.g. an embedding Gather, still reads them).
public struct WeightConversion: GraphPass {
    public var name: String { "weight conversion" }
    public let storage: WeightStorage
    public init(storage: WeightStorage) { self.storage = storage }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        guard storage != .f32, storage != .auto, storage != .f24 else { return false }
        let dtype: DType = switch storage { case .f16: .float16; case .bf16: .bfloat16; default: .int16 }
        // The weights to convert, in first-use order (a decode step reads them in this order).
        // i16 needs one layout per weight (its scales run along the outputs).
        var names: [String] = [], seen = Set<String>(), transposed: [String: Bool] = [:], mixed = Set<String>()
        for node in graph.nodes where Self.converts(node) {
            let name = node.inputs[1], isNT = node.opType == "MatMulNT"
            if let earlier = transposed[name], earlier != isNT { mixed.insert(name) }
            transposed[name] = isNT
            guard let w = graph.initializers[name], w.dtype == .float32, w.rank == 2, !context.inputs.contains(name),
                  seen.insert(name).inserted else { continue }
            names.append(name)
        }
        if dtype == .int16 { names.removeAll { mixed.contains($0) } }
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
        var converted: [String: (weight: String, scale: String?)] = [:]
        for (name, offset) in zip(names, offsets) {
            let w = graph.initializers[name]!
            let bytes = w.count * dtype.size
            let half = Tensor(dtype: dtype, shape: w.shape,
                              storage: TensorStorage(viewOf: arena.pointer + offset, byteCount: bytes, owner: arena))
            let bits = half.raw.assumingMemoryBound(to: UInt16.self)
            let newName = name + "." + storage.rawValue
            var scaleName: String? = nil
            switch dtype {
            case .float16: lpc_f32_to_f16(w.pointer(Float.self), bits, Int64(w.count))
            case .bfloat16: lpc_f32_to_bf16_n(w.pointer(Float.self), bits, Int64(w.count))
            default:
                let isNT = transposed[name]!
                let outputs = isNT ? w.shape[0] : w.shape[1]
                let scales = Tensor(uninitialized: .float32, shape: [outputs])
                let status = isNT
                    ? lpc_f32_to_i16_rows(w.pointer(Float.self), bits, scales.pointer(Float.self), Int64(w.shape[0]), Int64(w.shape[1]))
                    : lpc_f32_to_i16_columns(w.pointer(Float.self), bits, scales.pointer(Float.self), Int64(w.shape[0]), Int64(w.shape[1]))
                guard status == 0 else { continue } // inf/NaN weights: stay float32
                scaleName = newName + "_scale"
                graph.initializers[scaleName!] = scales
            }
            graph.initializers[newName] = half
            converted[name] = (newName, scaleName)
            if w.storage.isFileMapped { Self.release(w) } // keeps the peak near f16 + what is left of f32
        }
        guard !converted.isEmpty else { return false }
        for i in graph.nodes.indices where Self.converts(graph.nodes[i]) {
            guard let target = converted[graph.nodes[i].inputs[1]] else { continue }
            graph.nodes[i].inputs[1] = target.weight
            if let scale = target.scale { graph.nodes[i].inputs.append(scale) } // y = (x · q) ⊙ scales
        }
        graph.pruneInitializers()
        return true
    }

    private static func converts(_ node: Node) -> Bool {
        node.domain == GraphOptimizer.domain && (node.opType == "MatMulKN" || node.opType == "MatMulNT") && node.inputs.count == 2
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
