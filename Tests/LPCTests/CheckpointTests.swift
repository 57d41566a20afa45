import Foundation
import Testing
import TensorCore
import TestSupport
@testable import LPC

func temporaryFolder(_ tag: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lpc-\(tag)-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A random problem at small scale for training-loop tests.
func syntheticBatches(d: Int, vocab: Int, batches: Int, pairs: Int, seed: UInt64) throws -> [PreferenceBatch] {
    var rng = LPCRandom(seed: seed)
    func r(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
    return try (0..<batches).map { _ in
        var b = PreferenceBatch(hiddenSize: d)
        for _ in 0..<pairs {
            let tw = 1 + Int(rng.next() % 5), tl = 1 + Int(rng.next() % 5)
            try b.append(promptHidden: r(d), chosenLastHidden: r(d), rejectedLastHidden: r(d),
                         chosenTokens: r(tw * d), chosenIds: (0..<tw).map { _ in Int32(rng.next() % UInt64(vocab)) },
                         chosenReferenceLogProb: -Float(tw) * 3,
                         rejectedTokens: r(tl * d), rejectedIds: (0..<tl).map { _ in Int32(rng.next() % UInt64(vocab)) },
                         rejectedReferenceLogProb: -Float(tl) * 3)
        }
        return b
    }
}

@Suite("Checkpoints and resume")
struct CheckpointTests {
    static func setup(useLPC: Bool, objective: Objective = .dpo) throws -> (LPCConfig, OptimizerConfig, FrozenLMHead) {
        var rng = LPCRandom(seed: 99)
        let d = 12, V = 40
        var cfg = LPCConfig(hiddenSize: d, vocabSize: V)
        cfg.codes = 5
        cfg.rank = 6
        cfg.useLPC = useLPC
        cfg.objective = objective
        cfg.temperatureEnd = 0.5
        var opt = OptimizerConfig(totalSteps: 8)
        opt.learningRate = 0.01
        opt.warmupSteps = 2
        opt.weightDecay = 0.01
        opt.maxGradNorm = 0.3
        opt.gradientAccumulation = 2
        let head = try FrozenLMHead(weight: (0..<(V * d)).map { _ in Float(rng.normal() * 0.5) }, vocabSize: V, hiddenSize: d)
        return (cfg, opt, head)
    }

    /// Resume: N = 3 steps, checkpoint, load into a fresh object, 5 more steps — parameters,
    /// optimizer moments and RNG are bit-identical to 8 uninterrupted steps (noise from the RNG).
    @Test("resume continues bit-identically", arguments: [true, false])
    func resume(_ useLPC: Bool) throws {
        let (cfg, opt, head) = try Self.setup(useLPC: useLPC)
        let data = try syntheticBatches(d: cfg.hiddenSize, vocab: cfg.vocabSize, batches: 16, pairs: 3, seed: 5)
        func micro(_ step: Int) -> [PreferenceBatch] { [data[2 * step], data[2 * step + 1]] }

        let straight = try LPCTraining(model: cfg, optimizer: opt, lmHead: head, seed: 42)
        for s in 0..<8 { try straight.step(micro(s)) }

        let first = try LPCTraining(model: cfg, optimizer: opt, lmHead: head, seed: 42)
        for s in 0..<3 { try first.step(micro(s)) }
        first.extraState = ["epoch": "0", "cursor": "6"]
        let dir = temporaryFolder("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try first.saveCheckpoint(to: dir)

        let resumed = try LPCCheckpoint.resume(from: dir, lmHead: head)
        #expect(resumed.step == 3)
        #expect(resumed.extraState == ["epoch": "0", "cursor": "6"])
        #expect(resumed.model.config == cfg)
        #expect(resumed.optimizerConfig == opt)
        for s in 3..<8 { try resumed.step(micro(s)) }

        #expect(resumed.model.parameters == straight.model.parameters, "parameters differ after resume")
        #expect(resumed.optimizer.firstMoment == straight.optimizer.firstMoment)
        #expect(resumed.optimizer.secondMoment == straight.optimizer.secondMoment)
        #expect(resumed.rng == straight.rng)
        #expect(resumed.step == straight.step)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == ["config.json", "head.safetensors", "optimizer.safetensors"], "left-over temporary files? \(files)")
    }

    @Test("inference head round trip and PyTorch-style names")
    func headRoundTrip() throws {
        let (cfg, _, head) = try Self.setup(useLPC: true)
        let model = try LPCModel(config: cfg, lmHead: head, seed: 3)
        let dir = temporaryFolder("head")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try LPCCheckpoint.saveHead(model, to: dir)
        if let export = ProcessInfo.processInfo.environment["LPC_EXPORT_HEAD_DIR"] {
            // For `tools/lpc_reference.py --check-head DIR` (PyTorch loads a Swift head, strict names).
            try LPCCheckpoint.saveHead(model, to: export)
        }
        let loaded = try LPCCheckpoint.loadHead(from: dir, lmHead: head)
        #expect(loaded.parameters == model.parameters)
        let file = try SafeTensors.read(dir + "/head.safetensors")
        #expect(Set(file.tensors.keys) == ["codebook.weight", "prior.0.weight", "prior.0.bias", "prior.2.weight", "prior.2.bias",
                                           "posterior.0.weight", "posterior.0.bias", "posterior.2.weight", "posterior.2.bias",
                                           "head.down.weight", "head.up.weight"])
        #expect(file.tensors["posterior.0.weight"]!.shape == [cfg.hiddenSize, 2 * cfg.hiddenSize])
        #expect(file.tensors["head.up.weight"]!.array(Float.self).allSatisfy { $0 == 0 }, "U must start at zero")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        let m = json["model"] as! [String: Any]
        #expect(m["hidden_size"] as? Int == cfg.hiddenSize && m["codes"] as? Int == 5 && m["use_lpc"] as? Bool == true)
        #expect(throws: LPCError.self) { _ = try LPCCheckpoint.resume(from: dir, lmHead: head) }
    }

    @Test("loading validates names, shapes, dtypes, LM head size and step consistency")
    func loadErrors() throws {
        let (cfg, opt, head) = try Self.setup(useLPC: true)
        let training = try LPCTraining(model: cfg, optimizer: opt, lmHead: head, seed: 1)
        let dir = temporaryFolder("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try training.saveCheckpoint(to: dir)
        let headPath = dir + "/head.safetensors"
        let good = try SafeTensors.read(headPath)

        func expectError(_ fragment: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("expected an error mentioning '\(fragment)'")
            } catch {
                #expect("\(error)".contains(fragment), "error '\(error)' should mention '\(fragment)'")
            }
        }
        var missing = good
        missing.tensors["prior.2.bias"] = nil
        try SafeTensors.write(missing, to: headPath)
        expectError("missing: prior.2.bias") { _ = try LPCCheckpoint.loadHead(from: dir, lmHead: head) }

        var wrongShape = good
        wrongShape.tensors["codebook.weight"] = Tensor([Float](repeating: 0, count: 7 * cfg.hiddenSize), shape: [7, cfg.hiddenSize])
        try SafeTensors.write(wrongShape, to: headPath)
        expectError("'codebook.weight' has shape [7, 12]") { _ = try LPCCheckpoint.loadHead(from: dir, lmHead: head) }

        var wrongType = good
        wrongType.tensors["head.up.weight"] = Tensor([Double](repeating: 0, count: cfg.hiddenSize * cfg.rank), shape: [cfg.hiddenSize, cfg.rank])
        try SafeTensors.write(wrongType, to: headPath)
        expectError("expected float32") { _ = try LPCCheckpoint.loadHead(from: dir, lmHead: head) }

        var extra = good
        extra.tensors["lm_head.weight"] = Tensor([Float](repeating: 0, count: 4), shape: [4])
        try SafeTensors.write(extra, to: headPath)
        expectError("unexpected: lm_head.weight") { _ = try LPCCheckpoint.loadHead(from: dir, lmHead: head) }

        var laterStep = good
        laterStep.metadata["step"] = "5"
        try SafeTensors.write(laterStep, to: headPath)
        expectError("head is from step 5 but the optimizer state from step 0") { _ = try LPCCheckpoint.resume(from: dir, lmHead: head) }

        try SafeTensors.write(good, to: headPath)
        let otherHead = try FrozenLMHead(weight: [Float](repeating: 0, count: 10 * cfg.hiddenSize), vocabSize: 10, hiddenSize: cfg.hiddenSize)
        expectError("LM head is [10, 12]") { _ = try LPCCheckpoint.loadHead(from: dir, lmHead: otherHead) }
        expectError("config.json is missing") { _ = try LPCCheckpoint.loadHead(from: dir + "/nowhere", lmHead: head) }
        _ = try LPCCheckpoint.resume(from: dir, lmHead: head)
    }
}

@Suite("safetensors")
struct SafeTensorsTests {
    @Test("round trip with metadata, header aligned to 8 bytes")
    func roundTrip() throws {
        let file = SafeTensors.File(tensors: ["a.weight": Tensor([Float](arrayLiteral: 1, -2, 3.5, 4, 5, 6), shape: [2, 3]),
                                              "b": Tensor([Int64](arrayLiteral: 7, -8), shape: [2]),
                                              "scalar": Tensor([Double](arrayLiteral: 0.25), shape: [])],
                                    metadata: ["step": "12", "quote\"d": "new\nline"])
        let data = SafeTensors.encode(file)
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + n) % 8 == 0)
        let back = try SafeTensors.decode(data)
        #expect(back.metadata == file.metadata)
        #expect(back.tensors["a.weight"]!.array(Float.self) == [1, -2, 3.5, 4, 5, 6])
        #expect(back.tensors["a.weight"]!.shape == [2, 3])
        #expect(back.tensors["b"]!.array(Int64.self) == [7, -8])
        #expect(back.tensors["scalar"]!.shape == [] && back.tensors["scalar"]!.array(Double.self) == [0.25])
    }

    @Test("reads files written by Python safetensors (the goldens)")
    func readsPython() throws {
        let f = try Golden.file("inputs.safetensors")
        #expect(f.tensors["lm_head.weight"]?.shape == [50, 16])
        #expect(f.tensors["ids"]?.dtype == .int64)
    }

    @Test("malformed files give clear errors")
    func malformed() throws {
        let good = SafeTensors.encode(SafeTensors.File(tensors: ["x": Tensor([Float](arrayLiteral: 1, 2), shape: [2])]))
        func header(_ json: String, data: Int = 8) -> Data {
            var d = Data()
            var n = UInt64(json.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
            d.append(contentsOf: Array(json.utf8))
            d.append(Data(count: data))
            return d
        }
        let cases: [(Data, String)] = [
            (Data([1, 2, 3]), "shorter than the 8-byte header"),
            (good.prefix(20), "exceeds the file"),
            (header("[1,2]"), "not a JSON object"),
            (header("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}"), "needs 12 bytes"),
            (header("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}"), "outside the 8 data bytes"),
            (header("{\"x\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}"), "unsupported dtype Q4"),
            (header("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"), "overlap"),
        ]
        for (data, fragment) in cases {
            #expect {
                _ = try SafeTensors.decode(data, path: "t.safetensors")
            } throws: { error in
                "\(error)".contains(fragment) && "\(error)".contains("t.safetensors")
            }
        }
    }
}
