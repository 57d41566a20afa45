import Foundation
import Testing
@testable import LPC

/// Opt-in throughput probe at SmolLM2-135M scale (d 576, vocab 49152, K 32, r 64), random features.
/// Prints pairs/s; asserts nothing about time. Run in release:
///   LPC_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter ThroughputTests
@Suite("Throughput probe", .serialized, .enabled(if: ProcessInfo.processInfo.environment["LPC_BENCH"] != nil))
struct ThroughputTests {
    @Test("training step throughput at SmolLM2 scale")
    func trainingStep() throws {
        let env = ProcessInfo.processInfo.environment
        let d = 576, V = 49152
        let pairs = Int(env["LPC_BENCH_PAIRS"] ?? "") ?? 8, T = Int(env["LPC_BENCH_TOKENS"] ?? "") ?? 64
        var rng = LPCRandom(seed: 1)
        let W = (0..<(V * d)).map { _ in Float(rng.normal() * 0.05) }
        let head = try FrozenLMHead(weight: W, vocabSize: V, hiddenSize: d)
        var batch = PreferenceBatch(hiddenSize: d)
        func r(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
        for _ in 0..<pairs {
            try batch.append(promptHidden: r(d), chosenLastHidden: r(d), rejectedLastHidden: r(d),
                             chosenTokens: r(T * d), chosenIds: (0..<T).map { _ in Int32(rng.next() % UInt64(V)) },
                             chosenReferenceLogProb: -300, rejectedTokens: r(T * d),
                             rejectedIds: (0..<T).map { _ in Int32(rng.next() % UInt64(V)) }, rejectedReferenceLogProb: -300)
        }
        let precisions: [LMHeadPrecision] = FrozenLMHead.bf16Available ? [.f32, .bf16] : [.f32]
        for precision in precisions {
            #expect(head.setPrecision(precision) == precision)
            for useLPC in [true, false] {
                var cfg = LPCConfig(hiddenSize: d, vocabSize: V)
                cfg.useLPC = useLPC
                let run = try LPCTraining(model: cfg, optimizer: OptimizerConfig(totalSteps: 100), lmHead: head, seed: 1)
                try run.step([batch])  // warm-up (workspace allocation)
                var times: [Double] = []
                for _ in 0..<5 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try run.step([batch])
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                times.sort()
                let median = times[times.count / 2]
                let flops = 4.0 * Double(2 * pairs * T) * Double(d) * Double(V)
                print("[bench] lm_head=\(precision.rawValue) lpc=\(useLPC) \(pairs) pairs × 2 × \(T) tokens: median step \(String(format: "%.3f", median)) s, "
                      + "\(String(format: "%.2f", Double(pairs) / median)) pairs/s, LM head \(String(format: "%.0f", flops / median / 1e9)) GFLOP/s, threads \(head.threads)")
            }
        }
    }

    @Test("components of the LM head forward")
    func components() throws {
        let d = 576, V = 49152, C = 256
        var rng = LPCRandom(seed: 1)
        let W = (0..<(V * d)).map { _ in Float(rng.normal() * 0.05) }
        let H = (0..<(C * d)).map { _ in Float(rng.normal()) }
        var logits = [Float](repeating: 0, count: C * V)
        var M = [Float](repeating: 0, count: C * d)
        func time(_ label: String, flops: Double, _ body: () -> Void) {
            body()
            var ts: [Double] = []
            for _ in 0..<5 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                ts.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            ts.sort()
            print("[probe] \(label): \(String(format: "%.4f", ts[2])) s, \(String(format: "%.1f", flops / ts[2] / 1e9)) GFLOP/s")
        }
        let f = 2.0 * Double(C) * Double(d) * Double(V)
        let S = 1024
        let a = [Float](repeating: 0.5, count: S * S)
        var cc = [Float](repeating: 0, count: S * S)
        time("calibration sgemm 1024³", flops: 2.0 * Double(S * S * S)) {
            gemm(m: S, n: S, k: S, a, lda: S, a, ldb: S, &cc, ldc: S)
        }
        time("logits sgemm H·Wᵀ", flops: f) {
            gemm(transB: true, m: C, n: V, k: d, H, lda: d, W, ldb: d, &logits, ldc: V)
        }
        time("M sgemm P·W", flops: f) {
            gemm(m: C, n: d, k: V, logits, lda: V, W, ldb: d, &M, ldc: d)
        }
        time("exp rows (serial)", flops: Double(C * V)) {
            logits.withUnsafeMutableBufferPointer { b in
                for i in 0..<C { _ = expShiftedRow(b.baseAddress! + i * V, count: V) }
            }
        }
        let head = try FrozenLMHead(weight: W, vocabSize: V, hiddenSize: d)
        var scratch: [Float] = []
        var lp = [Float](repeating: 0, count: C)
        let ids = [Int32](repeating: 3, count: C)
        for (threads, chunk) in [(1, 85), (2, 85), (2, 32), (2, 256)] {
            head.threads = threads
            head.rowsPerChunk = chunk
            if H.count < chunk * d { continue }
            time("tokenLogProbs with M, threads \(threads), chunk \(chunk)", flops: 2 * f) {
                head.tokenLogProbs(hidden: H, ids: ids, rows: C, logProbs: &lp, expected: &M, scratch: &scratch)
            }
        }
    }
}
