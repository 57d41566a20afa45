import Foundation
import Runtime
import Testing
@testable import LPC

/// Finite-difference checks of every backward, in float32 with central differences
/// (f(x+h) − f(x−h))/2h and h = 1e-2 (inputs O(1); truncation error O(h²) ≈ 1e-5, rounding
/// ≈ 1e-7·|f|/h): tolerance ‖numeric − analytic‖₂/‖analytic‖₂ ≤ 2e-3 unless stated.
/// Each op is reduced to a scalar f = Σ c ⊙ op(x) with random weights c (accumulated in double).
@Suite("Finite-difference gradient checks")
struct GradientCheckTests {
    static let h: Float = 1e-2
    static let tol = 2e-3

    static func random(_ n: Int, _ rng: inout LPCRandom, scale: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(rng.normal() * scale) }
    }

    static func dot(_ a: UnsafePointer<Float>, _ c: [Float]) -> Double {
        var s = 0.0
        for i in c.indices { s += Double(a[i]) * Double(c[i]) }
        return s
    }

    /// Numeric gradient of f at x (all elements).
    static func numeric(_ x: [Float], h: Float = h, _ f: ([Float]) -> Double) -> [Float] {
        var x = x
        var out = [Float](repeating: 0, count: x.count)
        for i in x.indices {
            let orig = x[i]
            x[i] = orig + h
            let fp = f(x)
            x[i] = orig - h
            let fm = f(x)
            x[i] = orig
            out[i] = Float((fp - fm) / Double(2 * h))
        }
        return out
    }

    static func relErr(_ a: [Float], _ b: [Float]) -> Double {
        relativeError(a, b.map(Double.init))
    }

    @Test("linear: dW, db, dx")
    func linear() {
        var rng = LPCRandom(seed: 1)
        let n = 3, i = 5, o = 4
        let x = Self.random(n * i, &rng), w = Self.random(o * i, &rng), b = Self.random(o, &rng), c = Self.random(n * o, &rng)
        func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var y = [Float](repeating: 0, count: n * o)
            linearForward(x, rows: n, inFeatures: i, outFeatures: o, weight: w, bias: b, out: &y)
            return Self.dot(y, c)
        }
        var dW = [Float](repeating: 0, count: o * i), db = [Float](repeating: 0, count: o), dx = [Float](repeating: 0, count: n * i)
        linearBackward(x, dy: c, rows: n, inFeatures: i, outFeatures: o, weight: w, dWeight: &dW, dBias: &db, dx: &dx)
        #expect(Self.relErr(dW, Self.numeric(w) { f(x, $0, b) }) <= Self.tol)
        #expect(Self.relErr(db, Self.numeric(b) { f(x, w, $0) }) <= Self.tol)
        #expect(Self.relErr(dx, Self.numeric(x) { f($0, w, b) }) <= Self.tol)
    }

    @Test("GELU (exact erf form): derivative and values vs PyTorch's formula")
    func gelu() {
        var rng = LPCRandom(seed: 2)
        let x = Self.random(64, &rng, scale: 2), c = Self.random(64, &rng)
        func f(_ x: [Float]) -> Double {
            var y = [Float](repeating: 0, count: x.count)
            geluForward(x, &y, count: x.count)
            return Self.dot(y, c)
        }
        var dx = [Float](repeating: 0, count: 64)
        geluBackward(x, dy: c, dx: &dx, count: 64)
        #expect(Self.relErr(dx, Self.numeric(x, f)) <= Self.tol)
        // gelu(1) = 0.8413447460685429, gelu(−2) = −0.04550026389635842 (torch.nn.functional.gelu)
        #expect(abs(geluScalar(1) - 0.8413447460685429) < 1e-6)
        #expect(abs(geluScalar(-2) - -0.04550026389635842) < 1e-6)
    }

    @Test("Gumbel-softmax (softmax of (logits + noise)/τ) backward, τ ∈ {1, 0.5, 2}", arguments: [Float(1), 0.5, 2])
    func gumbelSoftmax(_ tau: Float) {
        var rng = LPCRandom(seed: 3)
        let rows = 3, K = 5
        let l = Self.random(rows * K, &rng), c = Self.random(rows * K, &rng)
        let noise = rng.gumbelNoise(pairs: rows, codes: K)
        func f(_ l: [Float]) -> Double {
            var w = [Float](repeating: 0, count: rows * K)
            softmaxRows(l, noise: noise, temperature: tau, out: &w, rows: rows, cols: K)
            return Self.dot(w, c)
        }
        var w = [Float](repeating: 0, count: rows * K), dl = [Float](repeating: 0, count: rows * K)
        softmaxRows(l, noise: noise, temperature: tau, out: &w, rows: rows, cols: K)
        softmaxBackward(w: w, dw: c, temperature: tau, dLogits: &dl, rows: rows, cols: K, accumulate: false)
        #expect(Self.relErr(dl, Self.numeric(l, h: 1e-3, f)) <= Self.tol)
    }

    @Test("log-softmax backward")
    func logSoftmax() {
        var rng = LPCRandom(seed: 4)
        let rows = 3, K = 6
        let l = Self.random(rows * K, &rng), c = Self.random(rows * K, &rng)
        func f(_ l: [Float]) -> Double {
            var y = [Float](repeating: 0, count: rows * K)
            logSoftmaxRows(l, out: &y, rows: rows, cols: K)
            return Self.dot(y, c)
        }
        var y = [Float](repeating: 0, count: rows * K), dl = [Float](repeating: 0, count: rows * K)
        logSoftmaxRows(l, out: &y, rows: rows, cols: K)
        logSoftmaxBackward(logProbs: y, dy: c, dLogits: &dl, rows: rows, cols: K, accumulate: false)
        #expect(Self.relErr(dl, Self.numeric(l, h: 1e-3, f)) <= Self.tol)
    }

    @Test("LM head: token log-probs (chunked sgemm, vectorised exp) and backward via M = softmax·W", arguments: [1, 3, 64])
    func lmHead(_ rowsPerChunk: Int) throws {
        var rng = LPCRandom(seed: 5)
        let d = 8, V = 37, N = 7
        let head = try FrozenLMHead(weight: Self.random(V * d, &rng, scale: 0.7), vocabSize: V, hiddenSize: d)
        head.rowsPerChunk = rowsPerChunk
        let H = Self.random(N * d, &rng), c = Self.random(N, &rng)
        let ids: [Int32] = (0..<N).map { _ in Int32(rng.next() % UInt64(V)) }
        var scratch: [Float] = []
        func f(_ H: [Float]) -> Double {
            var lp = [Float](repeating: 0, count: N)
            head.tokenLogProbs(hidden: H, ids: ids, rows: N, logProbs: &lp, expected: nil, scratch: &scratch)
            return Self.dot(lp, c)
        }
        var lp = [Float](repeating: 0, count: N), M = [Float](repeating: 0, count: N * d), dH = [Float](repeating: 0, count: N * d)
        head.tokenLogProbs(hidden: H, ids: ids, rows: N, logProbs: &lp, expected: &M, scratch: &scratch)
        head.backward(ids: ids, coefficients: c, expected: M, rows: N, dHidden: &dH, accumulate: false)
        #expect(Self.relErr(dH, Self.numeric(H, f)) <= Self.tol)
        // Values against a plain double-precision log-softmax.
        let W = head.weight.array(Float.self)
        for t in 0..<N {
            var logits = [Double](repeating: 0, count: V)
            for v in 0..<V { for j in 0..<d { logits[v] += Double(H[t * d + j]) * Double(W[v * d + j]) } }
            let mx = logits.max()!
            let lse = mx + log(logits.reduce(0) { $0 + exp($1 - mx) })
            #expect(abs(Double(lp[t]) - (logits[Int(ids[t])] - lse)) < 1e-5)
        }
    }

    @Test("vectorised exp matches libm on [−87, 0] within 3e-7 relative")
    func fastExp() {
        var worst: Float = 0
        var x: Float = -87
        while x <= 0 {
            let v = VectorMath.exp(x)
            worst = max(worst, abs(v - exp(x)) / exp(x))
            x += 0.0137
        }
        #expect(worst <= 3e-7, "worst relative error \(worst)")
    }

    @Test("objective derivatives (double precision, h = 1e-5, 1e-7 relative)", arguments: Objective.allCases)
    func pairLoss(_ objective: Objective) {
        for mean in [false, true] {
            let args = (refW: -12.5, refL: -9.0, lenW: 5.0, lenL: 3.0)
            func f(_ w: Double, _ l: Double) -> Double {
                LPCModel.pairLoss(objective: objective, piW: w, piL: l, refW: args.refW, refL: args.refL, lenW: args.lenW,
                                  lenL: args.lenL, mean: mean, beta: 0.7, gamma: 0.35, ipoTau: 0.1).loss
            }
            let (w, l) = (-11.0, -10.2)
            let (_, dW, dL) = LPCModel.pairLoss(objective: objective, piW: w, piL: l, refW: args.refW, refL: args.refL,
                                                lenW: args.lenW, lenL: args.lenL, mean: mean, beta: 0.7, gamma: 0.35, ipoTau: 0.1)
            let h = 1e-5
            let nW = (f(w + h, l) - f(w - h, l)) / (2 * h), nL = (f(w, l + h) - f(w, l - h)) / (2 * h)
            #expect(abs(nW - dW) <= 1e-7 * max(1, abs(dW)), "\(objective) mean=\(mean) dW \(dW) vs \(nW)")
            #expect(abs(nL - dL) <= 1e-7 * max(1, abs(dL)), "\(objective) mean=\(mean) dL \(dL) vs \(nL)")
        }
    }

    /// Whole model (adapter, z, codebook, MLPs, KL): per parameter tensor, the directional derivative
    /// along a random unit direction v: (L(p + h·v) − L(p − h·v))/2h vs ⟨∇L, v⟩, within 1e-2
    /// relative plus a float32 noise floor 2e-6·max(1, |L|)/h (Richardson-extrapolated differences).
    @Test("whole model: directional derivative per parameter tensor", arguments: ["dpo", "simpo", "ipo"])
    func wholeModel(_ objectiveName: String) throws {
        var rng = LPCRandom(seed: 6)
        let d = 6, V = 23, K = 3, r = 4
        var cfg = LPCConfig(hiddenSize: d, vocabSize: V)
        cfg.codes = K
        cfg.rank = r
        cfg.objective = Objective(rawValue: objectiveName)!
        cfg.klWeight = 0.3
        cfg.ipoTau = 1  // target margin 0.5: keeps the IPO loss O(1) so float32 rounding stays small
        cfg.codebookInitStd = 0.5
        let head = try FrozenLMHead(weight: Self.random(V * d, &rng, scale: 0.8), vocabSize: V, hiddenSize: d)
        let model = try LPCModel(config: cfg, lmHead: head, seed: 11)
        try model.setParameter("head.up.weight", Self.random(d * r, &rng, scale: 0.3))
        var batch = PreferenceBatch(hiddenSize: d)
        for (tw, tl) in [(2, 3), (4, 1)] {
            try batch.append(promptHidden: Self.random(d, &rng), chosenLastHidden: Self.random(d, &rng),
                             rejectedLastHidden: Self.random(d, &rng),
                             chosenTokens: Self.random(tw * d, &rng), chosenIds: (0..<tw).map { _ in Int32(rng.next() % UInt64(V)) },
                             chosenReferenceLogProb: Float(-3.1 * Double(tw)),
                             rejectedTokens: Self.random(tl * d, &rng), rejectedIds: (0..<tl).map { _ in Int32(rng.next() % UInt64(V)) },
                             rejectedReferenceLogProb: Float(-3.2 * Double(tl)))
        }
        let noise = GumbelNoise(pairs: 2, codes: K, rng: &rng)
        let settings = StepSettings(g: 0.4, temperature: 0.9)
        model.zeroGradients()
        _ = try model.forwardBackward(batch, noise: noise, settings: settings)
        let grad = model.gradients
        let p0 = model.parameters
        let l0 = try model.forwardBackward(batch, noise: noise, settings: settings, computeGradients: false).meanLoss
        for spec in model.layout.specs {
            var v = [Float](repeating: 0, count: p0.count)
            let dir = Self.random(spec.count, &rng)
            let norm = Float(dir.reduce(0) { $0 + Double($1 * $1) }.squareRoot())
            for i in 0..<spec.count { v[spec.offset + i] = dir[i] / norm }
            func loss(_ t: Float) throws -> Double {
                model.parameters = zip(p0, v).map { $0 + t * $1 }
                return try model.forwardBackward(batch, noise: noise, settings: settings, computeGradients: false).meanLoss
            }
            // Richardson extrapolation of central differences at 2h and h: error O(h⁴) + rounding.
            let d1 = (try loss(2 * Self.h) - loss(-2 * Self.h)) / Double(4 * Self.h)
            let d2 = (try loss(Self.h) - loss(-Self.h)) / Double(2 * Self.h)
            let numeric = (4 * d2 - d1) / 3
            let analytic = zip(grad, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            // float32 rounding of the loss (≈ 1e-7·|L| per evaluation) divided by h bounds the noise.
            let noise = 2e-6 * max(1, abs(l0)) / Double(Self.h)
            print("[fd] \(objectiveName) \(spec.name): numeric \(numeric) analytic \(analytic)")
            #expect(abs(numeric - analytic) <= 5e-3 * abs(analytic) + noise,
                    "\(objectiveName) \(spec.name): numeric \(numeric) analytic \(analytic)")
        }
        model.parameters = p0
    }
}
