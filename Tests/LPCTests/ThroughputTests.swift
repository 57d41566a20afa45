import Foundation
import Testing
@testable import LPC

/// Opt-in throughput probe at SmolLM2-135M scale (d 576, vocab 49152, K 32, r 64), random features.
/// Prints pairs/s; asserts nothing about time. Run in release:
///   LPC_BENCH=1 swift test -c release --filter ThroughputTests
@Suite("Throughput probe", .enabled(if: ProcessInfo.processInfo.environment["LPC_BENCH"] != nil))
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
            print("[bench] lpc=\(useLPC) \(pairs) pairs × 2 × \(T) tokens: median step \(String(format: "%.3f", median)) s, "
                  + "\(String(format: "%.2f", Double(pairs) / median)) pairs/s, LM head \(String(format: "%.0f", flops / median / 1e9)) GFLOP/s, threads \(head.threads)")
        }
    }
}
