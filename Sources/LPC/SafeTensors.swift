import Foundation
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// A small safetensors reader/writer (https://github.com/huggingface/safetensors):
/// 8-byte little-endian header length N, N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …, "__metadata__": {…}}`
/// (padded with spaces to a multiple of 8), then the raw little-endian data; offsets are relative to
/// the start of the data. Tensors are written in name order, contiguous, without gaps.
public enum SafeTensors {
    /// A named tensor file's contents.
    public struct File {
        public var tensors: [String: Tensor]
        public var metadata: [String: String]

        public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
            self.tensors = tensors
            self.metadata = metadata
        }

        /// The tensor called `name`, or an error naming the file and listing what it holds.
        public func tensor(_ name: String, path: String = "") throws -> Tensor {
            guard let t = tensors[name] else {
                throw LPCError.checkpoint("\(path.isEmpty ? "safetensors file" : path): no tensor '\(name)' (it holds: \(tensors.keys.sorted().joined(separator: ", ")))")
            }
            return t
        }
    }

    static func code(_ dtype: DType) -> String {
        switch dtype {
        case .float32: "F32"
        case .float64: "F64"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .int64: "I64"
        case .int32: "I32"
        case .int8: "I8"
        case .int16: "I16"
        case .uint8: "U8"
        case .bool: "BOOL"
        case .float24: "F24" // weight storage only, never saved; not a safetensors type (reading it back fails)
        }
    }

    static func dtype(code: String) -> DType? {
        switch code {
        case "F32": .float32
        case "F64": .float64
        case "F16": .float16
        case "BF16": .bfloat16
        case "I64": .int64
        case "I32": .int32
        case "I8": .int8
        case "I16": .int16
        case "U8": .uint8
        case "BOOL": .bool
        default: nil
        }
    }

    /// Serialises tensors (name order) and string metadata.
    public static func encode(_ file: File) -> Data {
        let names = file.tensors.keys.sorted()
        var header = "{"
        var offset = 0
        var first = true
        if !file.metadata.isEmpty {
            header += "\"__metadata__\":{"
            header += file.metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(file.metadata[$0]!))" }
                .joined(separator: ",")
            header += "}"
            first = false
        }
        for name in names {
            let t = file.tensors[name]!
            if !first { header += "," }
            first = false
            let shape = t.shape.map(String.init).joined(separator: ",")
            header += "\(jsonString(name)):{\"dtype\":\"\(code(t.dtype))\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.byteCount)]}"
            offset += t.byteCount
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var data = Data(capacity: 8 + headerBytes.count + offset)
        var n = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(contentsOf: headerBytes)
        for name in names {
            let t = file.tensors[name]!
            if t.byteCount > 0 { data.append(Data(bytes: t.raw, count: t.byteCount)) }
        }
        return data
    }

    /// Parses a safetensors byte buffer; `path` only names the source in errors.
    public static func decode(_ data: Data, path: String = "<memory>") throws -> File {
        func fail(_ why: String) -> LPCError { .checkpoint("\(path): not a valid safetensors file: \(why)") }
        guard data.count >= 8 else { throw fail("\(data.count) bytes, shorter than the 8-byte header length") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(data.count - 8), n <= 100_000_000 else {
            throw fail("header length \(n) exceeds the file (\(data.count) bytes)")
        }
        let headerEnd = 8 + Int(n)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)) } catch {
            throw fail("header is not JSON (\(error.localizedDescription))")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }
        let dataCount = data.count - headerEnd
        var file = File()
        var ranges: [(Int, Int, String)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let meta = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in meta {
                    guard let s = v as? String else { throw fail("__metadata__['\(k)'] is not a string") }
                    file.metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any],
                  let code = entry["dtype"] as? String,
                  let shape = (entry["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (entry["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  offsets.count == 2
            else { throw fail("tensor '\(name)' lacks dtype, shape or data_offsets") }
            guard let dtype = dtype(code: code) else { throw fail("tensor '\(name)' has unsupported dtype \(code)") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor '\(name)' has a negative dimension") }
            let (begin, end) = (offsets[0], offsets[1])
            let bytes = Tensor.elementCount(shape) * dtype.size
            guard begin >= 0, end >= begin, end <= dataCount else {
                throw fail("tensor '\(name)' data_offsets [\(begin), \(end)] outside the \(dataCount) data bytes")
            }
            guard end - begin == bytes else {
                throw fail("tensor '\(name)' \(code) \(shape) needs \(bytes) bytes but data_offsets span \(end - begin)")
            }
            let t = Tensor(uninitialized: dtype, shape: shape)
            if bytes > 0 {
                data.withUnsafeBytes { raw in
                    t.raw.copyMemory(from: raw.baseAddress! + headerEnd + begin, byteCount: bytes)
                }
            }
            file.tensors[name] = t
            ranges.append((begin, end, name))
        }
        ranges.sort { $0.0 < $1.0 }
        for i in 1..<max(1, ranges.count) where ranges[i].0 < ranges[i - 1].1 {
            throw fail("tensors '\(ranges[i - 1].2)' and '\(ranges[i].2)' overlap")
        }
        return file
    }

    public static func read(_ path: String) throws -> File {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LPCError.checkpoint("cannot read \(path): \(error.localizedDescription)")
        }
        return try decode(data, path: path)
    }

    public static func write(_ file: File, to path: String) throws {
        try AtomicFile.write(encode(file), to: path)
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

/// Crash-safe file replacement: write a temporary file in the destination's folder, fsync it,
/// rename it over the destination, then fsync the folder. Readers see the old or the new file,
/// never a half-written one.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw LPCError.checkpoint("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        let written: Bool = data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return true
        }
        let err = errno
        guard written, fsync(fd) == 0 else {
            close(fd)
            throw LPCError.checkpoint("cannot write \(tmp): \(String(cString: strerror(err)))")
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            throw LPCError.checkpoint("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))")
        }
        ok = true
        let dfd = open(dir, O_RDONLY)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}
