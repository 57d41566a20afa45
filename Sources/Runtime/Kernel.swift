import Graph
import TensorCore

/// What a kernel sees: its node (attributes, names), its input tensors in order (nil where an
/// optional input is omitted), and the opset version of the node's domain.
public struct KernelContext {
    public let node: Node
    public let inputs: [Tensor?]
    public let opset: Int
    /// The session's persistent state (the in-place KV cache), nil outside a session.
    public let state: ExecutionState?

    public init(node: Node, inputs: [Tensor?], opset: Int, state: ExecutionState? = nil) {
        self.node = node
        self.inputs = inputs
        self.opset = opset
        self.state = state
    }

    /// A required input; throws if absent.
    public func input(_ index: Int) throws(KernelError) -> Tensor {
        guard index < inputs.count, let tensor = inputs[index] else {
            throw KernelError("missing required input #\(index)")
        }
        return tensor
    }

    /// An optional input: nil when omitted or past the end.
    public func optionalInput(_ index: Int) -> Tensor? {
        index < inputs.count ? inputs[index] : nil
    }

    /// Throws unless the input has the given dtype (a plain comparison: fused kernels call this
    /// per input per decode step).
    public func input(_ index: Int, dtype: DType) throws(KernelError) -> Tensor {
        let tensor = try input(index)
        guard tensor.dtype == dtype else {
            throw KernelError("input #\(index) has dtype \(tensor.dtype); expected \(dtype)")
        }
        return tensor
    }
}

/// A kernel failure. The executor adds the node name, op type and opset around the message.
public struct KernelError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Computes a node's outputs from its inputs. Outputs are new tensors (or views of inputs);
/// inputs are never written.
public typealias Kernel = @Sendable (KernelContext) throws -> [Tensor]

/// Normalises a possibly negative axis against a rank, with a clear error when out of range.
@inline(__always)
public func normalizedAxis(_ axis: Int, rank: Int) throws(KernelError) -> Int {
    let result = axis < 0 ? axis + rank : axis
    guard result >= 0 && result < max(rank, 1) else {
        throw KernelError("axis \(axis) is out of range for rank \(rank)")
    }
    return result
}
