import CKernels
import Dispatch
import Foundation
import TensorCore

/// The backbone's frozen LM head W [vocab, d] (for SmolLM2 the tied embedding matrix), and the
/// expensive op of training: token log-probabilities log softmax(h̃_t·Wᵀ)[y_t] and their backward.
///
/// The backward needs dL/dh̃_t = c_t·(W[y_t] − Σ_v softmax_v·W[v]) where c_t = dL/dlogp_t. The
/// forward therefore computes, per chunk of rows, logits = H̃·Wᵀ [C, vocab] (sgemm), turns them into
/// probabilities in place, and — when gradients are wanted — M = P·W [C, d] (a second sgemm). The
/// [N, vocab] logits are never materialised beyond one chunk, nothing is recomputed, and the
/// backward costs O(N·d). FLOPs per row: 2·d·vocab (forward only) or 4·d·vocab (with gradients).
public final class FrozenLMHead: @unchecked Sendable {
    /// float32 [vocab, d]; may share storage with the runtime's weights (never written).
    public let weight: Tensor
    public let vocabSize: Int
    public let hiddenSize: Int
    /// Rows per sgemm chunk: the scratch logits are [rowsPerChunk, vocab] floats.
    public var rowsPerChunk: Int
    /// Threads for the per-row softmax over the vocabulary (the sgemms use OpenBLAS's own threads;
    /// the two never run at the same time). Default: the active processor count, at most 8.
    public var threads: Int = min(8, ProcessInfo.processInfo.activeProcessorCount)
    /// The arithmetic of `tokenLogProbs` (and so of `sequenceLogProb`); `logits` is always float32.
    /// Change it with `setPrecision`.
    public private(set) var precision: LMHeadPrecision = .f32
    private(set) var packed: BF16PackedHead?

    public init(weight: Tensor) throws {
        guard weight.dtype == .float32, weight.rank == 2, weight.shape[0] > 0, weight.shape[1] > 0 else {
            throw LPCError.invalidConfig("LM head weight must be float32 [vocab, d], got \(weight)")
        }
        self.weight = weight
        vocabSize = weight.shape[0]
        hiddenSize = weight.shape[1]
        rowsPerChunk = max(1, min(256, (1 << 24) / vocabSize))  // SmolLM2: 256 rows, 50 MB scratch
    }

    public convenience init(weight: [Float], vocabSize: Int, hiddenSize: Int) throws {
        guard weight.count == vocabSize * hiddenSize else {
            throw LPCError.invalidConfig("LM head weight has \(weight.count) values, expected vocab \(vocabSize) × d \(hiddenSize)")
        }
        try self.init(weight: Tensor(weight, shape: [vocabSize, hiddenSize]))
    }

    var w: UnsafePointer<Float> { UnsafePointer(weight.pointer(Float.self)) }

    /// Selects the arithmetic of `tokenLogProbs` and returns the one in effect: asking for `.bf16`
    /// where AMX-BF16 is unavailable (or the packed copy, ≈ 4·vocab·d bytes, cannot be allocated)
    /// keeps `.f32`. Packing W happens once, on the first switch to `.bf16`. Not synchronised:
    /// choose the precision before the head is shared with other threads.
    @discardableResult
    public func setPrecision(_ requested: LMHeadPrecision) -> LMHeadPrecision {
        switch requested {
        case .f32:
            precision = .f32
        case .bf16:
            if packed == nil {
                packed = BF16PackedHead(weight: w, vocabSize: vocabSize, hiddenSize: hiddenSize)
            }
            precision = packed == nil ? .f32 : .bf16
        }
        return precision
    }

    /// Whether `setPrecision(.bf16)` can succeed on this machine.
    public static var bf16Available: Bool { BF16PackedHead.isAvailable }

    /// logProbs[t] = log softmax(hidden_t·Wᵀ)[ids[t]] for `rows` rows of hidden [rows, d].
    /// `expected` (optional, [rows, d]) receives M_t = softmax(hidden_t·Wᵀ)·W for `backward`.
    /// `scratch` is grown to [rowsPerChunk, vocab] once and reused.
    public func tokenLogProbs(hidden: UnsafePointer<Float>, ids: UnsafePointer<Int32>, rows: Int,
                              logProbs: UnsafeMutablePointer<Float>, expected: UnsafeMutablePointer<Float>?,
                              scratch: inout [Float]) {
        if precision == .bf16, let packed {
            packed.tokenLogProbs(hidden: hidden, ids: ids, rows: rows, logProbs: logProbs, expected: expected,
                                 threads: max(1, threads))
            return
        }
        let V = vocabSize, d = hiddenSize
        let chunk = max(1, rowsPerChunk)
        if scratch.count < chunk * V { scratch = [Float](repeating: 0, count: chunk * V) }
        let threads = self.threads
        scratch.withUnsafeMutableBufferPointer { buf in
            let logits = buf.baseAddress!
            var start = 0
            while start < rows {
                let c = min(chunk, rows - start)
                // logits [c, V] = H[start..<start+c] · Wᵀ
                gemm(transB: true, m: c, n: V, k: d, hidden + start * d, lda: d, w, ldb: d, logits, ldc: V)
                let job = RowJob(logits: logits, ids: ids + start, logProbs: logProbs + start, vocab: V,
                                 normalize: expected != nil)
                if threads > 1 && c >= 2 * threads {
                    let per = (c + threads - 1) / threads
                    DispatchQueue.concurrentPerform(iterations: threads) { t in
                        for i in (t * per)..<min(c, (t + 1) * per) { job.run(i) }
                    }
                } else {
                    for i in 0..<c { job.run(i) }
                }
                if let expected {
                    // M [c, d] = P [c, V] · W [V, d]
                    gemm(m: c, n: d, k: V, logits, lda: V, w, ldb: d, expected + start * d, ldc: d)
                }
                start += c
            }
        }
    }

    /// dHidden_t (+)= coefficient_t·(W[ids_t] − expected_t): the backward of `tokenLogProbs` given
    /// c_t = dL/dlogProbs_t.
    public func backward(ids: UnsafePointer<Int32>, coefficients: UnsafePointer<Float>, expected: UnsafePointer<Float>,
                         rows: Int, dHidden: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let d = hiddenSize
        for t in 0..<rows {
            let c = coefficients[t]
            let wr = w + Int(ids[t]) * d, m = expected + t * d, o = dHidden + t * d
            if accumulate {
                for j in 0..<d { o[j] += c * (wr[j] - m[j]) }
            } else {
                for j in 0..<d { o[j] = c * (wr[j] - m[j]) }
            }
        }
    }

    /// Σ_t log softmax(hidden_t·Wᵀ)[ids_t] for one sequence's rows [rows, d] — the reference
    /// log-prob of a response from cached hidden states, computed by the same kernel as training
    /// (so an untrained head reproduces it up to float32 summation noise).
    public func sequenceLogProb(hidden: UnsafePointer<Float>, ids: UnsafePointer<Int32>, rows: Int,
                                scratch: inout [Float]) -> Float {
        var lp = [Float](repeating: 0, count: rows)
        tokenLogProbs(hidden: hidden, ids: ids, rows: rows, logProbs: &lp, expected: nil, scratch: &scratch)
        return Float(lp.reduce(0.0) { $0 + Double($1) })
    }

    /// Logits [rows, vocab] = hidden·Wᵀ (generation; one row per decode step). A few rows run the
    /// runtime's pooled matrix-vector kernel (OpenBLAS's sgemm with m = 1 streamed SmolLM2's 113 MB
    /// head at ~7 GB/s: 16 ms of a 48 ms step); more rows run sgemm.
    public func logits(hidden: [Float], rows: Int) -> [Float] {
        precondition(hidden.count == rows * hiddenSize, "hidden must be [rows, d]")
        var out = [Float](repeating: 0, count: rows * vocabSize)
        hidden.withUnsafeBufferPointer { h in
            out.withUnsafeMutableBufferPointer { o in
                if rows <= 8 {
                    lpc_gemv_f32(h.baseAddress!, w, o.baseAddress!, Int64(rows), Int64(vocabSize), Int64(hiddenSize))
                } else {
                    gemm(transB: true, m: rows, n: vocabSize, k: hiddenSize, h.baseAddress!, lda: hiddenSize, w,
                         ldb: hiddenSize, o.baseAddress!, ldc: vocabSize)
                }
            }
        }
        return out
    }
}

/// One chunk's per-row softmax work (pointers into buffers owned by the caller for the call).
struct RowJob: @unchecked Sendable {
    let logits: UnsafeMutablePointer<Float>
    let ids: UnsafePointer<Int32>
    let logProbs: UnsafeMutablePointer<Float>
    let vocab: Int
    let normalize: Bool

    /// logProbs[i] = logits[i, ids[i]] − logsumexp(logits[i]); the row becomes softmax when normalising.
    @inline(__always)
    func run(_ i: Int) {
        let row = logits + i * vocab
        let picked = row[Int(ids[i])]
        let (mx, sum) = expShiftedRow(row, count: vocab)
        logProbs[i] = picked - mx - log(sum)
        if normalize { scaleRow(row, count: vocab, by: 1 / sum) }
    }
}
