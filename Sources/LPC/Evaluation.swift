import Foundation

/// Cached backbone features of preference pairs, addressed by index: the trainer's and the
/// evaluator's view of a data set. The data/feature module provides the real one (JSONL → template
/// → tokens → backbone features on disk); `InMemoryPairFeatures` holds a batch in memory.
public protocol PairFeatureSource: AnyObject {
    /// d of the features.
    var hiddenSize: Int { get }
    /// Pairs available (after the loader's skips).
    var pairCount: Int { get }
    /// A batch of the given pairs, in that order.
    func batch(_ pairs: [Int]) throws -> PreferenceBatch
    /// Pair i's `source` label, nil when the data has none.
    func source(ofPair i: Int) -> String?
    /// Pair i's line in its data file (1-based), nil when unknown (default).
    func line(ofPair i: Int) -> Int?
}

extension PairFeatureSource {
    public func line(ofPair i: Int) -> Int? { nil }
}

extension CachedPairFeatures {
    /// Pairs the loader skipped leave gaps, so the pair index and the line can differ.
    public func line(ofPair i: Int) -> Int? { featureSet.pairs[i].line }
}

/// Features held in one `PreferenceBatch` (tests, benchmarks, small sets).
public final class InMemoryPairFeatures: PairFeatureSource {
    public let all: PreferenceBatch
    public let sources: [String?]

    public init(_ all: PreferenceBatch, sources: [String?]? = nil) throws {
        if let sources, sources.count != all.pairCount {
            throw LPCError.invalidBatch("\(sources.count) source labels for \(all.pairCount) pairs")
        }
        self.all = all
        self.sources = sources ?? [String?](repeating: nil, count: all.pairCount)
    }

    public var hiddenSize: Int { all.hiddenSize }
    public var pairCount: Int { all.pairCount }
    public func batch(_ pairs: [Int]) throws -> PreferenceBatch { try all.subset(pairs) }
    public func source(ofPair i: Int) -> String? { sources[i] }
}

/// Held-out results under one way of choosing the code.
public struct CodeChoiceResult: Sendable, Equatable {
    public var pairs = 0
    /// Σ per-pair accuracy: 1 if r_w > r_l, ½ on a tie (|Δ| ≤ 1e-4 nats), else 0.
    var correct = 0.0
    public var ties = 0
    var margin = 0.0, chosenReward = 0.0, rejectedReward = 0.0

    /// Preference accuracy, ties counting ½.
    public var accuracy: Double { pairs > 0 ? correct / Double(pairs) : .nan }
    /// Mean implicit-reward margin r_w − r_l (scale β, τ for IPO; summed log-probs).
    public var margins: Double { pairs > 0 ? margin / Double(pairs) : .nan }
    public var rewardsChosen: Double { pairs > 0 ? chosenReward / Double(pairs) : .nan }
    public var rewardsRejected: Double { pairs > 0 ? rejectedReward / Double(pairs) : .nan }

    mutating func add(_ scores: PairScores, pair i: Int, accuracy a: Float) {
        pairs += 1
        correct += Double(a)
        if a == 0.5 { ties += 1 }
        let w = Double(scores.chosenRewards[i]), l = Double(scores.rejectedRewards[i])
        margin += w - l
        chosenReward += w
        rejectedReward += l
    }
}

/// One evaluated pair (`lpc eval --pairs-out`): which codes the prior and the posterior pick for it,
/// and its rewards and accuracy under each code choice. For analyses across pairs (code ↔ source
/// association, per-pair agreement between runs).
public struct PairRecord: Sendable, Equatable {
    /// Index of the pair in the evaluated set (after the loader's skips).
    public var pair: Int
    /// Line in the data file, when the source knows it.
    public var line: Int?
    public var source: String?
    /// argmax p(z|x) and argmax q(z|x, y_w ≻ y_l); nil without LPC.
    public var priorCode: Int?
    public var posteriorCode: Int?
    /// Per choice name ("prior", "posterior", "none"): (r_chosen, r_rejected) and accuracy (1, ½, 0).
    public var rewards: [String: (chosen: Double, rejected: Double)] = [:]
    public var correct: [String: Double] = [:]

    public static func == (a: PairRecord, b: PairRecord) -> Bool {
        a.pair == b.pair && a.line == b.line && a.source == b.source && a.priorCode == b.priorCode
            && a.posteriorCode == b.posteriorCode && a.correct == b.correct
            && a.rewards.mapValues { [$0.chosen, $0.rejected] } == b.rewards.mapValues { [$0.chosen, $0.rejected] }
    }

    /// One JSON object (a line of `--pairs-out`).
    public var json: [String: Any] {
        var o: [String: Any] = [
            "pair": pair, "line": line.map { $0 as Any } ?? NSNull(), "source": source.map { $0 as Any } ?? NSNull(),
            "prior_code": priorCode.map { $0 as Any } ?? NSNull(),
            "posterior_code": posteriorCode.map { $0 as Any } ?? NSNull(),
        ]
        o["rewards"] = rewards.mapValues { [jsonNumber($0.chosen), jsonNumber($0.rejected)] }
        o["correct"] = correct
        return o
    }
}

/// Per-`source` accuracy and code histograms.
public struct SourceResult: Sendable, Equatable {
    public var pairs = 0
    /// Keyed by choice name ("none", "prior", "posterior").
    public var choices: [String: CodeChoiceResult] = [:]
    /// Pairs per code index: argmax of the prior / of the posterior (empty without LPC).
    public var priorCodes: [Int]
    public var posteriorCodes: [Int]

    init(codes: Int) {
        priorCodes = [Int](repeating: 0, count: codes)
        posteriorCodes = priorCodes
    }
}

/// What `lpc eval` reports and what the trainer logs under `eval/`.
public struct EvaluationReport: Sendable {
    /// The code choices evaluated, in report order: "prior", "posterior", "none" with LPC; "none" without.
    public static func choiceNames(useLPC: Bool) -> [String] { useLPC ? ["prior", "posterior", "none"] : ["none"] }

    public var config: LPCConfig
    public var pairs = 0
    public var choices: [String: CodeChoiceResult] = [:]
    /// Metrics under the primary choice (prior's code with LPC, no code without), merged over the
    /// whole set: TRL names + kl, entropy/prior, entropy/posterior, codes/perplexity. `loss` here
    /// excludes λ·KL (evaluation).
    public var metrics: LPCMetrics
    /// Pairs per code index (argmax of the prior / posterior); empty without LPC.
    public var priorCodes: [Int]
    public var posteriorCodes: [Int]
    /// Per `source` label, when the data has them (sorted by name in outputs).
    public var sources: [String: SourceResult] = [:]
    /// One record per pair, in pair order, when asked for (`evaluatePreferences(…, records: true)`).
    public var pairRecords: [PairRecord] = []

    /// The pair records as JSON Lines (one object per line, keys sorted).
    public func pairRecordsJSONL() throws -> Data {
        var out = Data()
        for r in pairRecords {
            out += try JSONSerialization.data(withJSONObject: r.json, options: [.sortedKeys, .withoutEscapingSlashes])
            out += Data("\n".utf8)
        }
        return out
    }

    public var useLPC: Bool { config.useLPC }
    public var primaryChoice: String { useLPC ? "prior" : "none" }

    /// Flat numbers for the metrics log: `eval/accuracy/<choice>`, `eval/ties/<choice>`,
    /// `eval/rewards/margins/<choice>`, and the primary choice's TRL/LPC metrics as `eval/<name>`.
    public var values: [String: Double] {
        var v: [String: Double] = ["eval/pairs": Double(pairs)]
        for (name, r) in choices {
            v["eval/accuracy/\(name)"] = r.accuracy
            v["eval/ties/\(name)"] = Double(r.ties)
            v["eval/rewards/margins/\(name)"] = r.margins
        }
        for (k, x) in metrics.values { v["eval/" + k] = x }
        return v
    }

    /// JSON-ready dictionary (`lpc eval --format json`).
    public var json: [String: Any] {
        func choiceJSON(_ r: CodeChoiceResult) -> [String: Any] {
            ["pairs": r.pairs, "accuracy": jsonNumber(r.accuracy), "ties": r.ties, "rewards/margins": jsonNumber(r.margins),
             "rewards/chosen": jsonNumber(r.rewardsChosen), "rewards/rejected": jsonNumber(r.rewardsRejected)]
        }
        var out: [String: Any] = [
            "pairs": pairs, "config": config.summary, "use_lpc": useLPC, "primary": primaryChoice,
            "accuracy": accuracies(choices),
            "choices": choices.mapValues(choiceJSON),
            "metrics": metrics.values.mapValues(finite),
        ]
        if useLPC {
            out["codes"] = ["prior": priorCodes, "posterior": posteriorCodes]
        }
        if !sources.isEmpty {
            out["sources"] = sources.mapValues { s -> [String: Any] in
                var o: [String: Any] = [
                    "pairs": s.pairs,
                    "accuracy": accuracies(s.choices),
                ]
                if useLPC { o["codes"] = ["prior": s.priorCodes, "posterior": s.posteriorCodes] }
                return o
            }
        }
        return out
    }

    func accuracies(_ c: [String: CodeChoiceResult]) -> [String: Any] {
        var out: [String: Any] = [:]
        for (name, r) in c { out[name] = jsonNumber(r.accuracy) }
        return out
    }

    /// A human-readable table (`lpc eval --format table`).
    public var table: String {
        let names = Self.choiceNames(useLPC: useLPC)
        var lines = ["\(pairs) pairs · \(config.summary)", ""]
        lines.append(pad("code", 10) + pad("accuracy", 10) + pad("ties", 7) + pad("margin", 10) + pad("r_chosen", 10) + "r_rejected")
        for n in names {
            guard let r = choices[n] else { continue }
            lines.append(pad(n, 10) + pad(fmt(r.accuracy), 10) + pad("\(r.ties)", 7) + pad(fmt(r.margins), 10)
                         + pad(fmt(r.rewardsChosen), 10) + fmt(r.rewardsRejected))
        }
        lines.append("(accuracy: r_chosen > r_rejected, ties |Δ| ≤ 1e-4 nats count ½; rewards scale·Σ log-ratio, scale \(config.rewardScale))")
        let m = metrics.values
        if useLPC {
            lines.append("")
            lines.append("kl \(fmt(m["kl"] ?? .nan))  entropy/prior \(fmt(m["entropy/prior"] ?? .nan))  entropy/posterior \(fmt(m["entropy/posterior"] ?? .nan))  codes/perplexity \(fmt(m["codes/perplexity"] ?? .nan))")
            lines.append("codes (prior argmax):     \(histogram(priorCodes))")
            lines.append("codes (posterior argmax): \(histogram(posteriorCodes))")
        }
        if !sources.isEmpty {
            lines.append("")
            lines.append(pad("source", 16) + pad("pairs", 7) + names.map { pad("acc/\($0)", 15) }.joined()
                         + (useLPC ? "prior codes" : ""))
            for name in sources.keys.sorted() {
                let s = sources[name]!
                var line = pad(name, 16) + pad("\(s.pairs)", 7)
                line += names.map { pad(fmt(s.choices[$0]?.accuracy ?? .nan), 15) }.joined()
                if useLPC { line += histogram(s.priorCodes) }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Non-zero bins as "k:count" pairs, most used first.
    func histogram(_ h: [Int]) -> String {
        let used = h.indices.filter { h[$0] > 0 }.sorted { h[$0] > h[$1] || (h[$0] == h[$1] && $0 < $1) }
        return used.isEmpty ? "-" : used.map { "\($0):\(h[$0])" }.joined(separator: " ")
    }
}

/// A JSON value for a Double: the number, or null when not finite. (Not named `finite`: inside an
/// untyped array literal Swift picks Glibc's `finite(Double) -> Int32` instead, which wrote every
/// per-pair reward as 1.)
fileprivate func jsonNumber(_ x: Double) -> Any {
    if x.isFinite { return NSNumber(value: x) }
    return NSNull()
}
fileprivate func fmt(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "n/a" }
fileprivate func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

/// Held-out preference evaluation of a head on cached features: accuracy with the prior's code,
/// the posterior's code and no code (ties ½), reward margins, KL, code usage, per-source results.
/// Deterministic (no noise, no parameter change); costs one LM-head forward per choice per pair.
/// `records: true` also keeps one `PairRecord` per pair (codes, rewards, accuracy per choice).
public func evaluatePreferences(_ model: LPCModel, on data: PairFeatureSource, batchSize: Int = 16,
                                records: Bool = false) throws -> EvaluationReport {
    guard batchSize >= 1 else { throw LPCError.invalidConfig("evaluation batch size must be ≥ 1, got \(batchSize)") }
    guard data.hiddenSize == model.config.hiddenSize else {
        throw LPCError.invalidBatch("evaluation features have d = \(data.hiddenSize) but the head has d = \(model.config.hiddenSize)")
    }
    let K = model.config.codes, lpc = model.config.useLPC
    let names = EvaluationReport.choiceNames(useLPC: lpc)
    let choiceOf: [String: CodeChoice] = ["prior": .priorArgmax, "posterior": .posteriorArgmax, "none": .none]
    var report = EvaluationReport(config: model.config, metrics: LPCMetrics(codes: K),
                                  priorCodes: lpc ? [Int](repeating: 0, count: K) : [],
                                  posteriorCodes: lpc ? [Int](repeating: 0, count: K) : [])
    for n in names { report.choices[n] = CodeChoiceResult() }
    var start = 0
    while start < data.pairCount {
        let ids = Array(start..<min(data.pairCount, start + batchSize))
        let batch = try data.batch(ids)
        var batchRecords = ids.map { PairRecord(pair: $0, line: data.line(ofPair: $0), source: data.source(ofPair: $0)) }
        for n in names {
            let scores = try model.evaluate(batch, code: choiceOf[n]!)
            let acc = scores.accuracy
            if n == report.primaryChoice { report.metrics.merge(scores.metrics) }
            for (i, pair) in ids.enumerated() {
                report.choices[n]!.add(scores, pair: i, accuracy: acc[i])
                let label = data.source(ofPair: pair)
                if let label {
                    var s = report.sources[label] ?? SourceResult(codes: lpc ? K : 0)
                    if n == names[0] { s.pairs += 1 }
                    s.choices[n, default: CodeChoiceResult()].add(scores, pair: i, accuracy: acc[i])
                    if n == "prior" { s.priorCodes[scores.codes[i]] += 1 }
                    if n == "posterior" { s.posteriorCodes[scores.codes[i]] += 1 }
                    report.sources[label] = s
                }
                if n == "prior" { report.priorCodes[scores.codes[i]] += 1 }
                if n == "posterior" { report.posteriorCodes[scores.codes[i]] += 1 }
                if records {
                    if n == "prior" { batchRecords[i].priorCode = scores.codes[i] }
                    if n == "posterior" { batchRecords[i].posteriorCode = scores.codes[i] }
                    batchRecords[i].rewards[n] = (Double(scores.chosenRewards[i]), Double(scores.rejectedRewards[i]))
                    batchRecords[i].correct[n] = Double(acc[i])
                }
            }
        }
        if records { report.pairRecords += batchRecords }
        start += batchSize
    }
    report.pairs = data.pairCount
    return report
}
