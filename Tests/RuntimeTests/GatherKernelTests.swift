import Testing
import TensorCore
@testable import Runtime

@Suite("GatherKernels: Gather, GatherND, GatherElements")
struct GatherKernelTests {
    typealias H = ShapeHarness

    @Test func gatherEmbeddingRows() throws {
        let data = H.arange([5, 2])  // rows [0,1], [2,3], [4,5], [6,7], [8,9]
        let y = try H.run1("Gather", [data, H.i64([4, 0, 1, 4], [2, 2])])
        #expect(y.shape == [2, 2, 2])
        #expect(y.array(Float.self) == [8, 9, 0, 1, 2, 3, 8, 9])
    }

    @Test func gatherNegativeIndicesAndInt32() throws {
        let data = H.arange([5, 3])
        let y = try H.run1("Gather", [data, H.i64([-1, 0, -5, 2])])
        #expect(y.array(Float.self) == [12, 13, 14, 0, 1, 2, 0, 1, 2, 6, 7, 8])
        let z = try H.run1("Gather", [H.arange([6, 2]), H.i32([5, 1, 0, -6], [2, 2])])
        #expect(z.shape == [2, 2, 2] && z.array(Float.self) == [10, 11, 2, 3, 0, 1, 0, 1])
    }

    @Test func gatherOnLastAndNegativeAxis() throws {
        let data = H.arange([2, 3, 4])
        let y = try H.run1("Gather", [data, H.i64([3, 0, -2])], ["axis": .int(-1)])
        #expect(y.shape == [2, 3, 3])
        #expect(Array(y.array(Float.self).prefix(6)) == [3, 0, 2, 7, 4, 6])
        let z = try H.run1("Gather", [H.arange([3, 4]), H.i64([0, 3, 1, 1], [2, 2])], ["axis": .int(1)])
        #expect(z.shape == [3, 2, 2] && z.array(Float.self) == [0, 3, 1, 1, 4, 7, 5, 5, 8, 11, 9, 9])
    }

    @Test func gatherScalarIndexDropsAxis() throws {
        let shape = try H.run1("Gather", [H.i64([7, 3, 5]), Tensor(scalar: Int64(1))])
        #expect(shape.shape == [] && shape.array(Int64.self) == [3])
        let y = try H.run1("Gather", [H.arange([2, 3, 4]), Tensor(scalar: Int64(-1))], ["axis": .int(1)])
        #expect(y.shape == [2, 4] && y.array(Float.self) == [8, 9, 10, 11, 20, 21, 22, 23])
    }

    @Test func gatherEmptyIndicesAndAllDtypes() throws {
        let e = try H.run1("Gather", [H.arange([4, 3]), H.i64([])])
        #expect(e.shape == [0, 3])
        for dtype in DType.allCases {
            let data = H.arange(dtype, [4, 3])
            let y = try H.run1("Gather", [data, H.i64([2, -4])])
            let rows = H.bytes(data)
            let rowBytes = 3 * dtype.size
            #expect(H.bytes(y) == Array(rows[(2 * rowBytes)..<(3 * rowBytes)] + rows[0..<rowBytes]), "\(dtype)")
        }
    }

    @Test func gatherErrors() {
        #expect(throws: KernelError.self) { try H.run1("Gather", [H.arange([3, 2]), H.i64([3])]) }
        #expect(throws: KernelError.self) { try H.run1("Gather", [H.arange([3, 2]), H.i64([-4])]) }
        #expect(throws: KernelError.self) { try H.run1("Gather", [H.arange([3, 2]), H.i64([0])], ["axis": .int(2)]) }
        #expect(throws: KernelError.self) { try H.run1("Gather", [Tensor(scalar: Float(1)), H.i64([0])]) }
        #expect(throws: KernelError.self) { try H.run1("Gather", [H.arange([3, 2]), H.f32([0])]) }
        #expect(throws: KernelError.self) { try H.run1("Gather", [H.arange([0, 2]), H.i64([0])]) }
    }

    // MARK: GatherND

    @Test func gatherNDFullAndPartialIndex() throws {
        let y = try H.run1("GatherND", [H.arange([3, 4]), H.i64([0, 0, 2, 3, 1, 2], [3, 2])])
        #expect(y.shape == [3] && y.array(Float.self) == [0, 11, 6])
        let z = try H.run1("GatherND", [H.arange([3, 2, 4]), H.i64([2, 0, 1, 1], [2, 2, 1])])
        #expect(z.shape == [2, 2, 2, 4])
        let d = H.arange([3, 2, 4]).array(Float.self)
        #expect(z.array(Float.self) == Array(d[16..<24] + d[0..<8] + d[8..<16] + d[8..<16]))
    }

    @Test func gatherNDBatchDims() throws {
        // Pick token 4 of batch 0 and token 1 of batch 1 from [2, 5, 3].
        let y = try H.run1("GatherND", [H.arange([2, 5, 3]), H.i64([4, 1], [2, 1])], ["batch_dims": .int(1)])
        #expect(y.shape == [2, 3] && y.array(Float.self) == [12, 13, 14, 18, 19, 20])
        let z = try H.run1("GatherND", [H.arange([2, 3, 4]), H.i64([0, 1, 2, 3, 1, 0, 0, 0], [2, 2, 2])],
                           ["batch_dims": .int(1)])
        #expect(z.shape == [2, 2] && z.array(Float.self) == [1, 11, 16, 12])
    }

    @Test func gatherNDNegativeAndErrors() throws {
        let y = try H.run1("GatherND", [H.arange([3, 4]), H.i64([-1, -1, 0, -4], [2, 2])])
        #expect(y.array(Float.self) == [11, 0])
        #expect(throws: KernelError.self) { try H.run1("GatherND", [H.arange([3, 4]), H.i64([3, 0], [1, 2])]) }
        #expect(throws: KernelError.self) { try H.run1("GatherND", [H.arange([3, 4]), H.i64([0, 0, 0], [1, 3])]) }
        #expect(throws: KernelError.self) {
            try H.run1("GatherND", [H.arange([2, 3]), H.i64([0, 0, 0], [3, 1])], ["batch_dims": .int(1)])
        }
        #expect(try H.run1("GatherND", [H.arange([3, 4]), H.i64([], [0, 1])]).shape == [0, 4])
    }

    // MARK: GatherElements

    @Test func gatherElementsAxes() throws {
        let data = H.f32([1, 2, 3, 4], [2, 2])
        let y = try H.run1("GatherElements", [data, H.i64([0, 0, 1, 0], [2, 2])], ["axis": .int(1)])
        #expect(y.array(Float.self) == [1, 1, 4, 3])
        let d3 = H.f32([1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 3])
        let z = try H.run1("GatherElements", [d3, H.i32([1, 2, 0, 2, 0, 0], [2, 3])])
        #expect(z.shape == [2, 3] && z.array(Float.self) == [4, 8, 3, 7, 2, 3])
        let n = try H.run1("GatherElements", [d3, H.i64([-1, -3], [1, 2])], ["axis": .int(-1)])
        #expect(n.array(Float.self) == [3, 1])
    }

    @Test func gatherElementsErrorsAndEmpty() throws {
        let d = H.arange([2, 2])
        #expect(throws: KernelError.self) { try H.run1("GatherElements", [d, H.i64([2], [1, 1])]) }
        #expect(throws: KernelError.self) { try H.run1("GatherElements", [d, H.i64([0, 0, 0], [1, 3])]) }
        #expect(throws: KernelError.self) { try H.run1("GatherElements", [d, H.i64([0])]) }
        #expect(try H.run1("GatherElements", [d, H.i64([], [0, 2])]).shape == [0, 2])
    }
}
