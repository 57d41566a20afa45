internal import COnnxProto
import Foundation
import Graph
import TensorCore

/// A loaded ONNX model: its graph (initializers viewing the file's memory) and its metadata.
public struct ONNXModel: Sendable {
    public var graph: Graph
    public var path: String
    public var irVersion: Int
    public var producerName: String
    public var producerVersion: String
    /// Local functions the model defines (by "domain:name"); nodes calling them are not inlined.
    public var functionNames: [String]
}

/// Owns a decoded `ModelProto`; tensors viewing its `raw_data` keep it alive.
final class DecodedModelProto: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Onnx__ModelProto>
    init(_ pointer: UnsafeMutablePointer<Onnx__ModelProto>) { self.pointer = pointer }
    deinit { onnx__model_proto__free_unpacked(pointer, nil) }
}

public enum ONNXLoader {
    /// Loads `path` (an .onnx file, or a folder holding `model.onnx`).
    public static func load(path: String) throws(ONNXImportError) -> ONNXModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .cannotRead(path: path, reason: "no such file or folder")
        }
        let filePath = isDirectory.boolValue ? path + "/model.onnx" : path
        let file: MappedFile
        do { file = try MappedFile(path: filePath) } catch {
            throw .cannotRead(path: filePath, reason: error.description)
        }
        guard file.byteCount > 0, let bytes = file.pointer else {
            throw .notAModel(path: filePath, reason: "the file is empty")
        }
        // protobuf-c copies every bytes field out of the map, which is released after decoding.
        guard let decoded = onnx__model_proto__unpack(nil, file.byteCount, bytes.assumingMemoryBound(to: UInt8.self)) else {
            throw .notAModel(path: filePath, reason: "protobuf decoding failed (truncated or corrupt data)")
        }
        let proto = DecodedModelProto(decoded)
        let directory = URL(fileURLWithPath: filePath).deletingLastPathComponent().path
        guard let resolvedPointer = realpath(directory, nil) else {
            throw .cannotRead(path: directory, reason: "cannot resolve the model's folder")
        }
        let resolvedDirectory = String(cString: resolvedPointer)
        free(resolvedPointer)
        return try GraphBuilder(proto: proto, path: filePath, directory: resolvedDirectory).build()
    }
}

/// Converts a decoded `ModelProto` into a `Graph`.
struct GraphBuilder {
    let proto: DecodedModelProto
    let path: String
    let tensors: TensorProtoDecoder

    init(proto: DecodedModelProto, path: String, directory: String) {
        self.proto = proto
        self.path = path
        tensors = TensorProtoDecoder(modelDirectory: directory, owner: proto)
    }

    func build() throws(ONNXImportError) -> ONNXModel {
        let model = proto.pointer.pointee
        guard let graphPointer = model.graph else {
            throw .invalidModel(path: path, reason: "the model has no graph (is this an ONNX model file?)")
        }
        let g = graphPointer.pointee

        var opsets: [String: Int] = [:]
        for index in 0..<model.n_opset_import {
            guard let entry = model.opset_import[index] else { continue }
            var domain = entry.pointee.domain.map { String(cString: $0) } ?? ""
            if domain == "ai.onnx" { domain = "" }
            opsets[domain] = Int(entry.pointee.version)
        }
        if opsets[""] == nil {
            // IR versions before 3 had no opset_import; such models are older than anything we run.
            throw .invalidModel(path: path, reason: "no opset import for the default ONNX domain")
        }

        var initializers: [String: Tensor] = [:]
        for index in 0..<g.n_initializer {
            guard let tensorProto = g.initializer[index] else { continue }
            let tensor = try tensors.decode(UnsafePointer(tensorProto), name: "initializer #\(index)")
            let name = tensorProto.pointee.name.map { String(cString: $0) } ?? ""
            guard !name.isEmpty else { throw .invalidTensor(tensor: "initializer #\(index)", reason: "has no name") }
            initializers[name] = tensor
        }
        if g.n_sparse_initializer > 0 {
            throw .invalidModel(path: path, reason: "sparse initializers are not supported")
        }

        var nodes: [Node] = []
        nodes.reserveCapacity(g.n_node)
        for index in 0..<g.n_node {
            guard let nodeProto = g.node[index] else { continue }
            nodes.append(try node(nodeProto.pointee, index: index))
        }

        // Graph inputs that are also initializers are optional inputs with defaults (IR < 4 listed all
        // initializers as inputs); keep them as inputs but they need not be fed.
        let inputs = (0..<g.n_input).compactMap { g.input[$0].map { valueInfo($0.pointee) } }
        let outputs = (0..<g.n_output).compactMap { g.output[$0].map { valueInfo($0.pointee) } }

        var functions: [String] = []
        for index in 0..<model.n_functions {
            guard let function = model.functions[index] else { continue }
            let domain = function.pointee.domain.map { String(cString: $0) } ?? ""
            let name = function.pointee.name.map { String(cString: $0) } ?? ""
            functions.append(domain.isEmpty ? name : "\(domain):\(name)")
        }

        var metadata: [String: String] = [:]
        for index in 0..<model.n_metadata_props {
            guard let entry = model.metadata_props[index], let key = entry.pointee.key else { continue }
            metadata[String(cString: key)] = entry.pointee.value.map { String(cString: $0) } ?? ""
        }

        let graph = Graph(name: g.name.map { String(cString: $0) } ?? "", inputs: inputs, outputs: outputs,
                          initializers: initializers, nodes: nodes, opsets: opsets, metadata: metadata)
        return ONNXModel(graph: graph, path: path, irVersion: Int(model.ir_version),
                         producerName: model.producer_name.map { String(cString: $0) } ?? "",
                         producerVersion: model.producer_version.map { String(cString: $0) } ?? "",
                         functionNames: functions)
    }

    private func node(_ p: Onnx__NodeProto, index: Int) throws(ONNXImportError) -> Node {
        let name = p.name.map { String(cString: $0) } ?? ""
        let inputs = (0..<p.n_input).map { p.input[$0].map { String(cString: $0) } ?? "" }
        let outputs = (0..<p.n_output).map { p.output[$0].map { String(cString: $0) } ?? "" }
        let displayName = name.isEmpty ? "node #\(index)" : name
        var attributes: [String: AttributeValue] = [:]
        for a in 0..<p.n_attribute {
            guard let attribute = p.attribute[a] else { continue }
            let attributeName = attribute.pointee.name.map { String(cString: $0) } ?? ""
            attributes[attributeName] = try value(of: attribute.pointee, node: displayName, attribute: attributeName)
        }
        return Node(name: name, opType: p.op_type.map { String(cString: $0) } ?? "",
                    domain: p.domain.map { String(cString: $0) } ?? "",
                    inputs: inputs, outputs: outputs, attributes: attributes)
    }

    private func value(of a: Onnx__AttributeProto, node: String, attribute: String) throws(ONNXImportError) -> AttributeValue {
        if a.ref_attr_name != nil, let reference = a.ref_attr_name, strlen(reference) > 0 {
            return .unsupported(kind: "reference to function attribute '\(String(cString: reference))'")
        }
        switch a.type {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return .float(a.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return .int(Int(a.i))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
            return .string(String(decoding: UnsafeBufferPointer(start: a.s.data, count: a.s.len), as: UTF8.self))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            guard let t = a.t else { throw .invalidAttribute(node: node, attribute: attribute, reason: "tensor attribute without a tensor") }
            do {
                return .tensor(try tensors.decode(UnsafePointer(t), name: "\(node).\(attribute)"))
            } catch {
                throw .invalidAttribute(node: node, attribute: attribute, reason: error.description)
            }
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            return .floats(Array(UnsafeBufferPointer(start: a.floats, count: a.n_floats)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
            return .ints(UnsafeBufferPointer(start: a.ints, count: a.n_ints).map { Int($0) })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
            return .strings((0..<a.n_strings).map {
                String(decoding: UnsafeBufferPointer(start: a.strings[$0].data, count: a.strings[$0].len), as: UTF8.self)
            })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: return .unsupported(kind: "graph")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: return .unsupported(kind: "graphs")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: return .unsupported(kind: "tensors")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
            return .unsupported(kind: "sparse tensor")
        default: return .unsupported(kind: "type \(a.type.rawValue)")
        }
    }

    private func valueInfo(_ p: Onnx__ValueInfoProto) -> ValueInfo {
        let name = p.name.map { String(cString: $0) } ?? ""
        guard let type = p.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
              let tensorType = type.pointee.tensor_type else {
            return ValueInfo(name: name, dtype: nil, declaredType: 0, shape: nil)
        }
        let elementType = tensorType.pointee.elem_type
        var shape: [Dim]?
        if let shapeProto = tensorType.pointee.shape {
            shape = (0..<shapeProto.pointee.n_dim).map { index in
                guard let dim = shapeProto.pointee.dim[index] else { return .unknown }
                switch dim.pointee.value_case {
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE: return .fixed(Int(dim.pointee.dim_value))
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
                    return dim.pointee.dim_param.map { .symbolic(String(cString: $0)) } ?? .unknown
                default: return .unknown
                }
            }
        }
        return ValueInfo(name: name, dtype: DType(onnx: elementType), declaredType: elementType, shape: shape)
    }
}
