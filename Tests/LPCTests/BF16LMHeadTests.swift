import Foundation
import Testing
@testable import LPC

/// The bf16 AMX LM head (`lpc_bf16_lmhead.c`, `FrozenLMHead.setPrecision(.bf16)`):
/// 1. the kernel against its scalar reference twin (same bf16 roundings, double sums) on swept and
///    odd shapes — rows not a multiple of 16/32 or of the 384-row block, vocab not a multiple of
///    the 256-column block, d not a multiple of 32;
/// 2. the bf16 path against the float32 path, within bounds derived from bf16's rounding;
/// 3. a training step and a short trajectory in bf16 against float32.
/// Machines without AMX-BF16 cannot run the kernel: there the fallback test checks that the head
/// stays float32, and the kernel suites are disabled.
@Suite("bf16 LM head fallback")
struct BF16LMHeadFallbackTests {
    @Test("setPrecision(.bf16) reports what runs: bf16 with AMX, f32 without; f32 switches back")
    func fallback() throws {
        let head = try FrozenLMHead(weight: (0..<(37 * 5)).map { Float($0 % 7) * 0.1 }, vocabSize: 37, hiddenSize: 5)
        #expect(head.precision == .f32)
        let got = head.setPrecision(.bf16)
        #expect(got == (FrozenLMHead.bf16Available ? .bf16 : .f32))
        #expect(head.precision == got)
        #expect(head.setPrecision(.f32) == .f32)
        #expect(head.precision == .f32)
    }

    @Test("the config records the precision; configs without it decode as nil (f32)")
    func configField() throws {
        var c = LPCConfig(hiddenSize: 4, vocabSize: 9)
        c.lmHeadPrecision = .bf16
        let json = try JSONEncoder().encode(c)
        #expect(String(decoding: json, as: UTF8.self).contains("\"lm_head_precision\":\"bf16\""))
        #expect(try JSONDecoder().decode(LPCConfig.self, from: json).lmHeadPrecision == .bf16)
        c.lmHeadPrecision = nil
        let old = try JSONEncoder().encode(c)
        #expect(!String(decoding: old, as: UTF8.self).contains("lm_head_precision"))
        #expect(try JSONDecoder().decode(LPCConfig.self, from: old).lmHeadPrecision == nil)
        #expect(c.summary.contains("lm_head=f32"))
    }
}

@Suite("bf16 LM head kernel (AMX)", .enabled(if: FrozenLMHead.bf16Available, "needs AMX-BF16"))
struct BF16LMHeadKernelTests {
    struct Problem {
        let V: Int, d: Int, T: Int
        let W: [Float], H: [Float], ids: [Int32]

        /// Embedding-like weights (σ 0.05·scale) and hidden states (σ 1·scale): logits of a few units.
        init(V: Int, d: Int, T: Int, seed: UInt64, scale: Double = 1) {
            var rng = LPCRandom(seed: seed)
            self.V = V; self.d = d; self.T = T
            W = (0..<(V * d)).map { _ in Float(rng.normal() * 0.05 * scale) }
            H = (0..<(T * d)).map { _ in Float(rng.normal() * scale * 3) }
            ids = (0..<T).map { _ in Int32(rng.next() % UInt64(V)) }
        }
    }

    /// (V, d, T): V around the 256 block (255, 256, 257, 1, …), d around 32, T around 16/32/384.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 3, 5), (255, 32, 16), (256, 32, 32), (257, 33, 17), (300, 31, 33), (513, 64, 47),
        (1000, 96, 100), (777, 50, 385), (2049, 16, 3),
    ]

    @Test("kernel vs reference twin on swept shapes (logp within 2e-5·(1+|s|max), M per element within 2⁻⁸·max|W|)",
          arguments: shapes.indices)
    func kernelVsTwin(_ index: Int) throws {
        let (V, d, T) = Self.shapes[index]
        let p = Problem(V: V, d: d, T: T, seed: UInt64(100 + index))
        let packed = try #require(BF16PackedHead(weight: p.W, vocabSize: V, hiddenSize: d))
        var lp = [Float](repeating: .nan, count: T), m: [Float]? = [Float](repeating: .nan, count: T * d)
        #expect(packed.rawTokenLogProbs(hidden: p.H, ids: p.ids, logProbs: &lp, expected: &m) == 0)
        var lpRef = [Float](repeating: 0, count: T), mRef = [Float](repeating: 0, count: T * d)
        #expect(BF16PackedHead.referenceTokenLogProbs(weight: p.W, vocabSize: V, hiddenSize: d, hidden: p.H, ids: p.ids,
                                                      logProbs: &lpRef, expected: &mRef) == 0)
        // Same bf16 inputs on both sides; what differs is float32 vs double accumulation (d terms),
        // the 2-ulp exp, and P rounded to bf16 before P·W (relative 2⁻⁹ per weight, so
        // |ΔM_k| ≤ 2⁻⁹·Σ_v p_v|W_vk| ≤ 2⁻⁹·max_v|W_vk|; we allow 2⁻⁸).
        let logitMax = Self.maxAbsLogit(p)
        for t in 0..<T {
            #expect(abs(lp[t] - lpRef[t]) <= 2e-5 * (1 + logitMax), "row \(t): \(lp[t]) vs \(lpRef[t])")
        }
        var colMax = [Float](repeating: 0, count: d)
        for v in 0..<V { for k in 0..<d { colMax[k] = max(colMax[k], abs(BF16PackedHead.roundToBF16(p.W[v * d + k]))) } }
        var worst: Float = 0
        for t in 0..<T {
            for k in 0..<d {
                let err = abs(m![t * d + k] - mRef[t * d + k])
                worst = max(worst, err / (colMax[k] + 1e-30))
                #expect(err <= colMax[k] / 256 + 1e-7, "M[\(t), \(k)]: \(m![t * d + k]) vs \(mRef[t * d + k])")
            }
        }
        // The bound is not vacuous: the kernel's M moves with the data (a constant M would fail).
        #expect(worst < 1.0 / 256)

        // Without `expected`: the same log-probs.
        var lp2 = [Float](repeating: .nan, count: T), none: [Float]? = nil
        #expect(packed.rawTokenLogProbs(hidden: p.H, ids: p.ids, logProbs: &lp2, expected: &none) == 0)
        #expect(lp2 == lp)
    }

    @Test("a token id outside the vocabulary is reported, not read")
    func badId() throws {
        let p = Problem(V: 40, d: 8, T: 3, seed: 9)
        let packed = try #require(BF16PackedHead(weight: p.W, vocabSize: 40, hiddenSize: 8))
        for bad: Int32 in [40, -1, .max] {
            var lp = [Float](repeating: 0, count: 3), m: [Float]? = [Float](repeating: 0, count: 24)
            #expect(packed.rawTokenLogProbs(hidden: p.H, ids: [0, bad, 1], logProbs: &lp, expected: &m) == -1)
            var lpRef = [Float](repeating: 0, count: 3), mRef = [Float](repeating: 0, count: 24)
            #expect(BF16PackedHead.referenceTokenLogProbs(weight: p.W, vocabSize: 40, hiddenSize: 8, hidden: p.H, ids: [0, bad, 1],
                                                          logProbs: &lpRef, expected: &mRef) == -1)
        }
    }

    static func maxAbsLogit(_ p: Problem) -> Float {
        var mx: Float = 0
        for t in 0..<p.T {
            for v in 0..<p.V {
                var s: Float = 0
                for k in 0..<p.d { s += p.H[t * p.d + k] * p.W[v * p.d + k] }
                mx = max(mx, abs(s))
            }
        }
        return mx
    }

    @Test("bf16 vs float32 head: log-probs and M within the bf16 rounding bound, threads 1 and 3",
          arguments: [1, 3])
    func bf16VsF32(_ threads: Int) throws {
        let (V, d, T) = (3001, 96, 211)
        let p = Problem(V: V, d: d, T: T, seed: 77)
        let f32 = try FrozenLMHead(weight: p.W, vocabSize: V, hiddenSize: d)
        let bf = try FrozenLMHead(weight: p.W, vocabSize: V, hiddenSize: d)
        #expect(bf.setPrecision(.bf16) == .bf16)
        bf.threads = threads
        var scratch: [Float] = []
        var lp32 = [Float](repeating: 0, count: T), m32 = [Float](repeating: 0, count: T * d)
        var lp16 = [Float](repeating: 0, count: T), m16 = [Float](repeating: 0, count: T * d)
        f32.tokenLogProbs(hidden: p.H, ids: p.ids, rows: T, logProbs: &lp32, expected: &m32, scratch: &scratch)
        bf.tokenLogProbs(hidden: p.H, ids: p.ids, rows: T, logProbs: &lp16, expected: &m16, scratch: &scratch)
        // Rounding h and w to bf16 (relative u = 2⁻⁹ each) moves a logit s_v by at most
        // δ_v ≈ 2u·Σ_k|h_k w_vk|; a log-prob by at most 2·max_v δ_v; each softmax weight by a factor
        // within exp(±2δ) and then by 2⁻⁹ (P in bf16), so |ΔM_k| ≤ ((e^{2δ}−1) + 2⁻⁹ + u)·max_v|W_vk|.
        let u: Double = 1.0 / 512
        var colMax = [Double](repeating: 0, count: d)
        for v in 0..<V { for k in 0..<d { colMax[k] = max(colMax[k], Double(abs(p.W[v * d + k]))) } }
        var worstRatio = 0.0
        for t in 0..<T {
            var delta = 0.0
            for v in 0..<V {
                var s = 0.0
                for k in 0..<d { s += abs(Double(p.H[t * d + k]) * Double(p.W[v * d + k])) }
                delta = max(delta, 2 * u * s)
            }
            let lpErr = abs(Double(lp16[t]) - Double(lp32[t]))
            #expect(lpErr <= 2 * delta + 1e-5, "row \(t): bf16 \(lp16[t]) vs f32 \(lp32[t]), bound \(2 * delta)")
            worstRatio = max(worstRatio, lpErr / (2 * delta))
            let factor = (exp(2 * delta) - 1) + 1.0 / 512 + u
            for k in 0..<d {
                let err = abs(Double(m16[t * d + k]) - Double(m32[t * d + k]))
                #expect(err <= factor * colMax[k] + 1e-6, "M[\(t), \(k)]")
            }
        }
        // Typical errors are far inside the worst case (random rounding errors cancel); a bf16 path
        // that silently ran in f32 would give 0 here, one that used the wrong rows far more than 1.
        #expect(worstRatio > 0 && worstRatio < 0.5)

        // sequenceLogProb follows the head's precision.
        let seq = bf.sequenceLogProb(hidden: p.H, ids: p.ids, rows: T, scratch: &scratch)
        #expect(abs(Double(seq) - lp16.reduce(0.0) { $0 + Double($1) }) < 1e-3)
    }

    /// A small model where the LM head dominates, trained in f32 and in bf16 from the same seed.
    static func training(_ precision: LMHeadPrecision, steps: Int) throws -> (losses: [Double], grad0: [Float]) {
        let (V, d, T) = (1031, 64, 23)
        var rng = LPCRandom(seed: 5)
        let W = (0..<(V * d)).map { _ in Float(rng.normal() * 0.05) }
        let head = try FrozenLMHead(weight: W, vocabSize: V, hiddenSize: d)
        #expect(head.setPrecision(precision) == precision)
        var batch = PreferenceBatch(hiddenSize: d)
        func r(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
        for i in 0..<4 {
            let tw = T - i, tl = T + i
            try batch.append(promptHidden: r(d), chosenLastHidden: r(d), rejectedLastHidden: r(d),
                             chosenTokens: r(tw * d), chosenIds: (0..<tw).map { _ in Int32(rng.next() % UInt64(V)) },
                             chosenReferenceLogProb: -160, rejectedTokens: r(tl * d),
                             rejectedIds: (0..<tl).map { _ in Int32(rng.next() % UInt64(V)) }, rejectedReferenceLogProb: -170)
        }
        var cfg = LPCConfig(hiddenSize: d, vocabSize: V)
        cfg.codes = 4
        cfg.rank = 8
        cfg.lmHeadPrecision = precision
        let run = try LPCTraining(model: cfg, optimizer: OptimizerConfig(totalSteps: steps), lmHead: head, seed: 3)
        var losses: [Double] = []
        var grad0: [Float] = []
        for s in 0..<steps {
            let out = try run.step([batch])
            losses.append(out.metrics.loss / Double(out.metrics.pairs))
            if s == 0 { grad0 = run.model.gradients }
        }
        return (losses, grad0)
    }

    @Test("training in bf16 follows float32: step-0 gradient within 2% (norm), 10-step losses within 1%")
    func trainingTrajectory() throws {
        let a = try Self.training(.f32, steps: 10), b = try Self.training(.bf16, steps: 10)
        var num = 0.0, den = 0.0
        for i in a.grad0.indices {
            num += Double(a.grad0[i] - b.grad0[i]) * Double(a.grad0[i] - b.grad0[i])
            den += Double(a.grad0[i]) * Double(a.grad0[i])
        }
        #expect(den > 0)
        #expect((num / den).squareRoot() < 0.02, "relative gradient difference \((num / den).squareRoot())")
        #expect(a.losses != b.losses)   // bf16 really ran
        for (x, y) in zip(a.losses, b.losses) {
            #expect(abs(x - y) <= 0.01 * abs(x) + 1e-4, "loss \(x) (f32) vs \(y) (bf16)")
        }
        #expect(a.losses.last! < a.losses.first!)
    }
}
