import Foundation

/// One side of a pair as written in the data: plain text, or a list of chat messages
/// (`[{"role": …, "content": …}, …]`; extra keys are passed to the template).
public enum PairText: Sendable, Equatable {
    case text(String)
    case messages([Message])

    public struct Message: Sendable, Equatable {
        public var role: String
        public var content: String
        /// Other keys of the message object (e.g. "name"), as JSON text, in key order.
        public var extra: [String: String]

        public init(role: String, content: String, extra: [String: String] = [:]) {
            self.role = role
            self.content = content
            self.extra = extra
        }
    }
}

/// One line of a preference file, parsed and checked but not yet rendered or tokenized.
public struct PreferencePair: Sendable, Equatable {
    public var prompt: PairText
    public var chosen: PairText
    public var rejected: PairText
    /// Optional label of where the prompt came from (used by the analysis: per-source accuracy
    /// and code histograms).
    public var source: String?
    /// 1-based line number in the file.
    public var line: Int

    public init(prompt: PairText, chosen: PairText, rejected: PairText, source: String? = nil, line: Int = 0) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.source = source
        self.line = line
    }
}

/// A bad data file or line: what is wrong, where (file, line, field), and how to fix it.
public enum DataError: Error, CustomStringConvertible, Equatable {
    case cannotRead(file: String, reason: String)
    /// A line that breaks the format. `field` is nil for whole-line problems (invalid JSON).
    case badLine(file: String, line: Int, field: String?, reason: String)
    case noPairs(file: String, reason: String)
    case badOption(String)

    public var description: String {
        switch self {
        case let .cannotRead(file, reason):
            "cannot read preference data '\(file)': \(reason)"
        case let .badLine(file, line, field, reason):
            "\(file):\(line)\(field.map { ": field '\($0)'" } ?? ""): \(reason)"
        case let .noPairs(file, reason):
            "\(file): no usable preference pairs (\(reason))"
        case let .badOption(message):
            message
        }
    }

    public var line: Int? {
        if case let .badLine(_, line, _, _) = self { return line }
        return nil
    }

    public var field: String? {
        if case let .badLine(_, _, field, _) = self { return field }
        return nil
    }
}

extension PreferencePair {
    static let format = "each line must be a JSON object with \"prompt\", \"chosen\" and \"rejected\" (strings or lists of {\"role\", \"content\"} messages) and an optional string \"source\""

    /// Reads a JSONL file of pairs. Blank lines are skipped; every other line must be a pair.
    public static func read(file: String) throws(DataError) -> [PreferencePair] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw .cannotRead(file: file, reason: FileManager.default.fileExists(atPath: file)
                ? (error as NSError).localizedDescription : "no such file")
        }
        return try parse(data, file: file)
    }

    /// Parses JSONL bytes; `file` only names the source in errors.
    public static func parse(_ data: Data, file: String) throws(DataError) -> [PreferencePair] {
        var pairs: [PreferencePair] = []
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            lineNumber += 1
            let line = data[start..<end]
            start = end < data.endIndex ? data.index(after: end) : end
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            pairs.append(try parseLine(Data(line), file: file, line: lineNumber))
        }
        guard !pairs.isEmpty else { throw .noPairs(file: file, reason: "the file has no non-blank lines; \(format)") }
        return pairs
    }

    static func parseLine(_ bytes: Data, file: String, line: Int) throws(DataError) -> PreferencePair {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            throw .badLine(file: file, line: line, field: nil, reason: "invalid JSON (\(reason)); \(format)")
        }
        guard let dict = object as? [String: Any] else {
            throw .badLine(file: file, line: line, field: nil, reason: "expected a JSON object, found \(typeName(object)); \(format)")
        }
        func side(_ key: String) throws(DataError) -> PairText {
            guard let value = dict[key] else {
                let present = dict.keys.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
                throw .badLine(file: file, line: line, field: key, reason: "missing (the object has \(present.isEmpty ? "no keys" : present)); \(format)")
            }
            return try pairText(value, file: file, line: line, field: key, isResponse: key != "prompt")
        }
        let prompt = try side("prompt")
        let chosen = try side("chosen")
        let rejected = try side("rejected")
        var source: String?
        switch dict["source"] {
        case nil, is NSNull: source = nil
        case let s as String: source = s
        case let other?:
            throw .badLine(file: file, line: line, field: "source", reason: "expected a string, found \(typeName(other))")
        }
        return PreferencePair(prompt: prompt, chosen: chosen, rejected: rejected, source: source, line: line)
    }

    static func pairText(_ value: Any, file: String, line: Int, field: String, isResponse: Bool) throws(DataError) -> PairText {
        if let text = value as? String {
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw .badLine(file: file, line: line, field: field, reason: isResponse ? "empty response" : "empty prompt")
            }
            return .text(text)
        }
        guard let list = value as? [Any] else {
            throw .badLine(file: file, line: line, field: field, reason: "expected a string or a list of {\"role\", \"content\"} messages, found \(typeName(value))")
        }
        guard !list.isEmpty else {
            throw .badLine(file: file, line: line, field: field, reason: isResponse ? "empty response (an empty message list)" : "empty prompt (an empty message list)")
        }
        var messages: [PairText.Message] = []
        for (index, item) in list.enumerated() {
            let here = "\(field)[\(index)]"
            guard let message = item as? [String: Any] else {
                throw .badLine(file: file, line: line, field: here, reason: "expected a message object {\"role\", \"content\"}, found \(typeName(item))")
            }
            guard let role = message["role"] as? String, !role.isEmpty else {
                throw .badLine(file: file, line: line, field: here + ".role",
                               reason: message["role"] == nil ? "missing" : "expected a non-empty string, found \(typeName(message["role"]!))")
            }
            guard let content = message["content"] as? String else {
                throw .badLine(file: file, line: line, field: here + ".content",
                               reason: message["content"] == nil ? "missing" : "expected a string, found \(typeName(message["content"]!))")
            }
            var extra: [String: String] = [:]
            for (key, v) in message where key != "role" && key != "content" {
                if let data = try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed, .sortedKeys]) {
                    extra[key] = String(decoding: data, as: UTF8.self)
                }
            }
            messages.append(.init(role: role, content: content, extra: extra))
        }
        if isResponse, messages.allSatisfy({ $0.content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }) {
            throw .badLine(file: file, line: line, field: field, reason: "empty response (every message's content is empty)")
        }
        return .messages(messages)
    }

    static func typeName(_ value: Any) -> String {
        switch value {
        case is NSNull: "null"
        case is String: "a string"
        case let n as NSNumber: String(cString: n.objCType) == "c" ? "a boolean" : "a number"
        case is [Any]: "a list"
        case is [String: Any]: "an object"
        default: "\(type(of: value))"
        }
    }
}
