/// Errors reading or writing tensor files, each naming the file and what is wrong with it.
public enum TensorIOError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): "cannot open '\(path)': \(reason)"
        case let .cannotWrite(path, reason): "cannot write '\(path)': \(reason)"
        case let .malformed(path, reason): "'\(path)' is not a valid tensor file: \(reason)"
        }
    }
}
