import Graph
import Testing
import TensorCore
@testable import Runtime

/// Runs one registered kernel on hand-built tensors (nil = omitted optional input).
enum ShapeHarness {
    static func run(_ op: String, _ inputs: [Tensor?], opset: Int = 18, outputs: Int = 1,
                    _ attributes: [String: AttributeValue] = [:]) throws -> [Tensor] {
        // The same node-building harness as the other kernel suites, at the shape ops' default opset.
        try KernelHarness.run(op, inputs, outputs: outputs, opset: opset, attributes)
    }

    static func run1(_ op: String, _ inputs: [Tensor?], opset: Int = 18,
                     _ attributes: [String: AttributeValue] = [:]) throws -> Tensor {
        let results = try run(op, inputs, opset: opset, outputs: 1, attributes)
        guard results.count == 1 else { throw KernelError("\(op) returned \(results.count) outputs") }
        return results[0]
    }

    static func i64(_ values: [Int], _ shape: [Int]? = nil) -> Tensor {
        Tensor(values.map { Int64($0) }, shape: shape ?? [values.count])
    }

    static func i32(_ values: [Int], _ shape: [Int]? = nil) -> Tensor {
        Tensor(values.map { Int32($0) }, shape: shape ?? [values.count])
    }

    static func f32(_ values: [Float], _ shape: [Int]? = nil) -> Tensor {
        Tensor(values, shape: shape ?? [values.count])
    }

    /// 0, 1, 2, … as float32 in `shape`.
    static func arange(_ shape: [Int]) -> Tensor {
        Tensor((0..<Tensor.elementCount(shape)).map { Float($0) }, shape: shape)
    }

    /// 0, 1, 2, … (wrapping for narrow types) in any dtype.
    static func arange(_ dtype: DType, _ shape: [Int]) -> Tensor {
        let n = Tensor.elementCount(shape)
        switch dtype {
        case .float32: return arange(shape)
        case .float64: return Tensor((0..<n).map { Double($0) }, shape: shape)
        case .float16: return Tensor((0..<n).map { Float16(Float($0 % 2048)) }, shape: shape)
        case .bfloat16: return Tensor((0..<n).map { BFloat16(Float($0 % 256)) }, shape: shape)
        case .float24: return Tensor((0..<n).map { Float24(truncating: Float($0 % 65536)) }, shape: shape)
        case .int64: return Tensor((0..<n).map { Int64($0) }, shape: shape)
        case .int32: return Tensor((0..<n).map { Int32($0) }, shape: shape)
        case .int8: return Tensor((0..<n).map { Int8(truncatingIfNeeded: $0) }, shape: shape)
        case .int16: return Tensor((0..<n).map { Int16(truncatingIfNeeded: $0) }, shape: shape)
        case .uint8: return Tensor((0..<n).map { UInt8(truncatingIfNeeded: $0) }, shape: shape)
        case .bool: return Tensor((0..<n).map { $0 % 3 == 0 }, shape: shape)
        }
    }

    /// The raw bytes of a tensor, for exact comparison in any dtype.
    static func bytes(_ t: Tensor) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: t.raw, count: t.byteCount))
    }
}

@Suite("ShapeKernels: constants, shape queries, reshapes")
struct ShapeKernelTests {
    typealias H = ShapeHarness

    // MARK: Constant

    @Test func constantValueTensorIsReturned() throws {
        let t = H.f32([1, 2, 3, 4, 5, 6], [2, 3])
        let y = try H.run1("Constant", [], ["value": .tensor(t)])
        #expect(y.shape == [2, 3])
        #expect(y.array(Float.self) == [1, 2, 3, 4, 5, 6])
    }

    @Test func constantScalarAndListAttributes() throws {
        let f = try H.run1("Constant", [], ["value_float": .float(2.5)])
        #expect(f.dtype == .float32 && f.shape == [] && f.array(Float.self) == [2.5])
        let fs = try H.run1("Constant", [], ["value_floats": .floats([1, -0.5, 3])])
        #expect(fs.shape == [3] && fs.array(Float.self) == [1, -0.5, 3])
        let i = try H.run1("Constant", [], ["value_int": .int(-7)])
        #expect(i.dtype == .int64 && i.shape == [] && i.array(Int64.self) == [-7])
        let ints = try H.run1("Constant", [], ["value_ints": .ints([0, -1, 4])])
        #expect(ints.dtype == .int64 && ints.shape == [3] && ints.array(Int64.self) == [0, -1, 4])
        let empty = try H.run1("Constant", [], ["value_ints": .ints([])])
        #expect(empty.shape == [0])
    }

    @Test func constantRejectsStringsSparseAndAmbiguity() {
        #expect(throws: KernelError.self) { try H.run1("Constant", [], ["value_string": .string("x")]) }
        #expect(throws: KernelError.self) { try H.run1("Constant", [], ["value_strings": .strings(["x"])]) }
        #expect(throws: KernelError.self) { try H.run1("Constant", [], ["sparse_value": .unsupported(kind: "sparse_tensor")]) }
        #expect(throws: KernelError.self) { try H.run1("Constant", []) }
        #expect(throws: KernelError.self) {
            try H.run1("Constant", [], ["value_int": .int(1), "value_float": .float(1)])
        }
    }

    // MARK: ConstantOfShape

    @Test func constantOfShapeDefaultsToFloatZero() throws {
        let y = try H.run1("ConstantOfShape", [H.i64([2, 3])])
        #expect(y.dtype == .float32 && y.shape == [2, 3] && y.array(Float.self) == [Float](repeating: 0, count: 6))
    }

    @Test func constantOfShapeUsesValueDtype() throws {
        let y = try H.run1("ConstantOfShape", [H.i64([3])], ["value": .tensor(H.i64([7]))])
        #expect(y.dtype == .int64 && y.array(Int64.self) == [7, 7, 7])
        let f = try H.run1("ConstantOfShape", [H.i64([2, 2])], ["value": .tensor(H.f32([1.5]))])
        #expect(f.array(Float.self) == [1.5, 1.5, 1.5, 1.5])
        let b = try H.run1("ConstantOfShape", [H.i64([5])], ["value": .tensor(Tensor([true], shape: [1]))])
        #expect(b.array(Bool.self) == [true, true, true, true, true])
    }

    @Test func constantOfShapeEmptyShapeGivesScalarAndZeroDimGivesEmpty() throws {
        let s = try H.run1("ConstantOfShape", [H.i64([])], ["value": .tensor(H.f32([3]))])
        #expect(s.shape == [] && s.array(Float.self) == [3])
        let e = try H.run1("ConstantOfShape", [H.i64([2, 0, 3])], ["value": .tensor(H.i64([1]))])
        #expect(e.shape == [2, 0, 3] && e.count == 0)
    }

    @Test func constantOfShapeRejectsNegativeAndHugeShapes() {
        #expect(throws: KernelError.self) { try H.run1("ConstantOfShape", [H.i64([2, -1])]) }
        #expect(throws: KernelError.self) { try H.run1("ConstantOfShape", [H.i64([Int(Int64.max), 4])]) }
        #expect(throws: KernelError.self) {
            try H.run1("ConstantOfShape", [H.i64([2])], ["value": .tensor(H.f32([1, 2]))])
        }
    }

    // MARK: Shape, Size, Identity

    @Test func shapeWithStartAndEnd() throws {
        let x = Tensor(zeros: .float32, shape: [2, 3, 4, 5])
        func shape(_ attributes: [String: AttributeValue], opset: Int = 15) throws -> [Int64] {
            let y = try H.run1("Shape", [x], opset: opset, attributes)
            #expect(y.dtype == .int64 && y.rank == 1)
            return y.array(Int64.self)
        }
        #expect(try shape([:], opset: 13) == [2, 3, 4, 5])
        #expect(try shape([:]) == [2, 3, 4, 5])
        #expect(try shape(["start": .int(1)]) == [3, 4, 5])
        #expect(try shape(["end": .int(-1)]) == [2, 3, 4])
        #expect(try shape(["start": .int(-2)]) == [4, 5])
        #expect(try shape(["start": .int(1), "end": .int(3)]) == [3, 4])
        #expect(try shape(["start": .int(-10), "end": .int(10)]) == [2, 3, 4, 5])
        #expect(try shape(["start": .int(3), "end": .int(1)]) == [])
        #expect(try shape(["start": .int(Int.min), "end": .int(Int.max)]) == [2, 3, 4, 5])
    }

    @Test func shapeOfScalarAndEmpty() throws {
        let s = try H.run1("Shape", [Tensor(scalar: Float(1))])
        #expect(s.shape == [0])
        let e = try H.run1("Shape", [Tensor(zeros: .float32, shape: [3, 0, 2])])
        #expect(e.array(Int64.self) == [3, 0, 2])
    }

    @Test func sizeCountsElements() throws {
        let y = try H.run1("Size", [Tensor(zeros: .int8, shape: [2, 3, 4])])
        #expect(y.dtype == .int64 && y.shape == [] && y.array(Int64.self) == [24])
        #expect(try H.run1("Size", [Tensor(zeros: .float32, shape: [3, 0])]).array(Int64.self) == [0])
        #expect(try H.run1("Size", [Tensor(scalar: Float(1))]).array(Int64.self) == [1])
    }

    @Test func identityIsZeroCopy() throws {
        let x = H.arange([2, 3])
        let y = try H.run1("Identity", [x])
        #expect(y.storage === x.storage && y.shape == [2, 3])
    }

    // MARK: Unsqueeze / Squeeze

    @Test func unsqueezeAttributeBeforeOpset13() throws {
        let x = H.arange([2, 3])
        #expect(try H.run1("Unsqueeze", [x], opset: 11, ["axes": .ints([0])]).shape == [1, 2, 3])
        #expect(try H.run1("Unsqueeze", [x], opset: 11, ["axes": .ints([-1])]).shape == [2, 3, 1])
        #expect(try H.run1("Unsqueeze", [x], opset: 11, ["axes": .ints([3, 0])]).shape == [1, 2, 3, 1])
        #expect(throws: KernelError.self) { try H.run1("Unsqueeze", [x], opset: 11) }
    }

    @Test func unsqueezeInputFromOpset13() throws {
        let x = H.arange([2, 3])
        let y = try H.run1("Unsqueeze", [x, H.i64([1])], opset: 13)
        #expect(y.shape == [2, 1, 3] && y.storage === x.storage)
        #expect(try H.run1("Unsqueeze", [x, H.i64([-1, 0])], opset: 13).shape == [1, 2, 3, 1])
        #expect(try H.run1("Unsqueeze", [x, H.i64([2, 0])], opset: 13).shape == [1, 2, 1, 3])
        #expect(try H.run1("Unsqueeze", [Tensor(scalar: Int64(5)), H.i64([0])], opset: 13).shape == [1])
        #expect(throws: KernelError.self) { try H.run1("Unsqueeze", [x, H.i64([0, 0])], opset: 13) }
        #expect(throws: KernelError.self) { try H.run1("Unsqueeze", [x, H.i64([4])], opset: 13) }
        #expect(throws: KernelError.self) { try H.run1("Unsqueeze", [x], opset: 13) }
    }

    @Test func squeezeAxesAndDefaults() throws {
        let x = H.arange([1, 3, 1, 2])
        #expect(try H.run1("Squeeze", [x], opset: 11, ["axes": .ints([0, 2])]).shape == [3, 2])
        #expect(try H.run1("Squeeze", [x], opset: 11).shape == [3, 2])
        #expect(try H.run1("Squeeze", [H.arange([2, 3, 1, 2]), H.i64([-2])], opset: 13).shape == [2, 3, 2])
        #expect(try H.run1("Squeeze", [x, nil], opset: 13).shape == [3, 2])
        #expect(try H.run1("Squeeze", [x, H.i64([2, 0])], opset: 13).shape == [3, 2])
        #expect(try H.run1("Squeeze", [H.i64([7], [1, 1])], opset: 13).shape == [])
        #expect(try H.run1("Squeeze", [Tensor(zeros: .float32, shape: [0, 1, 3]), H.i64([1])], opset: 13).shape == [0, 3])
    }

    @Test func squeezeNonUnitDimThrows() {
        #expect(throws: KernelError.self) { try H.run1("Squeeze", [H.arange([1, 3]), H.i64([1])], opset: 13) }
        #expect(throws: KernelError.self) { try H.run1("Squeeze", [H.arange([1, 3]), H.i64([2])], opset: 13) }
        #expect(throws: KernelError.self) { try H.run1("Squeeze", [H.arange([1, 3])], opset: 11, ["axes": .ints([1])]) }
    }

    // MARK: Reshape / Flatten

    @Test func reshapeZeroAndInferred() throws {
        let x = H.arange([2, 3, 4])
        func reshape(_ shape: [Int], opset: Int = 14, _ attributes: [String: AttributeValue] = [:]) throws -> [Int] {
            let y = try H.run1("Reshape", [x, H.i64(shape)], opset: opset, attributes)
            #expect(y.storage === x.storage)
            return y.shape
        }
        #expect(try reshape([4, 6]) == [4, 6])
        #expect(try reshape([0, 12]) == [2, 12])
        #expect(try reshape([-1, 4]) == [6, 4])
        #expect(try reshape([0, -1, 2]) == [2, 6, 2])
        #expect(try reshape([0, 0, 2, 2]) == [2, 3, 2, 2])
        #expect(try reshape([0, -1], opset: 13) == [2, 12])
        #expect(try H.run1("Reshape", [x, H.i32([3, -1])]).shape == [3, 8])
    }

    @Test func reshapeAllowZeroAndEmpty() throws {
        let empty = Tensor(zeros: .float32, shape: [0, 3])
        #expect(try H.run1("Reshape", [empty, H.i64([3, 0])], ["allowzero": .int(1)]).shape == [3, 0])
        // allowzero=0: the 0 copies input dim 1 (which is 3): [3, 3] has 9 elements, not 0.
        #expect(throws: KernelError.self) { try H.run1("Reshape", [empty, H.i64([3, 0])]) }
        let e2 = Tensor(zeros: .float32, shape: [2, 0, 3])
        #expect(try H.run1("Reshape", [e2, H.i64([6, 0])]).shape == [6, 0])
        #expect(try H.run1("Reshape", [e2, H.i64([0, -1])]).shape == [2, 0])
        #expect(try H.run1("Reshape", [H.f32([3.5]), H.i64([])]).shape == [])
        #expect(throws: KernelError.self) {
            try H.run1("Reshape", [empty, H.i64([0, -1])], ["allowzero": .int(1)])
        }
    }

    @Test func reshapeErrors() {
        let x = H.arange([2, 3, 4])
        #expect(throws: KernelError.self) { try H.run1("Reshape", [x, H.i64([5, -1])]) }
        #expect(throws: KernelError.self) { try H.run1("Reshape", [x, H.i64([-1, -1])]) }
        #expect(throws: KernelError.self) { try H.run1("Reshape", [x, H.i64([4, 7])]) }
        #expect(throws: KernelError.self) { try H.run1("Reshape", [x, H.i64([0, 0, 0, 0])]) }
        #expect(throws: KernelError.self) { try H.run1("Reshape", [x, H.i64([-2, 12])]) }
        #expect(throws: KernelError.self) { try H.run1("Reshape", [x, H.i64([Int(Int64.max), Int(Int64.max)])]) }
        #expect(throws: KernelError.self) { try H.run1("Reshape", [x, H.f32([24])]) }
    }

    @Test func flattenAxes() throws {
        let x = H.arange([2, 3, 2, 2])
        func flat(_ axis: Int?) throws -> [Int] {
            try H.run1("Flatten", [x], axis.map { ["axis": .int($0)] } ?? [:]).shape
        }
        #expect(try flat(nil) == [2, 12])
        #expect(try flat(0) == [1, 24])
        #expect(try flat(2) == [6, 4])
        #expect(try flat(-1) == [12, 2])
        #expect(try flat(4) == [24, 1])
        #expect(try flat(-4) == [1, 24])
        #expect(throws: KernelError.self) { try flat(5) }
        #expect(throws: KernelError.self) { try flat(-5) }
        #expect(try H.run1("Flatten", [Tensor(scalar: Float(2))], ["axis": .int(0)]).shape == [1, 1])
    }
}
