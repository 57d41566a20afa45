import Foundation
import TensorCore
import TestSupport
@testable import LPC

/// The PyTorch goldens of tools/lpc_reference.py (Tests/Fixtures/lpc/).
enum Golden {
    static func file(_ name: String) throws -> SafeTensors.File {
        let path = Fixtures.path("lpc/" + name)
        guard FileManager.default.fileExists(atPath: path) else {
            throw FixtureError("fixture lpc/\(name) is missing; regenerate with tools/lpc_reference.py")
        }
        return try SafeTensors.read(path)
    }

    static func manifest() throws -> [String: Any] {
        try Fixtures.json("lpc/manifest.json") as! [String: Any]
    }

    struct Problem {
        var d: Int, vocab: Int, K: Int, r: Int
        var lmHead: FrozenLMHead
        var batch: PreferenceBatch
        var noise: GumbelNoise
    }

    static func problem() throws -> Problem {
        let m = try manifest()
        let dims = m["dims"] as! [String: Any]
        let d = dims["d"] as! Int, V = dims["vocab"] as! Int, K = dims["K"] as! Int, r = dims["r"] as! Int
        let f = try file("inputs.safetensors")
        let W = try f.tensor("lm_head.weight")
        let hx = try f.tensor("hx").array(Float.self), hw = try f.tensor("hw").array(Float.self)
        let hl = try f.tensor("hl").array(Float.self), H = try f.tensor("H").array(Float.self)
        let ids = try f.tensor("ids").ints(), seq = try f.tensor("seq").ints()
        let ref = try f.tensor("ref").array(Float.self)
        let B = hx.count / d
        var batch = PreferenceBatch(hiddenSize: d)
        func rows(_ s: Int) -> [Int] { seq.indices.filter { seq[$0] == s } }
        for i in 0..<B {
            let cw = rows(2 * i), cl = rows(2 * i + 1)
            try batch.append(promptHidden: Array(hx[i * d..<(i + 1) * d]),
                             chosenLastHidden: Array(hw[i * d..<(i + 1) * d]),
                             rejectedLastHidden: Array(hl[i * d..<(i + 1) * d]),
                             chosenTokens: cw.flatMap { H[$0 * d..<($0 + 1) * d] }, chosenIds: cw.map { Int32(ids[$0]) },
                             chosenReferenceLogProb: ref[2 * i],
                             rejectedTokens: cl.flatMap { H[$0 * d..<($0 + 1) * d] }, rejectedIds: cl.map { Int32(ids[$0]) },
                             rejectedReferenceLogProb: ref[2 * i + 1])
        }
        let noise = GumbelNoise(posterior: try f.tensor("noise.post").array(Float.self),
                                prior: try f.tensor("noise.prior").array(Float.self))
        return Problem(d: d, vocab: V, K: K, r: r, lmHead: try FrozenLMHead(weight: W), batch: batch, noise: noise)
    }

    static func config(case entry: [String: Any], problem p: Problem) -> LPCConfig {
        let c = entry["config"] as! [String: Any]
        var cfg = LPCConfig(hiddenSize: p.d, vocabSize: p.vocab)
        cfg.codes = p.K
        cfg.rank = p.r
        cfg.objective = Objective(rawValue: c["objective"] as! String)!
        cfg.useLPC = c["use_lpc"] as! Bool
        cfg.priorCode = PriorCode(rawValue: c["prior_code"] as! String)!
        cfg.klWeight = Float(c["kl_weight"] as! Double)
        cfg.ipoTau = Float(c["ipo_tau"] as! Double)
        cfg.logRatio = LogRatioReduction(rawValue: entry["reduction"] as! String)!
        return cfg
    }

    /// A model with the golden parameters of `paramsFile` (only the names this config has).
    static func model(_ cfg: LPCConfig, problem p: Problem, params paramsFile: String) throws -> LPCModel {
        let model = try LPCModel(config: cfg, lmHead: p.lmHead, seed: 0)
        let f = try file(paramsFile)
        for spec in model.layout.specs {
            let t = try f.tensor(spec.name)
            guard t.shape == spec.shape else { throw FixtureError("\(spec.name): golden shape \(t.shape) vs \(spec.shape)") }
            try model.setParameter(spec.name, t.array(Float.self))
        }
        return model
    }
}

/// ‖a − e‖₂ / ‖e‖₂ (Frobenius norm over the whole tensor); ‖a‖ when e = 0.
func relativeError(_ a: [Float], _ e: [Double]) -> Double {
    precondition(a.count == e.count, "\(a.count) vs \(e.count)")
    var num = 0.0, den = 0.0
    for i in a.indices {
        let diff = Double(a[i]) - e[i]
        num += diff * diff
        den += e[i] * e[i]
    }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
}

func relativeError(_ a: Double, _ e: Double) -> Double {
    abs(a - e) / max(abs(e), 1e-12)
}
