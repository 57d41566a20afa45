/// Everything that can go wrong loading a tokenizer.json or using it.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case io(path: String, String)
    /// The text is not valid JSON (message includes line and column).
    case invalidJSON(String)
    /// A required field is missing; `path` names it, e.g. `model.vocab`.
    case missingField(path: String)
    /// A field is present but malformed; `path` names it, e.g. `model.merges[12]`.
    case invalidField(path: String, String)
    /// A component `type` this implementation does not know, with the ones it does.
    case unsupportedType(path: String, kind: String, type: String, supported: [String])
    /// A token id that is neither in the model vocabulary nor an added token.
    case idOutOfRange(id: Int, vocabularySize: Int)
    /// The model needs its unknown token but it is not in the vocabulary (HF `UnkTokenOutOfVocabulary`).
    case unknownTokenNotInVocabulary(String)

    public var description: String {
        switch self {
        case let .io(path, message): return "cannot read tokenizer file '\(path)': \(message)"
        case let .invalidJSON(message): return "tokenizer.json is not valid JSON: \(message)"
        case let .missingField(path): return "tokenizer.json: missing field '\(path)'"
        case let .invalidField(path, message): return "tokenizer.json: invalid field '\(path)': \(message)"
        case let .unsupportedType(path, kind, type, supported):
            return "tokenizer.json: unsupported \(kind) type '\(type)' at '\(path)' (supported: \(supported.joined(separator: ", ")))"
        case let .idOutOfRange(id, size):
            return "token id \(id) is out of range: not in the vocabulary (size \(size)) nor an added token"
        case let .unknownTokenNotInVocabulary(token):
            return "the unknown token '\(token)' is not in the vocabulary"
        }
    }
}
