internal import COnnxProto
import Foundation
import TensorCore

/// Turns `TensorProto`s into tensors: inline `raw_data` (viewed in place while the decoded
/// model lives), typed `*_data` fields (copied, converted), or external data (viewed in place in
/// a memory map of the data file, never copied unless misaligned).
final class TensorProtoDecoder {
    /// The folder external data paths are resolved against, already resolved (realpath).
    private let modelDirectory: String
    /// Keeps the decoded protobuf (and so every inline `raw_data`) alive for tensor views.
    private let owner: AnyObject
    private var mappedFiles: [String: MappedFile] = [:]

    init(modelDirectory: String, owner: AnyObject) {
        self.modelDirectory = modelDirectory
        self.owner = owner
    }

    func decode(_ proto: UnsafePointer<Onnx__TensorProto>, name fallbackName: String) throws(ONNXImportError) -> Tensor {
        let p = proto.pointee
        let name = p.name.map { String(cString: $0) } ?? fallbackName
        func fail(_ reason: String) -> ONNXImportError { .invalidTensor(tensor: name, reason: reason) }

        guard let dtype = DType(onnx: p.data_type) else {
            throw fail("data type \(DType.onnxName(p.data_type)) is not supported (supported: \(DType.allCases.filter { DType(onnx: $0.rawValue) != nil }.map(\.description).joined(separator: ", ")))")
        }
        var shape: [Int] = []
        var elements = 1
        for index in 0..<p.n_dims {
            let dim = p.dims[index]
            guard dim >= 0 else { throw fail("negative dimension \(dim) in dims") }
            shape.append(Int(dim))
            let (product, overflow) = elements.multipliedReportingOverflow(by: Int(dim))
            guard !overflow, product <= Int(Int32.max) * 64 else {
                throw fail("dims \(Array(UnsafeBufferPointer(start: p.dims, count: p.n_dims))) are absurdly large")
            }
            elements = product
        }
        let byteCount = elements * dtype.size

        if p.has_data_location != 0 && p.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            return try external(p, name: name, dtype: dtype, shape: shape, byteCount: byteCount)
        }
        if p.has_raw_data != 0 {
            guard p.raw_data.len == byteCount else {
                throw fail("dims \(shape) of \(dtype) need \(byteCount) bytes but raw_data holds \(p.raw_data.len)")
            }
            guard byteCount > 0, let data = p.raw_data.data else { return Tensor(zeros: dtype, shape: shape) }
            return view(UnsafeMutableRawPointer(data), dtype: dtype, shape: shape, owner: owner)
        }
        return try typedFields(p, name: name, dtype: dtype, shape: shape, elements: elements)
    }

    /// A tensor viewing `pointer`, or a copy when the address is not aligned for the element type.
    private func view(_ pointer: UnsafeMutableRawPointer, dtype: DType, shape: [Int], owner: AnyObject) -> Tensor {
        let byteCount = Tensor.elementCount(shape) * dtype.size
        let storage = TensorStorage(viewOf: pointer, byteCount: byteCount, owner: owner)
        let tensor = Tensor(dtype: dtype, shape: shape, storage: storage)
        return Int(bitPattern: pointer) % dtype.size == 0 ? tensor : tensor.copy()
    }

    private func typedFields(_ p: Onnx__TensorProto, name: String, dtype: DType, shape: [Int], elements: Int) throws(ONNXImportError) -> Tensor {
        func fail(_ field: String, _ count: Int) -> ONNXImportError {
            .invalidTensor(tensor: name, reason: "dims \(shape) need \(elements) elements but \(field) holds \(count)")
        }
        let tensor = Tensor(uninitialized: dtype, shape: shape)
        switch dtype {
        case .float32:
            guard p.n_float_data == elements else { throw fail("float_data", p.n_float_data) }
            if elements > 0 { tensor.raw.copyMemory(from: p.float_data, byteCount: elements * 4) }
        case .float64:
            guard p.n_double_data == elements else { throw fail("double_data", p.n_double_data) }
            if elements > 0 { tensor.raw.copyMemory(from: p.double_data, byteCount: elements * 8) }
        case .int64:
            guard p.n_int64_data == elements else { throw fail("int64_data", p.n_int64_data) }
            if elements > 0 { tensor.raw.copyMemory(from: p.int64_data, byteCount: elements * 8) }
        case .float24:
            // Unreachable: DType(onnx:) never gives our storage-only type.
            throw .invalidTensor(tensor: name, reason: "float24 is not an ONNX data type")
        case .int32, .int8, .int16, .uint8, .bool, .float16, .bfloat16:
            // ONNX stores these one per int32_data entry; 16-bit floats as their bit patterns.
            guard p.n_int32_data == elements else { throw fail("int32_data", p.n_int32_data) }
            let source = UnsafeBufferPointer(start: p.int32_data, count: elements)
            switch dtype {
            case .int32: for i in 0..<elements { tensor.pointer(Int32.self)[i] = source[i] }
            case .int8: for i in 0..<elements { tensor.pointer(Int8.self)[i] = Int8(truncatingIfNeeded: source[i]) }
            case .int16: for i in 0..<elements { tensor.pointer(Int16.self)[i] = Int16(truncatingIfNeeded: source[i]) }
            case .uint8: for i in 0..<elements { tensor.pointer(UInt8.self)[i] = UInt8(truncatingIfNeeded: source[i]) }
            case .bool: for i in 0..<elements { tensor.pointer(Bool.self)[i] = source[i] != 0 }
            case .float16:
                for i in 0..<elements { tensor.pointer(Float16.self)[i] = Float16(bitPattern: UInt16(truncatingIfNeeded: source[i])) }
            default:
                for i in 0..<elements { tensor.pointer(BFloat16.self)[i] = BFloat16(bits: UInt16(truncatingIfNeeded: source[i])) }
            }
        }
        return tensor
    }

    private func external(_ p: Onnx__TensorProto, name: String, dtype: DType, shape: [Int], byteCount: Int) throws(ONNXImportError) -> Tensor {
        var entries: [String: String] = [:]
        for index in 0..<p.n_external_data {
            guard let entry = p.external_data[index] else { continue }
            let key = entry.pointee.key.map { String(cString: $0) } ?? ""
            entries[key] = entry.pointee.value.map { String(cString: $0) } ?? ""
        }
        guard let location = entries["location"], !location.isEmpty else {
            throw .invalidTensor(tensor: name, reason: "external data without a 'location'")
        }
        func fail(_ reason: String) -> ONNXImportError { .externalData(tensor: name, location: location, reason: reason) }
        let offset = try parseNumber(entries["offset"], default: 0, field: "offset", fail: fail)
        let length = try parseNumber(entries["length"], default: byteCount, field: "length", fail: fail)
        guard length == byteCount else {
            throw fail("length \(length) disagrees with dims \(shape) of \(dtype) (\(byteCount) bytes)")
        }
        let file = try mappedFile(location, fail: fail)
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= file.byteCount else {
            throw fail("bytes \(offset)..<\(offset &+ length) run past the end of the file (\(file.byteCount) bytes); the data file is truncated or does not belong to this model")
        }
        guard byteCount > 0, let base = file.pointer else { return Tensor(zeros: dtype, shape: shape) }
        return view(base + offset, dtype: dtype, shape: shape, owner: file)
    }

    private func parseNumber(_ text: String?, default value: Int, field: String, fail: (String) -> ONNXImportError) throws(ONNXImportError) -> Int {
        guard let text else { return value }
        guard let number = Int(text), number >= 0 else { throw fail("\(field) '\(text)' is not a non-negative integer") }
        return number
    }

    /// Maps a data file once. The path must stay inside the model's folder: absolute paths, `..`
    /// escapes and symlinks pointing outside are refused (the location is untrusted input).
    private func mappedFile(_ location: String, fail: (String) -> ONNXImportError) throws(ONNXImportError) -> MappedFile {
        if let cached = mappedFiles[location] { return cached }
        guard !location.hasPrefix("/"), !location.contains("\0") else {
            throw fail("absolute paths are refused: external data must stay inside the model's folder")
        }
        let joined = modelDirectory + "/" + location
        guard let resolvedPointer = realpath(joined, nil) else {
            if location.split(separator: "/").contains("..") {
                throw fail("refused: the path leaves the model's folder")
            }
            throw fail("the data file does not exist next to the model (looked for '\(joined)')")
        }
        let resolved = String(cString: resolvedPointer)
        free(resolvedPointer)
        guard resolved.hasPrefix(modelDirectory + "/") else {
            throw fail("refused: the path resolves to '\(resolved)', outside the model's folder '\(modelDirectory)'")
        }
        do {
            let file = try MappedFile(path: resolved)
            mappedFiles[location] = file
            return file
        } catch {
            throw fail(error.description)
        }
    }
}
