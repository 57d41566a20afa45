import Foundation
import TensorCore

/// Reference twin of `AttentionKernel`, in Double, shaped like the ONNX reference implementation:
/// unpack 3-D inputs to [batch, heads, seq, head], concatenate the cache, build the full bias
/// [batch, q_heads, q_seq, total], repeat the KV heads, then matmul → softcap → bias → softmax
/// → matmul with plain loops.
enum AttentionReference {
    struct Result {
        var y: [Double], yShape: [Int]
        var presentKey: [Double], presentValue: [Double]
        /// The four pipeline stages [batch, q_heads, q_seq, total]: raw, softcapped, biased, softmax.
        var stages: [[Double]]
    }

    static func run(q: Tensor, k: Tensor, v: Tensor, mask: Tensor? = nil, pastKey: Tensor? = nil,
                    pastValue: Tensor? = nil, qNumHeads: Int = 0, kvNumHeads: Int = 0,
                    scale: Double? = nil, softcap: Double = 0, isCausal: Bool = false) throws(KernelError) -> Result {
        let s = try AttentionKernel.resolveShape(q: q.shape, k: k.shape, v: v.shape, pastKey: pastKey?.shape,
                                                 pastValue: pastValue?.shape, qNumHeads: qNumHeads,
                                                 kvNumHeads: kvNumHeads)
        let (b, hq, hkv, sq, skv, past, d, dv) = (s.batch, s.qHeads, s.kvHeads, s.qSeq, s.kvSeq, s.past, s.headSize, s.vHeadSize)
        let total = past + skv
        // [batch, heads, seq, head] views of the inputs.
        let q4 = s.packed ? unpack(q.doubles(), b, sq, hq, d) : q.doubles()
        let k4 = s.packed ? unpack(k.doubles(), b, skv, hkv, d) : k.doubles()
        let v4 = s.packed ? unpack(v.doubles(), b, skv, hkv, dv) : v.doubles()
        let presentKey = concat(pastKey?.doubles(), k4, b, hkv, past, skv, d)
        let presentValue = concat(pastValue?.doubles(), v4, b, hkv, past, skv, dv)

        // Bias: 0 where attended, float32 lowest where masked (bool false, causal, padding).
        let lowest = Double(AttentionKernel.maskedValue)
        var bias = [Double](repeating: 0, count: b * hq * sq * total)
        if let mask {
            let values = mask.doubles()
            let padded = [Int](repeating: 1, count: 4 - mask.rank) + mask.shape
            for bi in 0..<b { for h in 0..<hq { for i in 0..<sq { for j in 0..<total {
                let index = ((bi * hq + h) * sq + i) * total + j
                if j >= padded[3] { bias[index] = lowest; continue }
                let mi = (((padded[0] == 1 ? 0 : bi) * padded[1] + (padded[1] == 1 ? 0 : h)) * padded[2]
                          + (padded[2] == 1 ? 0 : i)) * padded[3] + (padded[3] == 1 ? 0 : j)
                bias[index] = mask.dtype == .bool ? (values[mi] != 0 ? 0 : lowest) : values[mi]
            } } } }
        }
        if isCausal {
            for bi in 0..<b { for h in 0..<hq { for i in 0..<sq { for j in 0..<total where j > past + i {
                bias[((bi * hq + h) * sq + i) * total + j] = lowest
            } } } }
        }
        // Repeat each KV head for its group of query heads.
        let group = hkv == 0 ? 1 : hq / hkv
        var keys = [Double](repeating: 0, count: b * hq * total * d)
        var values = [Double](repeating: 0, count: b * hq * total * dv)
        for bi in 0..<b { for h in 0..<hq {
            let kvh = h / group
            for t in 0..<total {
                for e in 0..<d { keys[((bi * hq + h) * total + t) * d + e] = presentKey[((bi * hkv + kvh) * total + t) * d + e] }
                for e in 0..<dv { values[((bi * hq + h) * total + t) * dv + e] = presentValue[((bi * hkv + kvh) * total + t) * dv + e] }
            }
        } }

        let factor = scale ?? (d > 0 ? 1 / Double(d).squareRoot() : 1)
        var stages = [[Double]](repeating: [Double](repeating: 0, count: b * hq * sq * total), count: 4)
        var y4 = [Double](repeating: 0, count: b * hq * sq * dv)
        for bi in 0..<b { for h in 0..<hq { for i in 0..<sq {
            let base = ((bi * hq + h) * sq + i) * total
            for j in 0..<total {
                var dot = 0.0
                for e in 0..<d { dot += q4[((bi * hq + h) * sq + i) * d + e] * keys[((bi * hq + h) * total + j) * d + e] }
                let raw = factor * dot
                let capped = softcap > 0 ? softcap * Foundation.tanh(raw / softcap) : raw
                stages[0][base + j] = raw
                stages[1][base + j] = capped
                stages[2][base + j] = capped + bias[base + j]
            }
            let row = Array(stages[2][base..<(base + total)])
            let maximum = row.max() ?? 0
            if maximum > lowest {  // a fully masked row keeps zero probabilities
                let exps = row.map { Foundation.exp($0 - maximum) }
                let sum = exps.reduce(0, +)
                for j in 0..<total { stages[3][base + j] = exps[j] / sum }
            }
            for e in 0..<dv {
                var acc = 0.0
                for j in 0..<total { acc += stages[3][base + j] * values[((bi * hq + h) * total + j) * dv + e] }
                y4[((bi * hq + h) * sq + i) * dv + e] = acc
            }
        } } }
        let y = s.packed ? pack(y4, b, hq, sq, dv) : y4
        let yShape = s.packed ? [b, sq, hq * dv] : [b, hq, sq, dv]
        return Result(y: y, yShape: yShape, presentKey: presentKey, presentValue: presentValue, stages: stages)
    }

    /// [b, seq, heads·d] → [b, heads, seq, d].
    private static func unpack(_ x: [Double], _ b: Int, _ seq: Int, _ heads: Int, _ d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for bi in 0..<b { for t in 0..<seq { for h in 0..<heads { for e in 0..<d {
            out[((bi * heads + h) * seq + t) * d + e] = x[((bi * seq + t) * heads + h) * d + e]
        } } } }
        return out
    }

    /// [b, heads, seq, d] → [b, seq, heads·d].
    private static func pack(_ x: [Double], _ b: Int, _ heads: Int, _ seq: Int, _ d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for bi in 0..<b { for h in 0..<heads { for t in 0..<seq { for e in 0..<d {
            out[((bi * seq + t) * heads + h) * d + e] = x[((bi * heads + h) * seq + t) * d + e]
        } } } }
        return out
    }

    private static func concat(_ past: [Double]?, _ new: [Double], _ b: Int, _ heads: Int, _ pastLength: Int,
                               _ seq: Int, _ d: Int) -> [Double] {
        var out: [Double] = []
        for bi in 0..<b { for h in 0..<heads {
            let slot = bi * heads + h
            if let past {
                let start: Int = slot * pastLength * d
                out += past[start..<(start + pastLength * d)]
            }
            let start: Int = slot * seq * d
            out += new[start..<(start + seq * d)]
        } }
        return out
    }
}
