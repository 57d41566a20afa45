import Testing
import TensorCore
@testable import Runtime

@Suite("ShapeKernels: Concat, Split, Expand, Tile, Range, Trilu, ScatterND, Pad")
struct ShapeOpsTests {
    typealias H = ShapeHarness

    // MARK: Concat

    @Test func concatAxes() throws {
        let a = H.arange([2, 3]), b = H.f32([10, 11, 12], [1, 3])
        let y = try H.run1("Concat", [a, b], ["axis": .int(0)])
        #expect(y.shape == [3, 3] && y.array(Float.self) == [0, 1, 2, 3, 4, 5, 10, 11, 12])
        let c = H.f32([7, 8], [2, 1])
        let z = try H.run1("Concat", [a, c, a], ["axis": .int(-1)])
        #expect(z.shape == [2, 7] && z.array(Float.self) == [0, 1, 2, 7, 0, 1, 2, 3, 4, 5, 8, 3, 4, 5])
    }

    @Test func concatWithEmptyInputs() throws {
        let a = H.arange([2, 3]), empty = Tensor(zeros: .float32, shape: [2, 0])
        let y = try H.run1("Concat", [a, empty, H.f32([9, 9], [2, 1])], ["axis": .int(1)])
        #expect(y.shape == [2, 4] && y.array(Float.self) == [0, 1, 2, 9, 3, 4, 5, 9])
        let past = Tensor(zeros: .float32, shape: [1, 2, 0, 4]), new = H.arange([1, 2, 3, 4])
        let kv = try H.run1("Concat", [past, new], ["axis": .int(-2)])
        #expect(kv.shape == [1, 2, 3, 4] && kv.array(Float.self) == new.array(Float.self))
        let none = try H.run1("Concat", [Tensor(zeros: .float32, shape: [0, 3]), Tensor(zeros: .float32, shape: [0, 3])],
                              ["axis": .int(0)])
        #expect(none.shape == [0, 3])
    }

    @Test func concatShapePlumbingAndErrors() throws {
        let y = try H.run1("Concat", [H.i64([2]), H.i64([-1]), H.i64([4, 8])], ["axis": .int(0)])
        #expect(y.array(Int64.self) == [2, -1, 4, 8])
        #expect(throws: KernelError.self) { try H.run1("Concat", [H.arange([2, 3]), H.arange([3])], ["axis": .int(0)]) }
        #expect(throws: KernelError.self) { try H.run1("Concat", [H.arange([2, 3]), H.arange([2, 2])], ["axis": .int(0)]) }
        #expect(throws: KernelError.self) { try H.run1("Concat", [H.arange([2]), H.i64([1])], ["axis": .int(0)]) }
        #expect(throws: KernelError.self) { try H.run1("Concat", [H.arange([2])], ["axis": .int(1)]) }
        #expect(throws: KernelError.self) { try H.run1("Concat", [H.arange([2])]) }
    }

    // MARK: Split

    @Test func splitSizesFromInputAndAttribute() throws {
        let x = H.arange([2, 6])
        let parts = try H.run("Split", [x, H.i64([2, 4])], opset: 13, outputs: 2, ["axis": .int(1)])
        #expect(parts.map(\.shape) == [[2, 2], [2, 4]])
        #expect(parts[0].array(Float.self) == [0, 1, 6, 7])
        #expect(parts[1].array(Float.self) == [2, 3, 4, 5, 8, 9, 10, 11])
        let old = try H.run("Split", [H.arange([2, 3])], opset: 11, outputs: 2, ["axis": .int(-1), "split": .ints([1, 2])])
        #expect(old.map(\.shape) == [[2, 1], [2, 2]] && old[1].array(Float.self) == [1, 2, 4, 5])
        let empty = try H.run("Split", [H.arange([3, 2]), H.i64([0, 3])], opset: 13, outputs: 2)
        #expect(empty.map(\.shape) == [[0, 2], [3, 2]])
    }

    @Test func splitEqualAndNumOutputs() throws {
        let equal = try H.run("Split", [H.arange([6, 2])], opset: 13, outputs: 3)
        #expect(equal.map(\.shape) == [[2, 2], [2, 2], [2, 2]] && equal[2].array(Float.self) == [8, 9, 10, 11])
        let uneven = try H.run("Split", [H.arange([2, 7])], opset: 18, outputs: 3, ["axis": .int(1), "num_outputs": .int(3)])
        #expect(uneven.map(\.shape) == [[2, 3], [2, 3], [2, 1]])
        #expect(uneven[2].array(Float.self) == [6, 13])
        #expect(throws: KernelError.self) { try H.run("Split", [H.arange([7])], opset: 13, outputs: 3) }
        #expect(throws: KernelError.self) { try H.run("Split", [H.arange([6]), H.i64([2, 2])], opset: 13, outputs: 2) }
        #expect(throws: KernelError.self) { try H.run("Split", [H.arange([6]), H.i64([7, -1])], opset: 13, outputs: 2) }
    }

    // MARK: Expand / Tile

    @Test func expandBidirectional() throws {
        let y = try H.run1("Expand", [H.f32([1, 2, 3], [3, 1]), H.i64([2, 1, 4])])
        #expect(y.shape == [2, 3, 4])
        #expect(Array(y.array(Float.self).prefix(12)) == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
        let keep = try H.run1("Expand", [H.arange([2, 3, 4]), H.i64([3, 1])])
        #expect(keep.shape == [2, 3, 4] && keep.array(Float.self) == H.arange([2, 3, 4]).array(Float.self))
        #expect(try H.run1("Expand", [H.arange([3, 1]), H.i64([1])]).shape == [3, 1])
        let s = try H.run1("Expand", [Tensor(scalar: Float(1.25)), H.i64([2, 3])])
        #expect(s.array(Float.self) == [Float](repeating: 1.25, count: 6))
        #expect(try H.run1("Expand", [H.arange([3, 1]), H.i64([0, 1, 1])]).shape == [0, 3, 1])
        let mask = try H.run1("Expand", [Tensor([true, false, true, true], shape: [1, 1, 1, 4]), H.i64([2, 1, 3, 4])])
        #expect(mask.shape == [2, 1, 3, 4] && Array(mask.array(Bool.self).suffix(4)) == [true, false, true, true])
        #expect(throws: KernelError.self) { try H.run1("Expand", [H.arange([3, 2]), H.i64([4, 3])]) }
        #expect(throws: KernelError.self) { try H.run1("Expand", [H.arange([3, 1]), H.i64([-1, 1])]) }
    }

    @Test func expandColumnAcrossWideRows() throws {
        // [20, 1] → [20, 24]: the repeated column is stride 0 inside a tiled copy.
        let y = try H.run1("Expand", [H.arange([20, 1]), H.i64([20, 24])])
        #expect(y.array(Float.self) == (0..<480).map { Float($0 / 24) })
        let z = try H.run1("Expand", [H.arange([1, 24]), H.i64([3, 20, 24])])
        #expect(z.array(Float.self) == (0..<1440).map { Float($0 % 24) })
    }

    @Test func tileRepeats() throws {
        let y = try H.run1("Tile", [H.arange([2, 3]), H.i64([2, 1])])
        #expect(y.shape == [4, 3] && y.array(Float.self) == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5])
        let z = try H.run1("Tile", [H.i64([1, 2], [1, 2]), H.i64([2, 3])])
        #expect(z.shape == [2, 6] && z.array(Int64.self) == [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2])
        #expect(try H.run1("Tile", [H.arange([2, 3]), H.i64([0, 2])]).shape == [0, 6])
        #expect(throws: KernelError.self) { try H.run1("Tile", [H.arange([2, 3]), H.i64([2])]) }
        #expect(throws: KernelError.self) { try H.run1("Tile", [H.arange([2, 3]), H.i64([-1, 1])]) }
    }

    // MARK: Range

    @Test func rangeIntegerTypes() throws {
        #expect(try H.run1("Range", [Tensor(scalar: Int64(0)), Tensor(scalar: Int64(5)), Tensor(scalar: Int64(1))])
            .array(Int64.self) == [0, 1, 2, 3, 4])
        #expect(try H.run1("Range", [Tensor(scalar: Int64(10)), Tensor(scalar: Int64(0)), Tensor(scalar: Int64(-3))])
            .array(Int64.self) == [10, 7, 4, 1])
        #expect(try H.run1("Range", [Tensor(scalar: Int64(5)), Tensor(scalar: Int64(0)), Tensor(scalar: Int64(1))])
            .shape == [0])
        #expect(try H.run1("Range", [Tensor(scalar: Int32(-3)), Tensor(scalar: Int32(4)), Tensor(scalar: Int32(2))])
            .array(Int32.self) == [-3, -1, 1, 3])
        let extreme = try H.run1("Range", [Tensor(scalar: Int64.max - 2), Tensor(scalar: Int64.max), Tensor(scalar: Int64(1))])
        #expect(extreme.array(Int64.self) == [Int64.max - 2, Int64.max - 1])
    }

    @Test func rangeFloatTypes() throws {
        #expect(try H.run1("Range", [Tensor(scalar: Float(0)), Tensor(scalar: Float(1)), Tensor(scalar: Float(0.25))])
            .array(Float.self) == [0, 0.25, 0.5, 0.75])
        #expect(try H.run1("Range", [Tensor(scalar: Float(1)), Tensor(scalar: Float(-1)), Tensor(scalar: Float(-0.5))])
            .array(Float.self) == [1, 0.5, 0, -0.5])
        let inexact = try H.run1("Range", [Tensor(scalar: Float(0)), Tensor(scalar: Float(1)), Tensor(scalar: Float(0.3))])
        #expect(inexact.shape == [4])
        let d = try H.run1("Range", [Tensor(scalar: 0.0), Tensor(scalar: 2.0), Tensor(scalar: 0.5)])
        #expect(d.dtype == .float64 && d.array(Double.self) == [0, 0.5, 1, 1.5])
    }

    @Test func rangeErrors() {
        #expect(throws: KernelError.self) {
            try H.run1("Range", [Tensor(scalar: Int64(0)), Tensor(scalar: Int64(5)), Tensor(scalar: Int64(0))])
        }
        #expect(throws: KernelError.self) {
            try H.run1("Range", [Tensor(scalar: Float(0)), Tensor(scalar: Float(5)), Tensor(scalar: Float(0))])
        }
        #expect(throws: KernelError.self) {
            try H.run1("Range", [Tensor(scalar: Int64(0)), Tensor(scalar: Float(5)), Tensor(scalar: Int64(1))])
        }
        #expect(throws: KernelError.self) {
            try H.run1("Range", [Tensor(scalar: Int64.min), Tensor(scalar: Int64.max), Tensor(scalar: Int64(1))])
        }
        #expect(throws: KernelError.self) {
            try H.run1("Range", [Tensor(scalar: Float(0)), Tensor(scalar: Float.infinity), Tensor(scalar: Float(1))])
        }
    }

    // MARK: Trilu

    @Test func triluUpperLowerAndK() throws {
        let x = H.arange([3, 3]).array(Float.self).map { $0 + 1 }
        let m = H.f32(x, [3, 3])  // 1…9
        #expect(try H.run1("Trilu", [m]).array(Float.self) == [1, 2, 3, 0, 5, 6, 0, 0, 9])
        #expect(try H.run1("Trilu", [m], ["upper": .int(0)]).array(Float.self) == [1, 0, 0, 4, 5, 0, 7, 8, 9])
        #expect(try H.run1("Trilu", [m, Tensor(scalar: Int64(1))]).array(Float.self) == [0, 2, 3, 0, 0, 6, 0, 0, 0])
        #expect(try H.run1("Trilu", [m, Tensor(scalar: Int64(-1))], ["upper": .int(0)]).array(Float.self)
            == [0, 0, 0, 4, 0, 0, 7, 8, 0])
        #expect(try H.run1("Trilu", [m, Tensor(scalar: Int64.max)]).array(Float.self) == [Float](repeating: 0, count: 9))
        #expect(try H.run1("Trilu", [m, Tensor(scalar: Int64.min)]).array(Float.self) == x)
    }

    @Test func triluRectangularBatchedAndInt() throws {
        let y = try H.run1("Trilu", [H.f32([Float](repeating: 1, count: 15), [3, 5]), Tensor(scalar: Int64(1))])
        #expect(y.array(Float.self) == [0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1])
        let b = try H.run1("Trilu", [H.arange([2, 2, 2]), nil], ["upper": .int(0)])
        #expect(b.array(Float.self) == [0, 0, 2, 3, 4, 0, 6, 7])
        let i = try H.run1("Trilu", [H.i64([1, 2, 3, 4], [2, 2]), Tensor(scalar: Int64(0))])
        #expect(i.array(Int64.self) == [1, 2, 0, 4])
        #expect(try H.run1("Trilu", [Tensor(zeros: .float32, shape: [0, 3])]).shape == [0, 3])
        #expect(throws: KernelError.self) { try H.run1("Trilu", [H.arange([3])]) }
    }

    // MARK: ScatterND

    @Test func scatterNDElementsAndRows() throws {
        let data = H.f32([1, 2, 3, 4, 5, 6, 7, 8])
        let y = try H.run1("ScatterND", [data, H.i64([4, 3, 1, 7], [4, 1]), H.f32([9, 10, 11, 12])])
        #expect(y.array(Float.self) == [1, 11, 3, 10, 9, 6, 7, 12])
        #expect(data.array(Float.self) == [1, 2, 3, 4, 5, 6, 7, 8])  // input untouched
        let rows = try H.run1("ScatterND", [H.arange([4, 3]), H.i64([-1, 0], [2, 1]), H.f32([7, 7, 7, 9, 9, 9], [2, 3])])
        #expect(rows.array(Float.self) == [9, 9, 9, 3, 4, 5, 6, 7, 8, 7, 7, 7])
        let full = try H.run1("ScatterND", [H.arange([2, 3, 4]), H.i64([1, 2, 3, 0, 0, 0], [2, 3]), H.f32([-1, -2])])
        #expect(full.array(Float.self)[23] == -1 && full.array(Float.self)[0] == -2)
    }

    @Test func scatterNDReductions() throws {
        let data = H.f32([1, 2, 3, 4])
        let idx = H.i64([0, 0, 2], [3, 1]), upd = H.f32([5, 6, 7])
        #expect(try H.run1("ScatterND", [data, idx, upd], opset: 16, ["reduction": .string("add")]).array(Float.self) == [12, 2, 10, 4])
        #expect(try H.run1("ScatterND", [data, idx, upd], opset: 16, ["reduction": .string("mul")]).array(Float.self) == [30, 2, 21, 4])
        #expect(try H.run1("ScatterND", [data, idx, upd], opset: 18, ["reduction": .string("max")]).array(Float.self) == [6, 2, 7, 4])
        #expect(try H.run1("ScatterND", [data, idx, upd], opset: 18, ["reduction": .string("min")]).array(Float.self) == [1, 2, 3, 4])
        let ints = try H.run1("ScatterND", [H.i64([1, 2]), H.i64([1, 1], [2, 1]), H.i64([3, 4])], opset: 16, ["reduction": .string("add")])
        #expect(ints.array(Int64.self) == [1, 9])
    }

    @Test func scatterNDErrors() {
        let data = H.arange([4])
        #expect(throws: KernelError.self) { try H.run1("ScatterND", [data, H.i64([4], [1, 1]), H.f32([1])]) }
        #expect(throws: KernelError.self) { try H.run1("ScatterND", [data, H.i64([1], [1, 1]), H.f32([1, 2])]) }
        #expect(throws: KernelError.self) { try H.run1("ScatterND", [data, H.i64([1], [1, 1]), H.i64([1])]) }
        #expect(throws: KernelError.self) {
            try H.run1("ScatterND", [data, H.i64([1], [1, 1]), H.f32([1])], ["reduction": .string("avg")])
        }
    }

    // MARK: Pad

    @Test func padConstantWithInputs() throws {
        let x = H.f32([1, 2, 3, 4], [2, 2])
        let y = try H.run1("Pad", [x, H.i64([1, 0, 0, 1]), Tensor(scalar: Float(9))], opset: 13)
        #expect(y.shape == [3, 3] && y.array(Float.self) == [9, 9, 9, 1, 2, 9, 3, 4, 9])
        let zero = try H.run1("Pad", [x, H.i64([0, 1, 0, 0])], opset: 13)
        #expect(zero.array(Float.self) == [0, 1, 2, 0, 3, 4])
        let crop = try H.run1("Pad", [H.arange([3, 3]), H.i64([-1, 0, 0, -1])], opset: 13)
        #expect(crop.shape == [2, 2] && crop.array(Float.self) == [3, 4, 6, 7])
        let axes = try H.run1("Pad", [x, H.i64([2, 1]), nil, H.i64([-1])], opset: 18)
        #expect(axes.shape == [2, 5] && axes.array(Float.self) == [0, 0, 1, 2, 0, 0, 0, 3, 4, 0])
        let ints = try H.run1("Pad", [H.i64([5]), H.i64([1, 2]), Tensor(scalar: Int64(-1))], opset: 13)
        #expect(ints.array(Int64.self) == [-1, 5, -1, -1])
    }

    @Test func padAttributesBeforeOpset11() throws {
        let y = try H.run1("Pad", [H.f32([1, 2])], opset: 2, ["pads": .ints([1, 1]), "value": .float(0.5)])
        #expect(y.array(Float.self) == [0.5, 1, 2, 0.5])
    }

    @Test func padEdgeReflectWrap() throws {
        let x = H.f32([1, 2, 3])
        #expect(try H.run1("Pad", [x, H.i64([2, 2])], opset: 13, ["mode": .string("edge")]).array(Float.self) == [1, 1, 1, 2, 3, 3, 3])
        #expect(try H.run1("Pad", [x, H.i64([2, 2])], opset: 13, ["mode": .string("reflect")]).array(Float.self) == [3, 2, 1, 2, 3, 2, 1])
        #expect(try H.run1("Pad", [x, H.i64([2, 2])], opset: 19, ["mode": .string("wrap")]).array(Float.self) == [2, 3, 1, 2, 3, 1, 2])
        let m = try H.run1("Pad", [H.f32([1, 2, 3, 4], [2, 2]), H.i64([1, 1, 0, 0])], opset: 13, ["mode": .string("reflect")])
        #expect(m.shape == [3, 3] && m.array(Float.self) == [4, 3, 4, 2, 1, 2, 4, 3, 4])
    }

    @Test func padErrorsAndEmpty() throws {
        let x = H.arange([2, 2])
        #expect(throws: KernelError.self) { try H.run1("Pad", [x, H.i64([1, 1])], opset: 13) }
        #expect(throws: KernelError.self) { try H.run1("Pad", [x, H.i64([-3, 0, 0, 0])], opset: 13) }
        #expect(throws: KernelError.self) { try H.run1("Pad", [x, H.i64([0, 0, 0, 0])], opset: 13, ["mode": .string("bogus")]) }
        #expect(throws: KernelError.self) {
            try H.run1("Pad", [Tensor(zeros: .float32, shape: [0]), H.i64([1, 1])], opset: 13, ["mode": .string("edge")])
        }
        let e = try H.run1("Pad", [Tensor(zeros: .float32, shape: [0, 2]), H.i64([1, 0, 0, 0]), Tensor(scalar: Float(3))], opset: 13)
        #expect(e.shape == [1, 2] && e.array(Float.self) == [3, 3])
    }
}
