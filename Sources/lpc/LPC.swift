import ArgumentParser
import Foundation
import Runtime

@main
struct LPC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lpc",
        abstract: "Run Llama/Mistral-style ONNX models on the CPU and generate text.",
        discussion: """
        Examples:
          lpc generate --prompt "What is the capital of France?"
          lpc inspect models/SmolLM2-135M-Instruct
          lpc run model.onnx --input input_ids=ids.npy --input attention_mask=mask.npy --output-dir out/
        """,
        subcommands: [GenerateCommand.self, ChatCommand.self, TrainCommand.self, EvalCommand.self, FeaturesCommand.self,
                      InspectCommand.self, RunCommand.self, BenchCommand.self, OptimizeCommand.self, TokenizeCommand.self, DetokenizeCommand.self]
    )

    static func main() {
        // Before any BLAS work (see RuntimeThreads.selectOpenBLASKernels); OPENBLAS_CORETYPE wins.
        RuntimeThreads.selectOpenBLASKernels()
        RuntimeMemory.retainFreedHeap()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

/// Prints an error for a reader (what, where, how to fix) to stderr and exits with status 1.
func exitWithError(_ error: Error) -> Never {
    let message = String(describing: error)
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(1)
}
