import Foundation
import Testing
import TensorCore
import TestSupport
@testable import LPC

/// Step-0 loss, metrics and every gradient, and 20-step AdamW trajectories, against PyTorch
/// float64 autograd (tools/lpc_reference.py). Swift computes in float32.
@Suite("LPC vs PyTorch goldens")
struct GoldenTests {
    static let gradCases = ["dpo_lpc", "dpo_nolpc", "simpo_lpc", "simpo_nolpc", "ipo_lpc", "ipo_nolpc",
                            "ipo_sum_lpc", "dpo_lpc_priormean"]
    static let trajectoryCases = ["dpo_lpc", "dpo_nolpc", "simpo_lpc", "simpo_nolpc", "ipo_lpc", "ipo_nolpc"]

    /// Tolerance: loss and metrics |a − e|/|e| ≤ 1e-4; each gradient tensor
    /// ‖g − g_torch‖₂/‖g_torch‖₂ ≤ 1e-4 (Frobenius norm per tensor).
    @Test("step-0 loss, metrics and every gradient within 1e-4 relative", arguments: gradCases)
    func stepZero(_ name: String) throws {
        let p = try Golden.problem()
        let manifest = try Golden.manifest()
        let entry = (manifest["cases"] as! [String: Any])[name] as! [String: Any]
        let grad = manifest["grad"] as! [String: Any]
        let cfg = Golden.config(case: entry, problem: p)
        let model = try Golden.model(cfg, problem: p, params: "params_grad.safetensors")
        let gold = try Golden.file("grad_\(name).safetensors")
        let settings = StepSettings(g: Float(grad["g"] as! Double), temperature: Float(grad["tau"] as! Double))
        let metrics = try model.forwardBackward(p.batch, noise: p.noise, settings: settings)
        let values = metrics.values

        let lossErr = relativeError(values["loss"]!, try gold.tensor("loss").doubles()[0])
        #expect(lossErr <= 1e-4, "\(name): loss \(values["loss"]!) rel err \(lossErr)")
        var worstMetric = 0.0
        for (key, t) in gold.tensors where key.hasPrefix("metric.") {
            let metric = String(key.dropFirst("metric.".count))
            guard let mine = values[metric] else { Issue.record("\(name): metric \(metric) missing"); continue }
            let e = t.doubles()[0]
            let err = abs(mine - e) / max(abs(e), 1e-3)
            worstMetric = max(worstMetric, err)
            #expect(err <= 1e-4, "\(name): \(metric) \(mine) vs \(e)")
        }
        var worstGrad = 0.0
        var names: [String] = []
        for spec in model.layout.specs {
            let e = try gold.tensor("grad." + spec.name).doubles()
            let err = relativeError(model.gradient(spec.name)!, e)
            worstGrad = max(worstGrad, err)
            names.append(spec.name)
            #expect(err <= 1e-4, "\(name): grad \(spec.name) rel err \(err)")
            #expect(e.contains { $0 != 0 }, "\(name): golden gradient of \(spec.name) is all zero (test would be vacuous)")
        }
        let goldNames = gold.tensors.keys.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) }
        #expect(Set(goldNames) == Set(names), "parameter names differ from PyTorch's: \(goldNames.sorted()) vs \(names.sorted())")
        print("[golden] \(name): loss rel err \(lossErr), worst metric rel err \(worstMetric), worst gradient rel err \(worstGrad)")
    }

    /// Tolerance: loss before every update |a − e|/|e| ≤ 1e-3; also lr (1e-6), pre-clip grad norm
    /// (1e-3) and final parameters (‖·‖₂ relative 1e-3 per tensor).
    @Test("20 AdamW steps (warmup+cosine, clipping, 2 accumulated micro-batches) follow PyTorch", arguments: trajectoryCases)
    func trajectory(_ name: String) throws {
        let p = try Golden.problem()
        let manifest = try Golden.manifest()
        let entry = (manifest["cases"] as! [String: Any])[name] as! [String: Any]
        let T = manifest["trajectory"] as! [String: Any]
        var cfg = Golden.config(case: entry, problem: p)
        cfg.gStart = Float(T["g_start"] as! Double)
        cfg.gEnd = Float(T["g_end"] as! Double)
        cfg.temperature = Float(T["tau_start"] as! Double)
        cfg.temperatureEnd = Float(T["tau_end"] as! Double)
        let model = try Golden.model(cfg, problem: p, params: "params_init.safetensors")
        let steps = T["steps"] as! Int
        var opt = OptimizerConfig(totalSteps: steps)
        opt.learningRate = Float(T["lr"] as! Double)
        opt.warmupSteps = T["warmup"] as! Int
        opt.decay = LRDecay(rawValue: T["schedule"] as! String)!
        opt.maxGradNorm = Float(T["max_grad_norm"] as! Double)
        opt.weightDecay = Float(T["weight_decay"] as! Double)
        let betas = T["betas"] as! [Double]
        opt.beta1 = Float(betas[0])
        opt.beta2 = Float(betas[1])
        opt.epsilon = Float(T["eps"] as! Double)
        let micro = T["micro_batches"] as! [[Int]]
        opt.gradientAccumulation = micro.count
        let training = try LPCTraining(model: model, optimizer: opt, seed: 0)
        let batches = try micro.map { try p.batch.subset($0) }

        let gold = try Golden.file("traj_\(name).safetensors")
        let losses = try gold.tensor("loss").doubles(), norms = try gold.tensor("grad_norm").doubles()
        let lrs = try gold.tensor("lr").doubles()
        let npost = try gold.tensor("noise.post").array(Float.self), nprior = try gold.tensor("noise.prior").array(Float.self)
        let per = micro[0].count * cfg.codes
        var worstLoss = 0.0, worstNorm = 0.0
        for step in 0..<steps {
            let noise = (0..<micro.count).map { j in
                let o = (step * micro.count + j) * per
                return GumbelNoise(posterior: Array(npost[o..<o + per]), prior: Array(nprior[o..<o + per]))
            }
            let report = try training.step(batches, noise: noise)
            let lossErr = relativeError(report.metrics.meanLoss, losses[step])
            let normErr = relativeError(report.gradNorm, norms[step])
            worstLoss = max(worstLoss, lossErr)
            worstNorm = max(worstNorm, normErr)
            #expect(lossErr <= 1e-3, "\(name) step \(step): loss \(report.metrics.meanLoss) vs \(losses[step])")
            #expect(normErr <= 1e-3, "\(name) step \(step): grad norm \(report.gradNorm) vs \(norms[step])")
            #expect(abs(Double(report.learningRate) - lrs[step]) <= 1e-6 * max(1, lrs[step]), "\(name) step \(step): lr")
        }
        var worstParam = 0.0
        for spec in model.layout.specs {
            let err = relativeError(model.parameter(spec.name)!, try gold.tensor("final." + spec.name).doubles())
            worstParam = max(worstParam, err)
            #expect(err <= 1e-3, "\(name): final \(spec.name) rel err \(err)")
        }
        print("[golden] \(name) trajectory: worst loss rel err \(worstLoss), grad-norm \(worstNorm), final params \(worstParam); loss \(losses[0]) → \(losses[steps - 1])")
    }
}
