internal import COnnxProto
import Foundation
import Graph
import TensorCore

/// What `ONNXWriter` puts around the graph.
public struct ONNXWriteOptions: Sendable {
    public var irVersion: Int = 8
    public var producerName: String = "lpc"
    public var producerVersion: String = ""
    /// Written as the model's `metadata_props` (in key order).
    public var metadata: [String: String] = [:]
    /// The one external data file, next to the model file.
    public var dataFileName: String = "model.onnx_data"
    /// Tensors smaller than this stay inline in the model file (scalars, shapes, small vectors).
    public var inlineLimit: Int = 1024
    /// Offset alignment in the data file: every tensor starts on a multiple of `alignment`, and
    /// tensors of at least `pageAlignFrom` bytes on a page (so they can be madvised page-wise).
    public var alignment: Int = 64
    public var pageAlignFrom: Int = 1 << 16

    public init() {}
}

/// Writes a `Graph` as an ONNX ModelProto (protobuf-c `pack`) with its large initializers in one
/// external data file, each at an aligned offset, so a later load maps them in place.
public enum ONNXWriter {
    /// Writes `graph` to `modelPath` and its external data next to it. Tensors sharing storage
    /// (same bytes) are written once and referenced by every initializer that views them.
    /// Returns the number of bytes written to the data file.
    @discardableResult
    public static func write(_ graph: Graph, to modelPath: String, options: ONNXWriteOptions = ONNXWriteOptions()) throws(ONNXImportError) -> Int {
        guard !options.dataFileName.isEmpty, !options.dataFileName.contains("/") else {
            throw .cannotWrite(path: modelPath, reason: "the data file name '\(options.dataFileName)' must be a plain file name")
        }
        let directory = URL(fileURLWithPath: modelPath).deletingLastPathComponent().path
        let dataPath = directory + "/" + options.dataFileName
        let arena = ProtoArena()

        // Lay out the external data: offsets per storage range, written in name order.
        guard let data = FileHandle(forWritingAtPath: createEmpty(dataPath) ?? "") else {
            throw .cannotWrite(path: dataPath, reason: String(cString: strerror(errno)))
        }
        defer { try? data.close() }
        var offset = 0
        var written: [StorageKey: Int] = [:]
        var locations: [String: Int] = [:]
        let names = graph.initializers.keys.sorted()
        do {
            for name in names {
                let tensor = graph.initializers[name]!
                guard tensor.byteCount >= options.inlineLimit else { continue }
                let key = StorageKey(address: Int(bitPattern: tensor.raw), byteCount: tensor.byteCount)
                if let existing = written[key] { locations[name] = existing; continue }
                let align = tensor.byteCount >= options.pageAlignFrom ? max(options.alignment, 4096) : options.alignment
                let padded = (offset + align - 1) / align * align
                if padded > offset { try data.write(contentsOf: Data(count: padded - offset)) }
                try data.write(contentsOf: Data(bytesNoCopy: tensor.raw, count: tensor.byteCount, deallocator: .none))
                written[key] = padded
                locations[name] = padded
                offset = padded + tensor.byteCount
            }
        } catch {
            throw .cannotWrite(path: dataPath, reason: (error as NSError).localizedDescription)
        }

        // The ModelProto, every string and array owned by the arena until packing is done.
        var model = Onnx__ModelProto()
        onnx__model_proto__init(&model)
        model.has_ir_version = 1
        model.ir_version = Int64(options.irVersion)
        model.producer_name = arena.string(options.producerName)
        model.producer_version = arena.string(options.producerVersion)
        let opsets = graph.opsets.keys.sorted().map { domain -> UnsafeMutablePointer<Onnx__OperatorSetIdProto>? in
            let entry = arena.message(Onnx__OperatorSetIdProto.self, onnx__operator_set_id_proto__init)
            entry.pointee.domain = arena.string(domain)
            entry.pointee.has_version = 1
            entry.pointee.version = Int64(graph.opsets[domain]!)
            return entry
        }
        (model.n_opset_import, model.opset_import) = arena.array(opsets)
        let metadata = options.metadata.keys.sorted().map { arena.entry($0, options.metadata[$0]!) }
        (model.n_metadata_props, model.metadata_props) = arena.array(metadata)

        let g = arena.message(Onnx__GraphProto.self, onnx__graph_proto__init)
        g.pointee.name = arena.string(graph.name.isEmpty ? "lpc_optimized" : graph.name)
        var nodes: [UnsafeMutablePointer<Onnx__NodeProto>?] = []
        for node in graph.nodes { nodes.append(try nodeProto(node, arena: arena)) }
        (g.pointee.n_node, g.pointee.node) = arena.array(nodes)
        var initializers: [UnsafeMutablePointer<Onnx__TensorProto>?] = []
        for name in names {
            let tensor = graph.initializers[name]!
            if let location = locations[name] {
                let proto = tensorHeader(tensor, name: name, arena: arena)
                proto.pointee.has_data_location = 1
                proto.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
                let entries = [arena.entry("location", options.dataFileName), arena.entry("offset", String(location)),
                               arena.entry("length", String(tensor.byteCount))]
                (proto.pointee.n_external_data, proto.pointee.external_data) = arena.array(entries)
                initializers.append(proto)
            } else {
                initializers.append(inlineTensor(tensor, name: name, arena: arena))
            }
        }
        (g.pointee.n_initializer, g.pointee.initializer) = arena.array(initializers)
        (g.pointee.n_input, g.pointee.input) = arena.array(graph.inputs.map { valueInfo($0, arena: arena) })
        (g.pointee.n_output, g.pointee.output) = arena.array(graph.outputs.map { valueInfo($0, arena: arena) })
        model.graph = g

        let size = onnx__model_proto__get_packed_size(&model)
        var bytes = [UInt8](repeating: 0, count: size)
        let packed = bytes.withUnsafeMutableBufferPointer { onnx__model_proto__pack(&model, $0.baseAddress) }
        guard packed == size else {
            throw .cannotWrite(path: modelPath, reason: "protobuf packing wrote \(packed) of \(size) bytes")
        }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: modelPath))
        } catch {
            throw .cannotWrite(path: modelPath, reason: (error as NSError).localizedDescription)
        }
        return offset
    }

    /// Creates (or truncates) `path`; nil when that fails.
    private static func createEmpty(_ path: String) -> String? {
        FileManager.default.createFile(atPath: path, contents: nil) ? path : nil
    }

    private struct StorageKey: Hashable {
        let address: Int
        let byteCount: Int
    }

    private static func nodeProto(_ node: Node, arena: ProtoArena) throws(ONNXImportError) -> UnsafeMutablePointer<Onnx__NodeProto> {
        let p = arena.message(Onnx__NodeProto.self, onnx__node_proto__init)
        p.pointee.name = arena.string(node.name)
        p.pointee.op_type = arena.string(node.opType)
        p.pointee.domain = arena.string(node.domain)
        (p.pointee.n_input, p.pointee.input) = arena.array(node.inputs.map { Optional(arena.string($0)) })
        (p.pointee.n_output, p.pointee.output) = arena.array(node.outputs.map { Optional(arena.string($0)) })
        var attributes: [UnsafeMutablePointer<Onnx__AttributeProto>?] = []
        for key in node.attributes.keys.sorted() {
            let a = arena.message(Onnx__AttributeProto.self, onnx__attribute_proto__init)
            a.pointee.name = arena.string(key)
            a.pointee.has_type = 1
            switch node.attributes[key]! {
            case let .float(value):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
                a.pointee.has_f = 1
                a.pointee.f = value
            case let .int(value):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
                a.pointee.has_i = 1
                a.pointee.i = Int64(value)
            case let .string(value):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
                a.pointee.has_s = 1
                a.pointee.s = arena.bytes(value)
            case let .tensor(value):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
                a.pointee.t = inlineTensor(value, name: "", arena: arena)
            case let .floats(values):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
                (a.pointee.n_floats, a.pointee.floats) = arena.array(values)
            case let .ints(values):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
                (a.pointee.n_ints, a.pointee.ints) = arena.array(values.map { Int64($0) })
            case let .strings(values):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS
                (a.pointee.n_strings, a.pointee.strings) = arena.array(values.map { arena.bytes($0) })
            case let .unsupported(kind):
                throw .invalidAttribute(node: node.displayName, attribute: key,
                                        reason: "a \(kind) attribute cannot be written back (lpc does not keep its contents)")
            }
            attributes.append(a)
        }
        (p.pointee.n_attribute, p.pointee.attribute) = arena.array(attributes)
        return p
    }

    /// name, dims and data type; no data yet.
    private static func tensorHeader(_ tensor: Tensor, name: String, arena: ProtoArena) -> UnsafeMutablePointer<Onnx__TensorProto> {
        let p = arena.message(Onnx__TensorProto.self, onnx__tensor_proto__init)
        if !name.isEmpty { p.pointee.name = arena.string(name) }
        p.pointee.has_data_type = 1
        if tensor.dtype == .float24 {
            // ONNX has no 24-bit type: f24 weights [K, N] are written as their bytes, uint8 [K, N, 3]
            // (read back as f24 by Runtime's F24Packing.importWritten).
            (p.pointee.n_dims, p.pointee.dims) = arena.array((tensor.shape + [3]).map { Int64($0) })
            p.pointee.data_type = DType.uint8.rawValue
        } else {
            (p.pointee.n_dims, p.pointee.dims) = arena.array(tensor.shape.map { Int64($0) })
            p.pointee.data_type = tensor.dtype.rawValue
        }
        return p
    }

    /// A tensor with its bytes as `raw_data` (pointing at the tensor's memory: no copy).
    private static func inlineTensor(_ tensor: Tensor, name: String, arena: ProtoArena) -> UnsafeMutablePointer<Onnx__TensorProto> {
        let p = tensorHeader(tensor, name: name, arena: arena)
        p.pointee.has_raw_data = 1
        p.pointee.raw_data = ProtobufCBinaryData(len: tensor.byteCount,
                                                 data: tensor.byteCount > 0 ? tensor.raw.assumingMemoryBound(to: UInt8.self) : nil)
        arena.keep(tensor.storage)
        return p
    }

    private static func valueInfo(_ info: ValueInfo, arena: ProtoArena) -> UnsafeMutablePointer<Onnx__ValueInfoProto>? {
        let p = arena.message(Onnx__ValueInfoProto.self, onnx__value_info_proto__init)
        p.pointee.name = arena.string(info.name)
        guard info.declaredType != 0 else { return p }
        let type = arena.message(Onnx__TypeProto.self, onnx__type_proto__init)
        let tensorType = arena.message(Onnx__TypeProto__Tensor.self, onnx__type_proto__tensor__init)
        tensorType.pointee.has_elem_type = 1
        tensorType.pointee.elem_type = info.declaredType
        if let shape = info.shape {
            let shapeProto = arena.message(Onnx__TensorShapeProto.self, onnx__tensor_shape_proto__init)
            let dims = shape.map { dim -> UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>? in
                let d = arena.message(Onnx__TensorShapeProto__Dimension.self, onnx__tensor_shape_proto__dimension__init)
                switch dim {
                case let .fixed(size):
                    d.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                    d.pointee.dim_value = Int64(size)
                case let .symbolic(name):
                    d.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                    d.pointee.dim_param = arena.string(name)
                case .unknown:
                    break
                }
                return d
            }
            (shapeProto.pointee.n_dim, shapeProto.pointee.dim) = arena.array(dims)
            tensorType.pointee.shape = shapeProto
        }
        type.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.pointee.tensor_type = tensorType
        p.pointee.type = type
        return p
    }
}

/// Owns every C allocation of a ModelProto under construction; freed all at once.
private final class ProtoArena {
    private var allocations: [UnsafeMutableRawPointer] = []
    private var kept: [AnyObject] = []

    deinit { for pointer in allocations { free(pointer) } }

    func string(_ text: String) -> UnsafeMutablePointer<CChar> {
        let pointer = strdup(text)!
        allocations.append(pointer)
        return pointer
    }

    func bytes(_ text: String) -> ProtobufCBinaryData {
        let utf8 = Array(text.utf8)
        let (count, pointer) = array(utf8)
        return ProtobufCBinaryData(len: count, data: pointer)
    }

    /// A zero-filled message initialised by its protobuf-c `init`.
    func message<T>(_: T.Type, _ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let raw = calloc(1, MemoryLayout<T>.stride)!
        allocations.append(raw)
        let pointer = raw.bindMemory(to: T.self, capacity: 1)
        initialize(pointer)
        return pointer
    }

    func entry(_ key: String, _ value: String) -> UnsafeMutablePointer<Onnx__StringStringEntryProto>? {
        let e = message(Onnx__StringStringEntryProto.self, onnx__string_string_entry_proto__init)
        e.pointee.key = string(key)
        e.pointee.value = string(value)
        return e
    }

    /// A C copy of `items`: (count, pointer), pointer nil when empty.
    func array<T>(_ items: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !items.isEmpty else { return (0, nil) }
        let raw = malloc(MemoryLayout<T>.stride * items.count)!
        allocations.append(raw)
        let pointer = raw.bindMemory(to: T.self, capacity: items.count)
        pointer.initialize(from: items, count: items.count)
        return (items.count, pointer)
    }

    /// Keeps tensor storage alive while protos point into it.
    func keep(_ object: AnyObject) { kept.append(object) }
}
