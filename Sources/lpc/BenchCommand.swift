import ArgumentParser
import Foundation
import Generation
import Graph
import ONNXImport
import Runtime
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// `lpc bench MODEL`: load time, prefill tokens/s, decode ms/token and the bandwidth roofline,
/// in the style of llama-bench. Random prompt ids; decode feeds back the argmax token.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure load time, prefill and decode speed, peak memory and the bandwidth roofline.",
        discussion: """
        Decode reads every weight once per token, so its floor is weight bytes ÷ read bandwidth;
        the bandwidth is measured in the same run by reading the loaded weights with --threads
        threads, before and after the timed runs; the higher of the two is used (the host's
        bandwidth drifts: the lower floor is the conservative one). Figures are medians over
        --runs runs. Release builds only (debug is ~80× slower).
        Examples:
          lpc bench models/SmolLM2-135M-Instruct --threads 2 --runs 5
          lpc bench model.onnx --prompt-tokens 128 --gen-tokens 64 --format json
          lpc bench model.onnx --prompt-tokens 1024 --gen-tokens 32   # decode at a long past
        """
    )

    @Argument(help: "An .onnx file, or a folder holding model.onnx.")
    var model: String

    @Option(help: "Prompt length for the prefill measurement.")
    var promptTokens: Int = 128

    @Option(help: "Tokens decoded one at a time after the prompt.")
    var genTokens: Int = 64

    @Option(help: "Threads for our kernels and OpenBLAS.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Repetitions; figures are medians.")
    var runs: Int = 3

    @Option(help: "Output format: table or json.")
    var format: OutputFormat = .table

    @Option(help: "Weight storage: auto (f32 at load, packed to f24 where exact by a background thread; the runs start once it is done and its time is reported), f32 (as exported), f24 (the same float32 values in 3 bytes where exact, else f32, packed at load), f16, bf16 or i16 (converted once at load; i16: int16 with a float32 scale per output, the closest to f32 at 2 bytes a weight).")
    var weights: WeightStorage = .auto

    @Flag(help: "Run the graph as exported, without optimization passes.")
    var noOptimize = false

    @Flag(help: "Compute logits for every prompt position at prefill (as onnxruntime does on the export); by default only the last position's, which is all generation needs.")
    var allLogits = false

    @Flag(help: "Print time per op type for one decode step (after the runs).")
    var profile = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case table, json }

    func validate() throws {
        guard promptTokens >= 1 else { throw ValidationError("--prompt-tokens must be at least 1") }
        guard genTokens >= 1 else { throw ValidationError("--gen-tokens must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        do { try bench() } catch { exitWithError(error) }
    }

    private func bench() throws {
        RuntimeThreads.setThreadCount(threads)
        var options = SessionOptions()
        options.optimize = !noOptimize
        options.weightStorage = weights
        if !allLogits { options.lastPositionOutputs = ["logits"] }

        // Load: parse + passes + plan, until the first token could run.
        let loadStart = now()
        let loaded = try ONNXLoader.load(path: model)
        let lm = try LanguageModel(graph: loaded.graph, options: options)
        let loadSeconds = now() - loadStart
        // `--weights auto`: the runs measure the packed state (a run adopts what is packed so far
        // anyway, with the same outputs); the packing's own time is reported beside the load.
        let packSeconds = lm.session.waitForBackgroundPacking()
        let weightBytes = lm.session.weightBytes
        let bytesPerToken = Self.weightBytesReadPerToken(lm.session.graph)
        let vocab = lm.vocabularySize ?? 1

        var generator = SystemRandomNumberGenerator()
        let prompt = (0..<promptTokens).map { _ in Int.random(in: 0..<vocab, using: &generator) }

        // Warm-up, untimed: the full prompt and a decode step, as tools/bench_vs_ort.py warms
        // onnxruntime up. It touches every weight page once and settles the allocations of a
        // prompt this long (an 8-token warm-up left the first timed prefill ~1.5x slower).
        do {
            var cache = lm.emptyCache()
            _ = try lm.forward(prompt, cache: &cache)
            _ = try lm.forward([1], cache: &cache)
        }

        let bandwidthBefore = lm.session.measureWeightReadBandwidth(threads: threads, repeats: 5)
        var prefillRates: [Double] = []
        var decodeMs: [Double] = []
        var decodePool = RuntimeThreads.PoolStatistics() // summed over the decode steps of every run
        for _ in 0..<runs {
            var cache = lm.emptyCache()
            let start = now()
            var logits = try lm.forward(prompt, cache: &cache)
            prefillRates.append(Double(promptTokens) / (now() - start))
            var token = argmaxLast(logits)
            RuntimeThreads.resetPoolStatistics()
            for _ in 0..<genTokens {
                let stepStart = now()
                logits = try lm.forward([token], cache: &cache)
                decodeMs.append((now() - stepStart) * 1000)
                token = argmaxLast(logits)
            }
            let pool = RuntimeThreads.poolStatistics()
            decodePool.callerWaitSeconds += pool.callerWaitSeconds
            decodePool.callerTaskSeconds += pool.callerTaskSeconds
            decodePool.workerTaskSeconds += pool.workerTaskSeconds
        }
        let decodeSteps = Double(runs * genTokens)

        let bandwidth = max(bandwidthBefore, lm.session.measureWeightReadBandwidth(threads: threads, repeats: 5))
        let decodeMedian = median(decodeMs)
        let floorMs = Double(bytesPerToken) / bandwidth * 1000
        let kvBytes = lm.kvCacheBytes(tokens: promptTokens + genTokens)
        let result = Result(
            model: model, threads: threads, weights: weights.rawValue, optimized: !noOptimize, all_logits: allLogits,
            nodes: lm.session.graph.nodes.count, prompt_tokens: promptTokens, gen_tokens: genTokens, runs: runs,
            load_s: loadSeconds, background_pack_s: packSeconds, prefill_tokens_per_s: median(prefillRates),
            decode_ms_per_token: decodeMedian, decode_ms_min: decodeMs.min() ?? 0, decode_ms_max: decodeMs.max() ?? 0,
            peak_rss_bytes: peakRSSBytes(), weight_bytes: weightBytes, weight_bytes_read_per_token: bytesPerToken,
            kv_cache_bytes: kvBytes,
            bandwidth_gb_per_s: bandwidth / 1e9, roofline_ms_per_token: floorMs,
            roofline_fraction: floorMs / decodeMedian,
            decode_pool_wait_ms_per_token: decodePool.callerWaitSeconds * 1000 / decodeSteps,
            decode_pool_caller_task_ms_per_token: decodePool.callerTaskSeconds * 1000 / decodeSteps,
            decode_pool_worker_task_ms_per_token: decodePool.workerTaskSeconds * 1000 / decodeSteps)
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        case .table:
            print(result.table)
        }
        if profile { try printProfile(lm, prompt: prompt) }
    }

    /// A prefill and decode steps with a timing trace: time per op type, largest first; for the
    /// matrix-vector products also per weight shape, with the bytes read and the rate reached.
    private func printProfile(_ lm: LanguageModel, prompt: [Int]) throws {
        var byOp: [String: (Double, Int)] = [:]
        var byWeight: [String: (Double, Int, Int)] = [:] // seconds, count, bytes per call
        let initializers = lm.session.graph.initializers
        var last = now()
        lm.session.trace = { node, _ in
            let t = now()
            byOp[node.qualifiedOpType, default: (0, 0)].0 += t - last
            byOp[node.qualifiedOpType, default: (0, 0)].1 += 1
            if node.domain == "lpc", ["MatMulKN", "MatMulNT", "MatMulKNGroup"].contains(node.opType), node.inputs.count > 1 {
                let weights = node.inputs.dropFirst().compactMap { initializers[$0] }
                let key = "\(node.opType) " + weights.map { "\($0.dtype)\($0.shape)" }.joined(separator: "+")
                let bytes = weights.reduce(0) { $0 + $1.byteCount }
                byWeight[key, default: (0, 0, bytes)].0 += t - last
                byWeight[key, default: (0, 0, bytes)].1 += 1
            }
            last = t
        }
        func report(_ title: String, steps: Int) {
            print(title)
            let total = byOp.values.reduce(0) { $0 + $1.0 }
            for (op, (seconds, count)) in byOp.sorted(by: { $0.value.0 > $1.value.0 }).prefix(16) {
                let padded = op.padding(toLength: 24, withPad: " ", startingAt: 0)
                print("  \(padded) " + String(format: "%9.3f ms  %6d nodes", seconds * 1000 / Double(steps), count / steps))
            }
            print("  " + "total".padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: " %9.3f ms", total * 1000 / Double(steps)))
            for (shape, (seconds, count, bytes)) in byWeight.sorted(by: { $0.value.0 > $1.value.0 }) {
                let padded = shape.padding(toLength: 60, withPad: " ", startingAt: 0)
                print("  \(padded) " + String(format: "%9.3f ms  %4d calls  %6.1f GB/s", seconds * 1000 / Double(steps),
                                                count / steps, Double(bytes * count) / seconds / 1e9))
            }
            let pool = RuntimeThreads.poolStatistics()
            if pool.jobs > 0 {
                let perStep = { (seconds: Double) in String(format: "%.3f ms", seconds * 1000 / Double(steps)) }
                print("  thread pool: \(pool.jobs / steps) jobs; tasks: caller \(pool.callerTasks / steps) in \(perStep(pool.callerTaskSeconds)), "
                      + "workers \(pool.workerTasks / steps) in \(perStep(pool.workerTaskSeconds)); "
                      + "the caller waited \(perStep(pool.callerWaitSeconds)) at job ends for workers still running")
            }
            byOp = [:]
            byWeight = [:]
            RuntimeThreads.resetPoolStatistics()
        }
        var cache = lm.emptyCache()
        RuntimeThreads.resetPoolStatistics()
        last = now()
        _ = try lm.forward(prompt, cache: &cache)
        report("prefill of \(prompt.count) tokens, by op type:", steps: 1)
        for _ in 0..<5 {
            last = now()
            _ = try lm.forward([1], cache: &cache)
        }
        report("per decode step (mean of 5), by op type:", steps: 5)
        // The same at a long past: what grows with the context.
        var long = lm.emptyCache()
        _ = try lm.forward(Array(repeating: prompt[0], count: 1024), cache: &long)
        byOp = [:]
        byWeight = [:]
        RuntimeThreads.resetPoolStatistics()
        for _ in 0..<5 {
            last = now()
            _ = try lm.forward([1], cache: &long)
        }
        lm.session.trace = nil
        report("per decode step at past 1024 (mean of 5), by op type:", steps: 5)
    }

    /// Weight bytes one decode step reads: every initializer, except those only read as a Gather's
    /// table (an embedding kept in float32 for its Gather when `--weights f16` converted the tied
    /// LM head's copy), of which a step reads one row per token.
    static func weightBytesReadPerToken(_ graph: Graph) -> Int {
        var onlyGathered: [String: Bool] = [:]
        for node in graph.nodes {
            for (index, input) in node.inputs.enumerated() where graph.initializers[input] != nil {
                let table = node.domain.isEmpty && node.opType == "Gather" && index == 0
                onlyGathered[input] = (onlyGathered[input] ?? true) && table
            }
        }
        return graph.initializers.reduce(0) { total, entry in
            let (name, tensor) = entry
            guard onlyGathered[name] == true, let rows = tensor.shape.first, rows > 0 else { return total + tensor.byteCount }
            return total + tensor.byteCount / rows
        }
    }

    private func argmaxLast(_ logits: Tensor) -> Int {
        let vocab = logits.shape.last ?? 1
        let row = logits.pointer(Float.self) + (logits.count - vocab)
        var best = 0
        for i in 1..<vocab where row[i] > row[best] { best = i }
        return best
    }

    struct Result: Encodable {
        var model: String
        var threads: Int
        var weights: String
        var optimized: Bool
        var all_logits: Bool
        var nodes: Int
        var prompt_tokens: Int
        var gen_tokens: Int
        var runs: Int
        var load_s: Double
        /// `--weights auto`: seconds the background f24 packing ran after load (nil without it).
        var background_pack_s: Double?
        var prefill_tokens_per_s: Double
        var decode_ms_per_token: Double
        var decode_ms_min: Double
        var decode_ms_max: Double
        var peak_rss_bytes: Int
        var weight_bytes: Int
        /// What the roofline divides: weight_bytes less the tables only gathered from (one row per token).
        var weight_bytes_read_per_token: Int
        var kv_cache_bytes: Int
        var bandwidth_gb_per_s: Double
        var roofline_ms_per_token: Double
        var roofline_fraction: Double
        /// Per decode step (means): the caller's wait at the end of pool jobs for workers still
        /// running a task (one thread idle), and task time on each side (the workers' summed).
        var decode_pool_wait_ms_per_token: Double
        var decode_pool_caller_task_ms_per_token: Double
        var decode_pool_worker_task_ms_per_token: Double

        var table: String {
            let mb = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1e6) }
            let rows: [(String, String)] = [
                ("model", model),
                ("threads / weights / optimized", "\(threads) / \(weights) / \(optimized) (\(nodes) nodes)"),
                ("load", String(format: "%.3f s", load_s)
                    + (background_pack_s.map { String(format: " (then f24 packing in the background: %.3f s)", $0) } ?? "")),
                ("prefill \(prompt_tokens) tokens", String(format: "%.1f tokens/s", prefill_tokens_per_s)),
                ("decode (\(gen_tokens) × \(runs))", String(format: "%.2f ms/token (min %.2f, max %.2f)",
                                                        decode_ms_per_token, decode_ms_min, decode_ms_max)),
                ("peak RSS", mb(peak_rss_bytes)),
                ("weights / read per token / KV", "\(mb(weight_bytes)) / \(mb(weight_bytes_read_per_token)) / \(mb(kv_cache_bytes))"),
                ("read bandwidth", String(format: "%.1f GB/s", bandwidth_gb_per_s)),
                ("roofline", String(format: "%.2f ms/token → %.0f%% reached", roofline_ms_per_token, roofline_fraction * 100)),
                ("decode thread pool", String(format: "tasks %.2f ms/token on the caller, %.2f on workers; the caller waited %.2f at job ends",
                                              decode_pool_caller_task_ms_per_token, decode_pool_worker_task_ms_per_token,
                                              decode_pool_wait_ms_per_token)),
            ]
            let width = rows.map(\.0.count).max() ?? 0
            return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }
                .joined(separator: "\n")
        }
    }
}

extension WeightStorage: ExpressibleByArgument {}

private func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

private func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Peak resident set size of this process: VmHWM from /proc (getrusage's ru_maxrss survives
/// exec, so a child of a big process would report its parent's peak).
private func peakRSSBytes() -> Int {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kib = Int(line.split(separator: " ").dropFirst().first ?? "") {
        return kib * 1024
    }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Int(usage.ru_maxrss) * 1024
}
