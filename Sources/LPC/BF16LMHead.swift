import CKernels
import Dispatch

/// Arithmetic of the frozen LM head in training (`FrozenLMHead.tokenLogProbs`).
/// - `f32`: OpenBLAS sgemm, float32 throughout (what the PyTorch goldens check).
/// - `bf16`: H and W rounded to bfloat16, float32 accumulation on AMX tiles, fused with the
///   log-softmax (`lpc_bf16_lmhead.c`). Needs AMX-BF16; elsewhere the head stays `f32`.
public enum LMHeadPrecision: String, Codable, Sendable, CaseIterable {
    case f32, bf16
}

/// W [vocab, d] packed once into bf16 AMX tiles (≈ 4·vocab·d bytes), freed with the object.
final class BF16PackedHead: @unchecked Sendable {
    let handle: OpaquePointer
    let vocabSize: Int
    let hiddenSize: Int

    /// Whether this machine can run the bf16 head (CPU, OS and — on Linux — the AMX permission).
    static var isAvailable: Bool { lpc_amx_bf16_available() != 0 }

    /// nil when AMX is unavailable or the packed copies cannot be allocated.
    init?(weight: UnsafePointer<Float>, vocabSize: Int, hiddenSize: Int) {
        guard let h = lpc_bf16_head_create(weight, Int64(vocabSize), Int64(hiddenSize)) else { return nil }
        handle = h
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
    }

    deinit { lpc_bf16_head_destroy(handle) }

    /// logProbs [rows], expected [rows, d] (optional) as `FrozenLMHead.tokenLogProbs`, rows split
    /// over `threads` threads in slices of whole 32-row groups (the kernel pads to 32).
    func tokenLogProbs(hidden: UnsafePointer<Float>, ids: UnsafePointer<Int32>, rows: Int,
                       logProbs: UnsafeMutablePointer<Float>, expected: UnsafeMutablePointer<Float>?, threads: Int) {
        if rows == 0 { return }
        let d = hiddenSize
        let slices = max(1, min(threads, (rows + 31) / 32))
        let per = ((rows + slices - 1) / slices + 31) / 32 * 32
        let job = SliceJob(handle: handle, hidden: hidden, ids: ids, logProbs: logProbs, expected: expected, d: d)
        if slices == 1 {
            job.run(0, rows)
        } else {
            DispatchQueue.concurrentPerform(iterations: slices) { i in
                let start = i * per, end = min(rows, start + per)
                if start < end { job.run(start, end) }
            }
        }
    }
}

/// One thread's share of rows (pointers owned by the caller for the duration of the call).
private struct SliceJob: @unchecked Sendable {
    let handle: OpaquePointer
    let hidden: UnsafePointer<Float>
    let ids: UnsafePointer<Int32>
    let logProbs: UnsafeMutablePointer<Float>
    let expected: UnsafeMutablePointer<Float>?
    let d: Int

    func run(_ start: Int, _ end: Int) {
        let rc = lpc_bf16_head_token_logprobs(handle, hidden + start * d, ids + start, Int64(end - start),
                                              logProbs + start, expected.map { $0 + start * d })
        // Ids come from batches built against this vocabulary; a bad one is a programming error.
        precondition(rc != -1, "token id outside the LM head's vocabulary")
        precondition(rc == 0, "bf16 LM head: out of memory for scratch buffers")
    }
}

extension BF16PackedHead {
    /// One call of the kernel on the calling thread: 0, −1 (bad id) or −2 (no memory). For tests.
    func rawTokenLogProbs(hidden: [Float], ids: [Int32], logProbs: inout [Float], expected: inout [Float]?) -> Int32 {
        let rows = ids.count
        return hidden.withUnsafeBufferPointer { h in
            ids.withUnsafeBufferPointer { i in
                logProbs.withUnsafeMutableBufferPointer { lp in
                    if expected == nil {
                        return lpc_bf16_head_token_logprobs(handle, h.baseAddress!, i.baseAddress!, Int64(rows), lp.baseAddress!, nil)
                    }
                    return expected!.withUnsafeMutableBufferPointer { m in
                        lpc_bf16_head_token_logprobs(handle, h.baseAddress!, i.baseAddress!, Int64(rows), lp.baseAddress!, m.baseAddress!)
                    }
                }
            }
        }
    }

    /// The scalar reference twin (`lpc_bf16_head_token_logprobs_reference`): bf16-rounded H and W,
    /// double sums, exact softmax. logProbs [rows], expected [rows, d]; returns the C status.
    static func referenceTokenLogProbs(weight: [Float], vocabSize: Int, hiddenSize: Int, hidden: [Float], ids: [Int32],
                                       logProbs: inout [Float], expected: inout [Float]) -> Int32 {
        weight.withUnsafeBufferPointer { w in
            hidden.withUnsafeBufferPointer { h in
                ids.withUnsafeBufferPointer { i in
                    logProbs.withUnsafeMutableBufferPointer { lp in
                        expected.withUnsafeMutableBufferPointer { m in
                            lpc_bf16_head_token_logprobs_reference(w.baseAddress!, Int64(vocabSize), Int64(hiddenSize), h.baseAddress!,
                                                                   i.baseAddress!, Int64(ids.count), lp.baseAddress!, m.baseAddress!)
                        }
                    }
                }
            }
        }
    }

    /// float32 → nearest-even bfloat16 → float32.
    static func roundToBF16(_ x: Float) -> Float { lpc_bf16_to_f32(lpc_f32_to_bf16(x)) }
}
