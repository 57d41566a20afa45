import Foundation
import Testing
@testable import TensorCore

@Suite("NPY files")
struct NPYTests {
    @Test(arguments: [DType.float32, .float64, .float16, .int64, .int32, .int8, .uint8, .bool])
    func roundTripsEveryNumPyType(_ dtype: DType) throws {
        let tensor = Tensor(zeros: dtype, shape: [2, 3])
        for i in 0..<tensor.byteCount { tensor.raw.storeBytes(of: UInt8(i % 2), toByteOffset: i, as: UInt8.self) }
        let decoded = try NPY.decode(try NPY.encode(tensor))
        #expect(decoded.dtype == dtype)
        #expect(decoded.shape == [2, 3])
        #expect(Data(bytes: decoded.raw, count: decoded.byteCount) == Data(bytes: tensor.raw, count: tensor.byteCount))
    }

    @Test func scalarsAndEmptyTensorsRoundTrip() throws {
        let scalar = try NPY.decode(try NPY.encode(Tensor(scalar: Int64(-7))))
        #expect(scalar.shape == [] && scalar.array(Int64.self) == [-7])
        let empty = try NPY.decode(try NPY.encode(Tensor(zeros: .float32, shape: [1, 0, 4])))
        #expect(empty.shape == [1, 0, 4] && empty.count == 0)
    }

    @Test func headerIsPaddedTo64Bytes() throws {
        let data = try NPY.encode(Tensor([Float(1), 2, 3], shape: [3]))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        #expect(data.count == 10 + headerLength + 12)
    }

    @Test func malformedFilesGiveClearErrors() {
        #expect(throws: TensorIOError.self) { try NPY.decode(Data("not numpy".utf8)) }
        var truncated = try! NPY.encode(Tensor([Float](repeating: 1, count: 16), shape: [16]))
        truncated.removeLast(8)
        #expect {
            try NPY.decode(truncated)
        } throws: { error in
            "\(error)".contains("needs 16 elements")
        }
        #expect(throws: TensorIOError.self) { try NPY.read(path: "/nonexistent/file.npy") }
    }

    @Test func bfloat16HasNoNumPyTypeAndIsRefused() {
        #expect(throws: TensorIOError.self) { try NPY.encode(Tensor(zeros: .bfloat16, shape: [2])) }
    }
}

@Suite("Tensor basics")
struct TensorTests {
    @Test func bfloat16RoundsToNearestEven() {
        #expect(BFloat16(Float(1.0)).float == 1.0)
        // 1 + 2^-8 lies exactly between two bfloat16 values; ties go to the even one (1.0).
        #expect(BFloat16(Float(1.0) + Float(1.0 / 256)).float == 1.0)
        #expect(BFloat16(Float(1.0) + Float(3.0 / 256)).float == Float(1.0) + Float(1.0 / 64))
        #expect(BFloat16(Float.nan).float.isNaN)
    }

    @Test func reshapeSharesStorage() {
        let tensor = Tensor([Float(1), 2, 3, 4, 5, 6], shape: [2, 3])
        let reshaped = tensor.reshaped([3, 2])
        #expect(reshaped.storage === tensor.storage)
        #expect(reshaped.strides == [2, 1])
    }
}
