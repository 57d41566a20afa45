import Foundation

/// NumPy `.npy` files (format versions 1–3, little-endian, C order), the exchange format for
/// comparing with other runtimes.
public enum NPY {
    /// NumPy's descr strings for each dtype. bfloat16 has no NumPy type and is refused.
    static func descr(for dtype: DType) -> String? {
        switch dtype {
        case .float32: "<f4"
        case .float64: "<f8"
        case .float16: "<f2"
        case .int64: "<i8"
        case .int32: "<i4"
        case .int8: "|i1"
        case .int16: "<i2"
        case .uint8: "|u1"
        case .bool: "|b1"
        case .bfloat16, .float24: nil
        }
    }

    static func dtype(forDescr descr: String) -> DType? {
        let normalized = descr.replacingOccurrences(of: "=", with: "<")
        return DType.allCases.first { self.descr(for: $0) == normalized }
            ?? (normalized == "<i1" ? .int8 : normalized == "<u1" ? .uint8 : normalized == "<b1" ? .bool : nil)
    }

    public static func read(path: String) throws(TensorIOError) -> Tensor {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .cannotOpen(path: path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, path: path)
    }

    public static func decode(_ data: Data, path: String = "<memory>") throws(TensorIOError) -> Tensor {
        let bytes = [UInt8](data)
        func fail(_ reason: String) -> TensorIOError { .malformed(path: path, reason: reason) }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("missing the \\x93NUMPY magic")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported format version \(major)")
        }
        guard headerStart + headerLength <= bytes.count else { throw fail("truncated header") }
        guard let header = String(bytes: bytes[headerStart..<headerStart + headerLength], encoding: .utf8) else {
            throw fail("header is not text")
        }
        guard let descr = field("descr", in: header) else { throw fail("header has no 'descr'") }
        let descrValue = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        guard let dtype = dtype(forDescr: descrValue) else {
            throw fail("unsupported dtype '\(descrValue)' (supported: float32/64/16, int64/32/8, uint8, bool)")
        }
        if let fortran = field("fortran_order", in: header), fortran.trimmingCharacters(in: .whitespaces) == "True" {
            throw fail("Fortran-ordered arrays are not supported; save with np.ascontiguousarray")
        }
        guard let shapeText = tuple("shape", in: header) else { throw fail("header has no 'shape'") }
        var shape: [Int] = []
        for part in shapeText.split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let dim = Int(trimmed), dim >= 0 else { throw fail("bad dimension '\(trimmed)' in shape") }
            shape.append(dim)
        }
        let (elements, overflow) = shape.reduce((1, false)) { acc, dim in
            let (product, o) = acc.0.multipliedReportingOverflow(by: dim)
            return (product, acc.1 || o)
        }
        let dataStart = headerStart + headerLength
        guard !overflow, elements <= (bytes.count - dataStart) / dtype.size else {
            throw fail("shape \(shape) needs \(elements) elements of \(dtype) but the file holds \(bytes.count - dataStart) data bytes")
        }
        let tensor = Tensor(uninitialized: dtype, shape: shape)
        bytes.withUnsafeBytes { source in
            if tensor.byteCount > 0 {
                tensor.raw.copyMemory(from: source.baseAddress! + dataStart, byteCount: tensor.byteCount)
            }
        }
        return tensor
    }

    public static func encode(_ tensor: Tensor) throws(TensorIOError) -> Data {
        guard let descr = descr(for: tensor.dtype) else {
            throw .cannotWrite(path: "<memory>", reason: "\(tensor.dtype) has no NumPy equivalent; cast it first")
        }
        let shapeText = tensor.shape.isEmpty ? "()"
            : tensor.shape.count == 1 ? "(\(tensor.shape[0]),)"
            : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad with spaces so the data starts on a 64-byte boundary; the header ends in a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = header.utf8.count
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(Data(bytes: tensor.raw, count: tensor.byteCount))
        return data
    }

    public static func write(_ tensor: Tensor, to path: String) throws(TensorIOError) {
        let data: Data
        do { data = try encode(tensor) } catch { throw .cannotWrite(path: path, reason: error.description) }
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .cannotWrite(path: path, reason: (error as NSError).localizedDescription)
        }
    }

    /// The raw text of `'key': value` in a Python dict literal, up to the next top-level comma.
    private static func field(_ key: String, in header: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        let rest = header[range.upperBound...]
        let end = rest.firstIndex(of: ",") ?? rest.firstIndex(of: "}") ?? rest.endIndex
        return String(rest[..<end])
    }

    /// The inside of the parenthesised tuple after `'key':`.
    private static func tuple(_ key: String, in header: String) -> String? {
        guard let range = header.range(of: "'\(key)':"),
              let open = header[range.upperBound...].firstIndex(of: "("),
              let close = header[open...].firstIndex(of: ")") else { return nil }
        return String(header[header.index(after: open)..<close])
    }
}
