import Foundation
import TensorCore

/// Head checkpoints: a folder with
///
///     head.safetensors       every parameter, float32, PyTorch-style names (ParameterLayout);
///                            __metadata__: format = "lpc-head", step
///     config.json            {"format": "lpc-head", "version": 1, "model": LPCConfig,
///                             "training": OptimizerConfig?, "seed": …, "step": …}
///     optimizer.safetensors  (training checkpoints only) exp_avg.<name>, exp_avg_sq.<name> float32;
///                            __metadata__: step, rng (4 hex words), seed, extra (JSON object)
///
/// Every file is written atomically (temporary file in the folder, fsync, rename, fsync folder);
/// the optimizer file is written before the head, and loading checks that both carry the same step.
public enum LPCCheckpoint {
    public static let headFile = "head.safetensors"
    public static let configFile = "config.json"
    public static let optimizerFile = "optimizer.safetensors"
    static let format = "lpc-head"

    struct ConfigFile: Codable {
        var format: String
        var version: Int
        var model: LPCConfig
        var training: OptimizerConfig?
        var seed: UInt64?
        var step: Int?
    }

    /// Writes the model's parameters and config (an inference head; no optimizer state).
    public static func saveHead(_ model: LPCModel, to dir: String, step: Int? = nil) throws {
        try makeFolder(dir)
        try writeConfig(ConfigFile(format: format, version: 1, model: model.config, training: nil, seed: nil, step: step), dir: dir)
        try writeHead(model, step: step, dir: dir)
    }

    /// Writes a resumable training checkpoint: parameters, config, optimizer moments, step, RNG.
    public static func save(_ training: LPCTraining, to dir: String) throws {
        try makeFolder(dir)
        let model = training.model, opt = training.optimizer
        var tensors: [String: Tensor] = [:]
        let m = opt.firstMoment, v = opt.secondMoment
        for spec in model.layout.specs {
            tensors["exp_avg." + spec.name] = Tensor(Array(m[spec.offset..<spec.offset + spec.count]), shape: spec.shape)
            tensors["exp_avg_sq." + spec.name] = Tensor(Array(v[spec.offset..<spec.offset + spec.count]), shape: spec.shape)
        }
        let extra = String(data: try JSONSerialization.data(withJSONObject: training.extraState, options: [.sortedKeys]), encoding: .utf8)!
        let meta = [
            "format": "lpc-optimizer", "step": String(training.step), "seed": String(training.seed),
            "rng": training.rng.stateWords.map { String($0, radix: 16) }.joined(separator: ","), "extra": extra,
        ]
        try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: meta), to: dir + "/" + optimizerFile)
        try writeConfig(ConfigFile(format: format, version: 1, model: model.config, training: training.optimizerConfig,
                                   seed: training.seed, step: training.step), dir: dir)
        try writeHead(model, step: training.step, dir: dir)
    }

    /// Reads config.json.
    public static func loadConfig(from dir: String) throws -> (model: LPCConfig, training: OptimizerConfig?) {
        let c = try readConfig(dir)
        return (c.model, c.training)
    }

    /// Loads a head for inference or evaluation, checking names, shapes and dtypes.
    public static func loadHead(from dir: String, lmHead: FrozenLMHead) throws -> LPCModel {
        let c = try readConfig(dir)
        let model = try LPCModel(config: c.model, lmHead: lmHead, seed: 0)
        _ = try readHead(into: model, dir: dir)
        return model
    }

    /// Restores a training run saved by `save` so that it continues exactly.
    public static func resume(from dir: String, lmHead: FrozenLMHead) throws -> LPCTraining {
        let c = try readConfig(dir)
        guard let training = c.training, let seed = c.seed else {
            throw LPCError.checkpoint("\(dir)/\(configFile) has no training settings: this is an inference head, not a training checkpoint")
        }
        let model = try LPCModel(config: c.model, lmHead: lmHead, seed: 0)
        let headStep = try readHead(into: model, dir: dir)
        let run = try LPCTraining(model: model, optimizer: training, seed: seed)
        let path = dir + "/" + optimizerFile
        guard FileManager.default.fileExists(atPath: path) else {
            throw LPCError.checkpoint("\(path) is missing: cannot resume without the optimizer state")
        }
        let file = try SafeTensors.read(path)
        guard let stepText = file.metadata["step"], let step = Int(stepText) else {
            throw LPCError.checkpoint("\(path): metadata lacks 'step'")
        }
        guard headStep == nil || headStep == step else {
            throw LPCError.checkpoint("\(dir): head is from step \(headStep!) but the optimizer state from step \(step) (interrupted save?)")
        }
        let words = (file.metadata["rng"] ?? "").split(separator: ",").compactMap { UInt64($0, radix: 16) }
        guard words.count == 4, words.contains(where: { $0 != 0 }) else {
            throw LPCError.checkpoint("\(path): metadata 'rng' must be 4 hex words, got '\(file.metadata["rng"] ?? "")'")
        }
        var m = [Float](repeating: 0, count: model.parameterCount), v = m
        try check(file, names: model.layout.specs.flatMap { ["exp_avg." + $0.name, "exp_avg_sq." + $0.name] }, path: path)
        for spec in model.layout.specs {
            for (prefix, isFirst) in [("exp_avg.", true), ("exp_avg_sq.", false)] {
                let values = try floats(file, prefix + spec.name, shape: spec.shape, path: path)
                for i in 0..<spec.count {
                    if isFirst { m[spec.offset + i] = values[i] } else { v[spec.offset + i] = values[i] }
                }
            }
        }
        try run.optimizer.restore(firstMoment: m, secondMoment: v, step: step)
        run.rng = LPCRandom(state: words)
        if let extra = file.metadata["extra"], let data = extra.data(using: .utf8),
           let obj = try? JSONSerialization.jsonObject(with: data) as? [String: String] {
            run.extraState = obj
        }
        return run
    }

    // MARK: helpers

    static func makeFolder(_ dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw LPCError.checkpoint("cannot create folder \(dir): \(error.localizedDescription)")
        }
    }

    static func writeConfig(_ c: ConfigFile, dir: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(c), to: dir + "/" + configFile)
    }

    static func readConfig(_ dir: String) throws -> ConfigFile {
        let path = dir + "/" + configFile
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LPCError.checkpoint("\(path) is missing: is \(dir) an LPC head folder?")
        }
        let c: ConfigFile
        do { c = try JSONDecoder().decode(ConfigFile.self, from: data) } catch {
            throw LPCError.checkpoint("\(path) is not a valid LPC config: \(error)")
        }
        guard c.format == format else { throw LPCError.checkpoint("\(path): format '\(c.format)', expected '\(format)'") }
        guard c.version == 1 else { throw LPCError.checkpoint("\(path): version \(c.version) is not supported (expected 1)") }
        do { try c.model.validate() } catch { throw LPCError.checkpoint("\(path): \(error)") }
        if let t = c.training {
            do { try t.validate() } catch { throw LPCError.checkpoint("\(path): \(error)") }
        }
        return c
    }

    static func writeHead(_ model: LPCModel, step: Int?, dir: String) throws {
        var tensors: [String: Tensor] = [:]
        let p = model.parameters
        for spec in model.layout.specs {
            tensors[spec.name] = Tensor(Array(p[spec.offset..<spec.offset + spec.count]), shape: spec.shape)
        }
        var meta = ["format": format]
        if let step { meta["step"] = String(step) }
        try SafeTensors.write(SafeTensors.File(tensors: tensors, metadata: meta), to: dir + "/" + headFile)
    }

    /// Fills the model from head.safetensors; returns the step in its metadata.
    static func readHead(into model: LPCModel, dir: String) throws -> Int? {
        let path = dir + "/" + headFile
        guard FileManager.default.fileExists(atPath: path) else { throw LPCError.checkpoint("\(path) is missing") }
        let file = try SafeTensors.read(path)
        try check(file, names: model.layout.specs.map(\.name), path: path)
        for spec in model.layout.specs {
            try model.setParameter(spec.name, try floats(file, spec.name, shape: spec.shape, path: path))
        }
        return file.metadata["step"].flatMap { Int($0) }
    }

    /// The file must hold exactly `names`.
    static func check(_ file: SafeTensors.File, names: [String], path: String) throws {
        let have = Set(file.tensors.keys), want = Set(names)
        let missing = want.subtracting(have).sorted(), unexpected = have.subtracting(want).sorted()
        if !missing.isEmpty || !unexpected.isEmpty {
            var why = "\(path) does not match the configured head"
            if !missing.isEmpty { why += "; missing: \(missing.joined(separator: ", "))" }
            if !unexpected.isEmpty { why += "; unexpected: \(unexpected.joined(separator: ", "))" }
            why += " (config.json and the weights disagree, e.g. use_lpc or a different K?)"
            throw LPCError.checkpoint(why)
        }
    }

    static func floats(_ file: SafeTensors.File, _ name: String, shape: [Int], path: String) throws -> [Float] {
        let t = try file.tensor(name, path: path)
        guard t.dtype == .float32 else { throw LPCError.checkpoint("\(path): '\(name)' is \(t.dtype), expected float32") }
        guard t.shape == shape else {
            throw LPCError.checkpoint("\(path): '\(name)' has shape \(t.shape), the config needs \(shape)")
        }
        return t.array(Float.self)
    }
}

extension LPCTraining {
    /// `LPCCheckpoint.save(self, to:)`.
    public func saveCheckpoint(to dir: String) throws { try LPCCheckpoint.save(self, to: dir) }
}
