import ArgumentParser
import Foundation
import Tokenizers

enum IDFormat: String, ExpressibleByArgument { case json }

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Read UTF-8 text from stdin and print its token ids as a JSON array.",
        discussion: "With --jsonl, each input line is a JSON string and each output line the ids of that string."
    )

    @Option(help: ArgumentHelp("A tokenizer.json file.", valueName: "FILE"))
    var tokenizer: String

    @Option(help: "Output format.")
    var format: IDFormat = .json

    @Flag(name: .customLong("add-special-tokens"), help: "Add the post-processor's special tokens (e.g. BOS).")
    var addSpecialTokens = false

    @Flag(help: "Read one JSON string per line; print one JSON array per line.")
    var jsonl = false

    func run() throws {
        do {
            let tokenizer = try Tokenizer(contentsOfFile: self.tokenizer)
            let input = FileHandle.standardInput.readDataToEndOfFile()
            guard let text = String(validatingUTF8Data: input) else {
                throw CLIError("standard input is not valid UTF-8 (first bad byte at offset \(firstInvalidUTF8Offset(input)))")
            }
            if !jsonl {
                print(jsonFragment(try tokenizer.encode(text, addSpecialTokens: addSpecialTokens)))
                return
            }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
                guard let string = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: .fragmentsAllowed) as? String else {
                    throw CLIError("stdin line \(number + 1): expected a JSON string")
                }
                print(jsonFragment(try tokenizer.encode(string, addSpecialTokens: addSpecialTokens)))
            }
        } catch {
            exitWithError(error)
        }
    }
}

struct DetokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detokenize",
        abstract: "Read a JSON array of token ids from stdin and print the text as a JSON string."
    )

    @Option(help: ArgumentHelp("A tokenizer.json file.", valueName: "FILE"))
    var tokenizer: String

    @Option(help: "Output format.")
    var format: IDFormat = .json

    @Flag(name: .customLong("skip-special-tokens"), help: "Leave special tokens out of the text.")
    var skipSpecialTokens = false

    func run() throws {
        do {
            let tokenizer = try Tokenizer(contentsOfFile: self.tokenizer)
            let input = FileHandle.standardInput.readDataToEndOfFile()
            let ids = try decodeTokenIDs(input)
            print(jsonFragment(try tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens)))
        } catch {
            exitWithError(error)
        }
    }
}

/// A JSON array of integer token ids; errors name the offending element.
func decodeTokenIDs(_ data: Data) throws -> [Int] {
    do {
        return try JSONDecoder().decode([Int].self, from: data)
    } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
        if let index = context.codingPath.last?.intValue {
            throw CLIError("element \(index) of the input array is not an integer token id")
        }
        throw CLIError("standard input must be a JSON array of token ids, e.g. [1, 2, 3]")
    } catch {
        throw CLIError("standard input must be a JSON array of token ids, e.g. [1, 2, 3]")
    }
}

extension String {
    /// nil unless the bytes are valid UTF-8 (no replacement characters substituted).
    init?(validatingUTF8Data data: Data) {
        guard firstInvalidUTF8Offset(data) < 0 else { return nil }
        self.init(decoding: data, as: UTF8.self)
    }
}

/// The offset of the first byte that breaks UTF-8, or -1 when all of it is valid.
func firstInvalidUTF8Offset(_ data: Data) -> Int {
    var iterator = data.makeIterator()
    var decoder = UTF8()
    var offset = 0
    var consumed = 0
    // Decode scalar by scalar; track bytes consumed per scalar to locate the failure.
    let bytes = [UInt8](data)
    while true {
        switch decoder.decode(&iterator) {
        case let .scalarValue(scalar):
            consumed += UTF8.width(scalar)
            offset = consumed
        case .emptyInput:
            return -1
        case .error:
            return min(offset, bytes.count)
        }
    }
}
