import Graph
import TensorCore
import Testing
import TestSupport
@testable import Runtime

/// Runs registered kernels on hand-built tensors for the MatMul, normalisation, rotary and
/// attention suites, and makes deterministic pseudo-random data.
enum KernelHarness {
    static func run(_ op: String, _ inputs: [Tensor?], outputs: Int = 1, opset: Int = 23,
                    _ attributes: [String: AttributeValue] = [:]) throws -> [Tensor] {
        let node = Node(name: "test_\(op)", opType: op,
                        inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: (0..<outputs).map { "out\($0)" }, attributes: attributes)
        guard let kernel = OpRegistry.kernels[op] else { throw KernelError("no kernel registered for \(op)") }
        return try kernel(KernelContext(node: node, inputs: inputs, opset: opset))
    }

    static func run1(_ op: String, _ inputs: [Tensor?], opset: Int = 23,
                     _ attributes: [String: AttributeValue] = [:]) throws -> Tensor {
        let results = try run(op, inputs, outputs: 1, opset: opset, attributes)
        try #require(results.count == 1)
        return results[0]
    }

    /// Deterministic values in [-1, 1) from a 64-bit LCG.
    struct Random {
        var state: UInt64
        init(seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
        }
        mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
            Tensor((0..<Tensor.elementCount(shape)).map { _ in next() * scale }, shape: shape)
        }
    }

    static func f32(_ values: [Float], _ shape: [Int]) -> Tensor { Tensor(values, shape: shape) }

    /// Checks a tensor against Double expectations with a stated tolerance.
    static func expectClose(_ actual: Tensor, _ expected: [Double], shape: [Int], atol: Double, rtol: Double = 0,
                            _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let report = closeness(actual, Tensor(expected, shape: shape), atol: atol, rtol: rtol)
        #expect(report.isClose, "\(comment?.description ?? ""): \(report)", sourceLocation: sourceLocation)
    }
}

@Suite("MatMul and Gemm kernels")
struct MatMulKernelTests {
    typealias H = KernelHarness

    // MARK: MatMul semantics

    @Test func twoByTwo() throws {
        let y = try H.run1("MatMul", [H.f32([1, 2, 3, 4], [2, 2]), H.f32([5, 6, 7, 8], [2, 2])])
        #expect(y.shape == [2, 2])
        #expect(y.array(Float.self) == [19, 22, 43, 50])
    }

    @Test func oneDimensionalPromotionRemovesTheAddedDims() throws {
        let v = H.f32([1, 2, 3], [3])
        let m = H.f32([1, 0, 0, 1, 1, 1], [3, 2])          // [3,2]
        let left = try H.run1("MatMul", [v, m])               // [3]×[3,2] → [2]
        #expect(left.shape == [2] && left.array(Float.self) == [4, 5])
        let mt = H.f32([1, 0, 1, 0, 1, 1], [2, 3])          // [2,3]
        let right = try H.run1("MatMul", [mt, v])             // [2,3]×[3] → [2]
        #expect(right.shape == [2] && right.array(Float.self) == [4, 5])
        let dot = try H.run1("MatMul", [v, v])                // [3]×[3] → []
        #expect(dot.shape == [] && dot.array(Float.self) == [14])
        let batched = try H.run1("MatMul", [v, Tensor([Float](repeating: 1, count: 12), shape: [2, 3, 2])])
        #expect(batched.shape == [2, 2] && batched.array(Float.self) == [6, 6, 6, 6])
        let batchedRight = try H.run1("MatMul", [Tensor([Float](repeating: 1, count: 12), shape: [2, 2, 3]), v])
        #expect(batchedRight.shape == [2, 2] && batchedRight.array(Float.self) == [6, 6, 6, 6])
    }

    @Test func batchDimsBroadcast() throws {
        var r = H.Random(seed: 1)
        let a = r.tensor([2, 1, 3, 4]), b = r.tensor([1, 3, 4, 2])
        let y = try H.run1("MatMul", [a, b])
        #expect(y.shape == [2, 3, 3, 2])
        let ref = try MatMulReference.matMul(a.doubles(), a.shape, b.doubles(), b.shape)
        H.expectClose(y, ref.values, shape: ref.shape, atol: 1e-5)
    }

    @Test func innerDimensionZeroGivesZeros() throws {
        let y = try H.run1("MatMul", [Tensor(zeros: .float32, shape: [2, 0]), Tensor(zeros: .float32, shape: [0, 3])])
        #expect(y.shape == [2, 3] && y.array(Float.self) == [Float](repeating: 0, count: 6))
        let batched = try H.run1("MatMul", [Tensor(zeros: .float32, shape: [2, 2, 0]), Tensor(zeros: .float32, shape: [0, 3])])
        #expect(batched.array(Float.self) == [Float](repeating: 0, count: 12))
        let ints = try H.run1("MatMul", [Tensor(zeros: .int64, shape: [2, 0]), Tensor(zeros: .int64, shape: [0, 2])])
        #expect(ints.array(Int64.self) == [0, 0, 0, 0])
    }

    @Test func emptyRowsColumnsAndBatches() throws {
        let m0 = try H.run1("MatMul", [Tensor(zeros: .float32, shape: [0, 4]), Tensor(zeros: .float32, shape: [4, 3])])
        #expect(m0.shape == [0, 3])
        let n0 = try H.run1("MatMul", [Tensor(zeros: .float32, shape: [2, 4]), Tensor(zeros: .float32, shape: [4, 0])])
        #expect(n0.shape == [2, 0])
        let batch0 = try H.run1("MatMul", [Tensor(zeros: .float32, shape: [0, 2, 3]), Tensor(zeros: .float32, shape: [3, 4])])
        #expect(batch0.shape == [0, 2, 4])
        let broadcast0 = try H.run1("MatMul", [Tensor(zeros: .float64, shape: [0, 1, 2, 3]), Tensor(zeros: .float64, shape: [5, 3, 4])])
        #expect(broadcast0.shape == [0, 5, 2, 4])
    }

    @Test func badShapesAndTypesThrow() {
        #expect(throws: KernelError.self) { try H.run1("MatMul", [H.f32([1, 2, 3, 4, 5, 6], [2, 3]), H.f32([1, 2, 3, 4], [2, 2])]) }
        #expect(throws: KernelError.self) { try H.run1("MatMul", [Tensor(scalar: Float(1)), H.f32([1], [1])]) }
        #expect(throws: KernelError.self) { try H.run1("MatMul", [H.f32([1, 2], [1, 2]), Tensor([1.0, 2.0], shape: [2, 1])]) }
        #expect(throws: KernelError.self) {
            try H.run1("MatMul", [Tensor(zeros: .float32, shape: [2, 1, 2]), Tensor(zeros: .float32, shape: [3, 2, 1])])
        }
        #expect(throws: KernelError.self) {
            try H.run1("MatMul", [Tensor(zeros: .float32, shape: [2, 2, 2]), Tensor(zeros: .float32, shape: [3, 2, 1])])
        }
        #expect(throws: KernelError.self) { try H.run1("MatMul", [Tensor([true], shape: [1, 1]), Tensor([true], shape: [1, 1])]) }
    }

    /// The float32 BLAS paths (folded batch, per-batch, broadcast batch, gemv rows and columns)
    /// against the triple-loop reference on odd and swept shapes.
    @Test(arguments: [1, 3, 17, 64])
    func float32MatchesReferenceOnSweptShapes(_ size: Int) throws {
        var r = H.Random(seed: UInt64(size))
        let shapePairs: [([Int], [Int])] = [
            ([size, 3], [3, 17]), ([1, size], [size, 5]), ([17, size], [size, 1]),
            ([2, size, 17], [17, 3]),                      // folded into one sgemm
            ([3, 1, size], [size, 64]),                    // folded, M = 1 per batch
            ([2, 3, size], [2, size, 3]),                  // per-batch
            ([2, 1, 3, size], [1, 3, size, 17]),           // broadcast batch
            ([size, 3], [4, 3, size]),                     // left broadcast over right's batch
            ([size], [3, size, 2]), ([2, 3, size], [size]), ([size], [size]),
        ]
        for (aShape, bShape) in shapePairs {
            let a = r.tensor(aShape), b = r.tensor(bShape)
            let y = try H.run1("MatMul", [a, b])
            let ref = try MatMulReference.matMul(a.doubles(), aShape, b.doubles(), bShape)
            H.expectClose(y, ref.values, shape: ref.shape, atol: 1e-4, rtol: 1e-4, "\(aShape) × \(bShape)")
        }
    }

    @Test(arguments: [DType.float64, .float16, .bfloat16, .int64, .int32])
    func otherTypesMatchReference(_ dtype: DType) throws {
        var r = H.Random(seed: 7)
        for (aShape, bShape) in [([3, 17], [17, 5]), ([2, 1, 2, 3], [3, 3, 4]), ([17], [17, 3])] {
            let af = r.tensor(aShape, scale: 4), bf = r.tensor(bShape, scale: 4)
            let (a, b) = (cast(af, dtype), cast(bf, dtype))
            let y = try H.run1("MatMul", [a, b])
            #expect(y.dtype == dtype)
            let ref = try MatMulReference.matMul(a.doubles(), aShape, b.doubles(), bShape)
            let tolerance: Double = dtype == .float16 ? 0.05 : dtype == .bfloat16 ? 0.3 : 1e-9
            H.expectClose(y, ref.values, shape: ref.shape, atol: tolerance, rtol: dtype.isInteger ? 0 : 0.01, "\(dtype)")
        }
    }

    @Test func integerOverflowWrapsInsteadOfTrapping() throws {
        let big = Tensor([Int64.max, Int64.max], shape: [1, 2])
        let y = try H.run1("MatMul", [big, Tensor([Int64(2), Int64(1)], shape: [2, 1])])
        #expect(y.array(Int64.self) == [Int64.max &* 2 &+ Int64.max])
    }

    // MARK: Gemm

    @Test func gemmWithAlphaBetaAndBroadcastC() throws {
        let a = H.f32([1, 2, 3, 4], [2, 2]), b = H.f32([5, 6, 7, 8], [2, 2])
        let attrs: [String: AttributeValue] = ["alpha": .float(2), "beta": .float(0.5)]
        // A·B = [[19,22],[43,50]]; C per column [10, 20] → 2·AB + 0.5·C.
        let y = try H.run1("Gemm", [a, b, H.f32([10, 20], [2])], attrs)
        #expect(y.array(Float.self) == [43, 54, 91, 110])
        let column = try H.run1("Gemm", [a, b, H.f32([10, 20], [2, 1])], attrs)
        #expect(column.array(Float.self) == [43, 49, 96, 110])
        let scalar = try H.run1("Gemm", [a, b, Tensor(scalar: Float(2))], attrs)
        #expect(scalar.array(Float.self) == [39, 45, 87, 101])
        let noC = try H.run1("Gemm", [a, b, nil], attrs)
        #expect(noC.array(Float.self) == [38, 44, 86, 100])
    }

    @Test func gemmBetaZeroNeverReadsC() throws {
        let y = try H.run1("Gemm", [H.f32([1], [1, 1]), H.f32([3], [1, 1]), H.f32([.nan], [1, 1])], ["beta": .float(0)])
        #expect(y.array(Float.self) == [3])
    }

    @Test func gemmInnerZeroIsBetaTimesC() throws {
        let y = try H.run1("Gemm", [Tensor(zeros: .float32, shape: [2, 0]), Tensor(zeros: .float32, shape: [0, 2]),
                                   H.f32([1, 2], [2])], ["beta": .float(3)])
        #expect(y.array(Float.self) == [3, 6, 3, 6])
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmTransposesMatchReference(_ transA: Bool, _ transB: Bool) throws {
        var r = H.Random(seed: 11)
        for (m, k, n) in [(1, 3, 17), (17, 64, 1), (3, 17, 64), (64, 1, 3), (1, 1, 1)] {
            let aShape = transA ? [k, m] : [m, k], bShape = transB ? [n, k] : [k, n]
            let a = r.tensor(aShape), b = r.tensor(bShape), c = r.tensor([1, n])
            let attrs: [String: AttributeValue] = ["alpha": .float(0.75), "beta": .float(-1.5),
                                                   "transA": .int(transA ? 1 : 0), "transB": .int(transB ? 1 : 0)]
            let y = try H.run1("Gemm", [a, b, c], attrs)
            let ref = MatMulReference.gemm(a.doubles(), aShape, b.doubles(), bShape, c.doubles(), c.shape,
                                           alpha: 0.75, beta: -1.5, transA: transA, transB: transB)
            H.expectClose(y, ref, shape: [m, n], atol: 1e-4, rtol: 1e-4, "m \(m) k \(k) n \(n)")
            let dy = try H.run1("Gemm", [cast(a, .float64), cast(b, .float64), cast(c, .float64)], attrs)
            H.expectClose(dy, ref, shape: [m, n], atol: 1e-9, "float64")
        }
    }

    @Test func gemmIntegers() throws {
        let a = Tensor([Int64(1), 2, 3, 4], shape: [2, 2]), b = Tensor([Int64(5), 6, 7, 8], shape: [2, 2])
        let y = try H.run1("Gemm", [a, b, Tensor([Int64(1)], shape: [1])], ["transB": .int(1)])
        // A·Bᵀ = [[17,23],[39,53]] + 1.
        #expect(y.array(Int64.self) == [18, 24, 40, 54])
    }

    @Test func gemmBadShapesThrow() {
        let a = Tensor(zeros: .float32, shape: [2, 3]), b = Tensor(zeros: .float32, shape: [3, 4])
        #expect(throws: KernelError.self) { try H.run1("Gemm", [a, a, nil]) }
        #expect(throws: KernelError.self) { try H.run1("Gemm", [a, b, Tensor(zeros: .float32, shape: [3])]) }
        #expect(throws: KernelError.self) { try H.run1("Gemm", [a, b, Tensor(zeros: .float32, shape: [1, 2, 4])]) }
        #expect(throws: KernelError.self) { try H.run1("Gemm", [Tensor(zeros: .float32, shape: [2, 3, 1]), b, nil]) }
    }

    /// A float32 tensor's values in another dtype (integers are rounded).
    func cast(_ t: Tensor, _ dtype: DType) -> Tensor {
        let values = t.array(Float.self)
        switch dtype {
        case .float64: return Tensor(values.map { Double($0) }, shape: t.shape)
        case .float16: return Tensor(values.map { Float16($0) }, shape: t.shape)
        case .bfloat16: return Tensor(values.map { BFloat16($0) }, shape: t.shape)
        case .int64: return Tensor(values.map { Int64($0.rounded()) }, shape: t.shape)
        case .int32: return Tensor(values.map { Int32($0.rounded()) }, shape: t.shape)
        default: return t
        }
    }
}
