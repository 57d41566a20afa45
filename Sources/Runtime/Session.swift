import CKernels
import Foundation
import Graph
import TensorCore

/// How a session prepares its graph.
public struct SessionOptions: Sendable {
    /// Run the graph passes (constant folding, shape-plumbing and dead-code removal, fusions).
    public var optimize: Bool = true
    /// Storage of the large float32 MatMul weights: as exported, or converted once at load.
    public var weightStorage: WeightStorage = .f32
    /// Values the passes must keep so `run(outputs:)` can name them cheaply (any other value can
    /// still be requested: the session then runs the graph as exported).
    public var keep: Set<String> = []
    /// Graph outputs (e.g. "logits") computed for the last sequence position only, [b, 1, N]:
    /// generation needs no more, and the LM head is a fifth of a 128-token prefill.
    public var lastPositionOutputs: Set<String> = []

    public init(optimize: Bool = true, weightStorage: WeightStorage = .f32, keep: Set<String> = [],
                lastPositionOutputs: Set<String> = []) {
        self.optimize = optimize
        self.weightStorage = weightStorage
        self.keep = keep
        self.lastPositionOutputs = lastPositionOutputs
    }
}

/// Weight storage for `--weights`: float32 as exported; f24, the same float32 values in 3 bytes
/// where that is exact (else float32; see `F24Packing`); auto, float32 at load and f24 where exact
/// once a background thread has packed it (`BackgroundF24Packing`: the outputs are f32's bit for
/// bit, loading costs what f32 costs); IEEE float16 or bfloat16 (round to nearest even); or i16,
/// symmetric 16-bit integers with one float32 scale per output (same bytes as f16, about 5× less
/// rounding error on SmolLM2: see `WeightConversion`).
public enum WeightStorage: String, Sendable, CaseIterable {
    case auto, f32, f24, f16, bf16, i16
}

/// Runs a verified graph. Create once per model; `run` may be called many times (not concurrently).
///
/// Values live in an array of slots indexed by integers fixed at creation, so a node's cost is
/// its kernel plus a few array reads; each slot is released after its last reader.
public final class Session {
    /// The graph that executes (optimized unless `SessionOptions.optimize` is false). With
    /// `--weights auto`, its product weights turn f24 as the background packing delivers them.
    public private(set) var graph: Graph
    /// The graph as given, for values the passes removed.
    public let sourceGraph: Graph
    public let options: SessionOptions
    /// What the passes did (empty when not optimized).
    public let passReport: [String]
    /// Called after each node with its outputs, for tracing numeric drift node by node.
    public var trace: ((Node, [Tensor]) -> Void)?
    /// Persistent per-session state for stateful fused kernels (the in-place KV cache).
    public let state = ExecutionState()

    /// A class, not a struct: the run loop then retains one reference per step instead of each of
    /// its fields (a decode step runs ~400 steps; the struct's copies were the largest single
    /// caller of swift_retain in a profile of its serial time).
    private final class Step {
        let node: Node
        let kernel: Kernel
        let opset: Int
        let inputs: [Int]   // slot per input, -1 where omitted
        let outputs: [Int]  // slot per output, -1 where omitted
        let release: [Int]  // slots whose last reader this is
        /// After a product that streams its weights: the last bytes of the next such product's
        /// weights, for an idle worker to read while the small ops in between run (`lpc_prefetch_weights`).
        var prefetch: (pointer: UnsafeRawPointer, bytes: Int)?

        init(node: Node, kernel: @escaping Kernel, opset: Int, inputs: [Int], outputs: [Int], release: [Int]) {
            self.node = node
            self.kernel = kernel
            self.opset = opset
            self.inputs = inputs
            self.outputs = outputs
            self.release = release
        }
    }

    private var steps: [Step]
    /// The step that produces each slot (-1 for inputs and initializers).
    private let producer: [Int]
    /// Steps a request needs, by the requested names (sorted); nil when it asks for every output.
    private var stepsNeeded: [[String]: [Bool]?] = [:]
    private let slotOf: [String: Int]
    private var initialValues: [Tensor?]
    /// Slots that must survive to the end (graph outputs, initializers).
    private let pinned: [Bool]
    private var fallback: Session?
    /// Cache inputs the passes turned into in-place appends (`lpc:KVAppend`), and the cache input
    /// behind each appended value (`present.N.key|value`).
    public let inPlaceCacheInputs: Set<String>
    private let inPlaceCacheInputOrder: [String]
    /// The inputs `run(_:outputs:kvStore:)` validates: all but the in-place cache inputs after the first.
    private let inputsCheckedWithStore: [ValueInfo]
    private let appendedCache: [String: String]
    /// Declared inputs by name (a decode step validates ~60 feeds: no linear searches per feed).
    private let inputInfo: [String: ValueInfo]
    /// `--weights auto`: the weights being packed to f24 after load (nil when none or done).
    private var packing: BackgroundF24Packing?
    /// Seconds the background f24 packing took (nil while it runs, or without it).
    public private(set) var backgroundPackingSeconds: Double?

    public convenience init(graph: Graph) throws {
        try self.init(graph: graph, options: SessionOptions())
    }

    public init(graph: Graph, options: SessionOptions) throws {
        let verified = try F24Packing.importWritten(graph).verified()
        try Session.checkKernels(verified)
        sourceGraph = verified
        self.options = options
        var executed = verified
        var report: [String] = []
        if options.optimize {
            (executed, report) = try GraphOptimizer.optimize(verified, keep: options.keep,
                                                             weights: options.weightStorage == .auto ? .f32 : options.weightStorage,
                                                             lastPositionOutputs: options.lastPositionOutputs)
            executed = try executed.verified()
            try Session.checkKernels(executed)
        }
        self.graph = executed
        passReport = report

        var slots: [String: Int] = [:]
        func slot(_ name: String) -> Int {
            if name.isEmpty { return -1 }
            if let existing = slots[name] { return existing }
            slots[name] = slots.count
            return slots.count - 1
        }
        for info in executed.inputs { _ = slot(info.name) }
        for name in executed.initializers.keys.sorted() { _ = slot(name) }
        var lastReader: [Int: Int] = [:]
        var stepInputs: [[Int]] = [], stepOutputs: [[Int]] = []
        for (index, node) in executed.nodes.enumerated() {
            let ins = node.inputs.map(slot)
            for s in ins where s >= 0 { lastReader[s] = index }
            stepInputs.append(ins)
            stepOutputs.append(node.outputs.map(slot))
        }
        for info in executed.outputs { _ = slot(info.name) }
        var pinned = [Bool](repeating: false, count: slots.count)
        for info in executed.outputs { pinned[slots[info.name]!] = true }
        for name in executed.initializers.keys { pinned[slots[name]!] = true }
        var release = [[Int]](repeating: [], count: executed.nodes.count)
        for (s, index) in lastReader where !pinned[s] { release[index].append(s) }

        var steps: [Step] = []
        steps.reserveCapacity(executed.nodes.count)
        for (index, node) in executed.nodes.enumerated() {
            steps.append(Step(node: node, kernel: OpRegistry.kernel(for: node)!, opset: executed.opset(for: node) ?? 1,
                              inputs: stepInputs[index], outputs: stepOutputs[index], release: release[index]))
        }
        Session.planWeightPrefetch(&steps, initializers: executed.initializers)
        var producer = [Int](repeating: -1, count: slots.count)
        for (index, outputs) in stepOutputs.enumerated() { for s in outputs where s >= 0 { producer[s] = index } }
        self.producer = producer
        var initial = [Tensor?](repeating: nil, count: slots.count)
        for (name, tensor) in executed.initializers { initial[slots[name]!] = tensor }
        self.steps = steps
        var appended: [String: String] = [:]
        for node in executed.nodes where node.qualifiedOpType == "lpc:KVAppend" {
            if let cache = node.string("cache") { appended[node.outputs[0]] = cache }
        }
        appendedCache = appended
        inPlaceCacheInputs = Set(appended.values)
        inPlaceCacheInputOrder = inPlaceCacheInputs.sorted()
        let uncheckedCaches = Set(inPlaceCacheInputOrder.dropFirst())
        inputsCheckedWithStore = executed.inputs.filter { !uncheckedCaches.contains($0.name) }
        slotOf = slots
        inputInfo = Dictionary(executed.inputs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        initialValues = initial
        self.pinned = pinned
        if options.weightStorage == .auto, options.optimize, lpc_f24_supported() != 0 {
            let groups = F24Packing.candidates(in: executed, inputs: Set(executed.inputs.map(\.name)))
            if !groups.isEmpty { packing = BackgroundF24Packing(groups: groups, initializers: executed.initializers) }
        }
    }

    /// Blocks until the background f24 packing (`--weights auto`) is done and adopts its weights;
    /// returns the seconds it took (nil without it). Runs adopt what is packed anyway: this is
    /// for measuring the packed state. Like `run`, not to be called concurrently with a run.
    @discardableResult
    public func waitForBackgroundPacking() -> Double? {
        packing?.wait()
        adoptPackedWeights()
        return backgroundPackingSeconds
    }

    /// Swaps in the weights packed since the last run (bit-identical products, so a run's outputs
    /// do not depend on when this happens). Between runs only: a run reads `initialValues`.
    private func adoptPackedWeights() {
        guard let packing else { return }
        let finished = packing.isFinished  // before take: nothing can be packed after a finished take
        let ready = packing.take()
        if !ready.isEmpty {
            // An idle worker may be reading ahead in the weights being replaced.
            lpc_prefetch_cancel()
            for (name, tensor) in ready {
                guard let slot = slotOf[name], let old = initialValues[slot] else { continue }
                initialValues[slot] = tensor
                graph.initializers[name] = tensor
                if old.storage.isFileMapped { WeightConversion.release(old) }
            }
            for index in steps.indices { steps[index].prefetch = nil }
            Session.planWeightPrefetch(&steps, initializers: graph.initializers)
        }
        if finished {
            backgroundPackingSeconds = packing.wait()
            self.packing = nil
        }
    }

    /// Products whose weights are large constants read once per run: a decode step's cost is
    /// streaming them. Each such step gets the next one's weights as its prefetch hint, the last
    /// one the first's (the next step of generation starts there). The hint is the end of the
    /// product's last weight: the reading worker claims tasks from the back, so that is where its
    /// part of the next product starts.
    private static func planWeightPrefetch(_ steps: inout [Step], initializers: [String: Tensor]) {
        let streaming: Set<String> = ["lpc:MatMulKN", "lpc:MatMulKNGroup", "lpc:MatMulNT"]
        let budget = prefetchBudget
        guard budget > 0 else { return }
        var streamed: [(step: Int, weight: Tensor)] = []
        for (index, step) in steps.enumerated() where streaming.contains(step.node.qualifiedOpType) {
            // The last 2-D input: after it may come the per-output scales of int16 weights.
            guard step.node.inputs.count > 1,
                  let weight = step.node.inputs.dropFirst().reversed().lazy.compactMap({ initializers[$0] }).first(where: { $0.rank == 2 }),
                  weight.byteCount >= 1 << 18 else { continue }
            streamed.append((index, weight))
        }
        guard streamed.count > 1 else { return }
        for (position, entry) in streamed.enumerated() {
            let next = streamed[(position + 1) % streamed.count].weight
            let bytes = min(next.byteCount, budget)
            steps[entry.step].prefetch = (UnsafeRawPointer(next.raw + next.byteCount - bytes), bytes)
        }
    }

    /// Bytes of the next product's weights an idle worker reads ahead: half its 2 MiB L2 cache
    /// (one interleaved series, minimum decode ms/token: 0 → 18.59, 0.5 MiB 18.35, 1 MiB 18.15,
    /// 2 MiB 18.06). `LPC_PREFETCH_BYTES` overrides it, for A/B runs only.
    static let prefetchBudget: Int = {
        if let text = ProcessInfo.processInfo.environment["LPC_PREFETCH_BYTES"], let value = Int(text) { return value }
        return 1 << 20
    }()

    /// Each weight-streaming step and the weights read ahead after it (for tests).
    var prefetchHints: [(node: String, pointer: UnsafeRawPointer, bytes: Int)] {
        steps.compactMap { step in step.prefetch.map { (step.node.name, $0.pointer, $0.bytes) } }
    }

    deinit {
        packing?.cancel()
        // An idle worker may be reading ahead in this session's weights.
        if steps.contains(where: { $0.prefetch != nil }) { lpc_prefetch_cancel() }
    }

    private static func checkKernels(_ graph: Graph) throws {
        var missing: [String: (opset: Int?, nodes: [String])] = [:]
        for node in graph.nodes {
            let opset = graph.opset(for: node)
            if OpRegistry.kernel(for: node) == nil || opset == nil {
                missing[node.qualifiedOpType, default: (opset, [])].nodes.append(node.displayName)
            }
        }
        if !missing.isEmpty {
            throw RuntimeError.unsupportedOps(missing.keys.sorted().map { ($0, missing[$0]!.opset, missing[$0]!.nodes) })
        }
    }

    /// The graph inputs a caller must feed (those without an initializer default).
    public var requiredInputs: [ValueInfo] {
        graph.inputs.filter { graph.initializers[$0.name] == nil }
    }

    /// Bytes of every initializer the executed graph holds (weights after any conversion).
    public var weightBytes: Int { graph.parameterBytes }

    /// Reads every initializer byte with `threads` threads, `repeats` times; returns the median
    /// bytes per second (the bandwidth a decode step's weight reads can reach).
    public func measureWeightReadBandwidth(threads: Int, repeats: Int = 5) -> Double {
        RuntimeThreads.setThreadCount(threads)
        let tensors = graph.initializers.values.filter { $0.byteCount >= 1 << 16 }
        let total = tensors.reduce(0) { $0 + $1.byteCount }
        guard total > 0 else { return 0 }
        var rates: [Double] = []
        var sink: UInt64 = 0
        for _ in 0..<max(repeats, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            for tensor in tensors { sink &+= lpc_read_bytes(tensor.raw, Int64(tensor.byteCount)) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            rates.append(Double(total) / seconds)
        }
        if sink == 42 { print("", terminator: "") }
        rates.sort()
        return rates[rates.count / 2]
    }

    /// Runs the graph on `feeds` and returns the requested outputs (default: all graph outputs).
    /// Any value of the source graph may be requested, including intermediates.
    ///
    /// With `kvStore`, the cache inputs in `inPlaceCacheInputs` come from the store instead of
    /// `feeds` (leave them out): their new positions are appended in place and the store's length
    /// grows by the run's sequence length. Requested `present` outputs are then copies out of
    /// the store. Values the passes removed cannot be requested in this mode.
    public func run(_ feeds: [String: Tensor], outputs requested: [String]? = nil, kvStore: KVStore?) throws -> [String: Tensor] {
        guard let kvStore else { return try run(feeds, outputs: requested) }
        guard !inPlaceCacheInputs.isEmpty else { throw RuntimeError.kvStore("this graph has no cache input the passes could append in place") }
        var feeds = feeds
        for name in inPlaceCacheInputOrder {
            guard feeds[name] == nil else { throw RuntimeError.kvStore("'\(name)' comes from the KV store; do not feed it") }
            feeds[name] = try pastFeed(name, store: kvStore, feeds: feeds)
        }
        let wanted = requested ?? graph.outputs.map(\.name)
        if let missing = wanted.first(where: { slotOf[$0] == nil }) {
            throw RuntimeError.kvStore("'\(missing)' was removed by the passes and cannot be requested with a KV store")
        }
        state.kvStore = kvStore
        kvStore.appendedLength = nil
        defer { state.kvStore = nil; kvStore.appendedLength = nil }
        // The cache feeds were made here from one store; checking the first one checks them all.
        try validate(feeds, declared: inputsCheckedWithStore)
        var result = try execute(feeds, wanted: wanted)
        if let appended = kvStore.appendedLength { kvStore.length = appended }
        for (name, tensor) in result {
            if let cache = appendedCache[name], let buffer = kvStore.buffers[cache], buffer.storage === tensor.storage {
                result[name] = buffer.contiguous(length: tensor.shape[2])
            }
        }
        return result
    }

    /// A cache input fed from the store: [b, h, L, d] over the store's buffer (a shape carrier:
    /// only `lpc:KVAppend` and shape-only ops read it, and KVAppend reads just its shape).
    private func pastFeed(_ name: String, store: KVStore, feeds: [String: Tensor]) throws -> Tensor {
        guard let info = inputInfo[name], let shape = info.shape, shape.count == 4,
              case let .fixed(heads) = shape[1], case let .fixed(dim) = shape[3] else {
            throw RuntimeError.kvStore("cache input '\(name)' is not declared [batch, heads, past, dim]")
        }
        var batch: Int?
        switch shape[0] {
        case let .fixed(size): batch = size
        case let .symbolic(symbol):
            // The batch size as another feed declares it.
            outer: for other in graph.inputs where other.name != name {
                guard let tensor = feeds[other.name], let dims = other.shape, dims.count == tensor.rank else { continue }
                for (axis, dim) in dims.enumerated() where dim == .symbolic(symbol) { batch = tensor.shape[axis]; break outer }
            }
        default: break
        }
        if let buffer = store.buffers[name] {
            if let batch, batch != buffer.batch {
                throw RuntimeError.kvStore("the KV store holds batch \(buffer.batch) for '\(name)' but the inputs have batch \(batch)")
            }
            return Tensor(dtype: .float32, shape: [buffer.batch, heads, store.length, dim], storage: buffer.storage)
        }
        guard store.length == 0 else { throw RuntimeError.kvStore("the KV store has \(store.length) positions but nothing for '\(name)'") }
        return Tensor(zeros: .float32, shape: [batch ?? 1, heads, 0, dim])
    }

    /// Runs the graph on `feeds` and returns the requested outputs (default: all graph outputs).
    /// Any value of the source graph may be requested, including intermediates.
    public func run(_ feeds: [String: Tensor], outputs requested: [String]? = nil) throws -> [String: Tensor] {
        try validate(feeds)
        let wanted = requested ?? graph.outputs.map(\.name)
        if wanted.contains(where: { slotOf[$0] == nil }) {
            return try runFallback(feeds, outputs: wanted)
        }
        return try execute(feeds, wanted: wanted)
    }

    /// Which steps compute `wanted`: those it depends on, and every `lpc:KVAppend` (it writes the
    /// KV store, a side effect later runs read); nil (all of them) for a request of every output.
    /// Cached per request, so a decode step pays one lookup.
    private func needed(for wanted: [String]) -> [Bool]? {
        let key = wanted.sorted()
        if let known = stepsNeeded[key] { return known }
        if Set(key).isSuperset(of: graph.outputs.map(\.name)) {
            stepsNeeded[key] = .some(nil)
            return nil
        }
        var needed = [Bool](repeating: false, count: steps.count)
        var pending = wanted.map { producer[slotOf[$0]!] }.filter { $0 >= 0 }
        pending += steps.indices.filter { steps[$0].node.qualifiedOpType == "lpc:KVAppend" }
        while let index = pending.popLast() {
            guard !needed[index] else { continue }
            needed[index] = true
            for s in steps[index].inputs where s >= 0 && producer[s] >= 0 && !needed[producer[s]] { pending.append(producer[s]) }
        }
        stepsNeeded[key] = needed
        return needed
    }

    private func execute(_ feeds: [String: Tensor], wanted: [String]) throws -> [String: Tensor] {
        adoptPackedWeights()
        var values = initialValues
        for (name, tensor) in feeds { values[slotOf[name]!] = tensor }
        var keep = pinned
        for name in wanted { keep[slotOf[name]!] = true }
        // A request for only some outputs skips the steps none of them needs (e.g. the LM head when
        // only a hidden state is wanted).
        let mask = needed(for: wanted)

        let tracer = trace
        for (index, step) in steps.enumerated() {
            if let mask, !mask[index] { continue }
            var inputs: [Tensor?] = []
            inputs.reserveCapacity(step.inputs.count)
            for s in step.inputs { inputs.append(s >= 0 ? values[s] : nil) }
            let results: [Tensor]
            do {
                results = try step.kernel(KernelContext(node: step.node, inputs: inputs, opset: step.opset, state: state))
            } catch let error as KernelError {
                throw RuntimeError.node(name: step.node.displayName, op: step.node.qualifiedOpType, opset: step.opset, message: error.message)
            }
            if results.count < step.outputs.count {
                let declared = step.outputs.filter { $0 >= 0 }.count
                if results.count < declared {
                    throw RuntimeError.node(name: step.node.displayName, op: step.node.qualifiedOpType, opset: step.opset,
                                            message: "produced \(results.count) output(s) for \(step.outputs.count) declared")
                }
            }
            if let hint = step.prefetch { lpc_prefetch_weights(hint.pointer, Int64(hint.bytes)) }
            for (s, tensor) in zip(step.outputs, results) where s >= 0 { values[s] = tensor }
            tracer?(step.node, results)
            for s in step.release where !keep[s] { values[s] = nil }
        }

        var result: [String: Tensor] = [:]
        for name in wanted {
            guard let tensor = values[slotOf[name]!] else { throw RuntimeError.unknownOutput(name: name) }
            result[name] = tensor
        }
        return result
    }

    /// Runs the graph as given (unoptimized) for values the passes removed.
    private func runFallback(_ feeds: [String: Tensor], outputs wanted: [String]) throws -> [String: Tensor] {
        let known = Set(sourceGraph.nodes.flatMap(\.outputs)).union(sourceGraph.inputs.map(\.name))
            .union(sourceGraph.initializers.keys)
        for name in wanted where !known.contains(name) { throw RuntimeError.unknownOutput(name: name) }
        if fallback == nil {
            fallback = try Session(graph: sourceGraph, options: SessionOptions(optimize: false))
        }
        fallback!.trace = trace
        return try fallback!.run(feeds, outputs: wanted)
    }

    /// Checks names, dtypes and shapes of the feeds against the declared inputs; symbolic dims
    /// must agree across inputs (e.g. one batch size everywhere).
    private func validate(_ feeds: [String: Tensor]) throws {
        try validate(feeds, declared: graph.inputs)
    }

    /// Checks the feeds of the `declared` inputs (and that no feed is unknown).
    private func validate(_ feeds: [String: Tensor], declared: [ValueInfo]) throws {
        if let unknown = feeds.keys.filter({ inputInfo[$0] == nil }).min() {
            throw RuntimeError.unknownInput(name: unknown, known: graph.inputs.map(\.name))
        }
        var symbols: [String: (size: Int, input: String)] = [:]
        for info in declared {
            guard let tensor = feeds[info.name] else {
                if graph.initializers[info.name] == nil {
                    throw RuntimeError.missingInput(name: info.name, expected: info.typeDescription)
                }
                continue
            }
            if let dtype = info.dtype, dtype != tensor.dtype {
                throw RuntimeError.inputType(name: info.name, got: tensor.dtype, expected: info.typeDescription)
            }
            guard let shape = info.shape else { continue }
            guard shape.count == tensor.rank else {
                throw RuntimeError.inputShape(name: info.name, got: tensor.shape, expected: info.typeDescription,
                                              reason: "rank \(tensor.rank) instead of \(shape.count)")
            }
            for (axis, dim) in shape.enumerated() {
                let size = tensor.shape[axis]
                switch dim {
                case let .fixed(expected) where expected != size:
                    throw RuntimeError.inputShape(name: info.name, got: tensor.shape, expected: info.typeDescription,
                                                  reason: "dimension \(axis) is \(size), not \(expected)")
                case let .symbolic(symbol):
                    if let seen = symbols[symbol], seen.size != size {
                        throw RuntimeError.inputShape(name: info.name, got: tensor.shape, expected: info.typeDescription,
                                                      reason: "'\(symbol)' is \(size) here but \(seen.size) in input '\(seen.input)'")
                    }
                    symbols[symbol] = (size, info.name)
                default: break
                }
            }
        }
        // Dims declared as sums ("past_sequence_length + sequence_length") must add up: the shape
        // passes compute with that relation.
        for info in declared {
            guard let tensor = feeds[info.name], let shape = info.shape else { continue }
            for (axis, dim) in shape.enumerated() {
                guard case let .symbolic(expression) = dim, expression.contains("+") else { continue }
                var total = 0
                var complete = true
                for part in expression.split(separator: "+").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    if let value = Int(part) { total += value } else if let seen = symbols[part] { total += seen.size } else { complete = false }
                }
                if complete && total != tensor.shape[axis] {
                    throw RuntimeError.inputShape(name: info.name, got: tensor.shape, expected: info.typeDescription,
                                                  reason: "dimension \(axis) is \(tensor.shape[axis]) but '\(expression)' is \(total)")
                }
            }
        }
    }
}
