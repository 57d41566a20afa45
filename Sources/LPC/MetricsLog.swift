import Foundation

/// Training metrics as JSONL: one object per line, keys sorted, non-finite numbers as null.
///
/// Training records: `{"step": n, "epoch": e, "loss": …, "rewards/chosen": …, …}` with the names of
/// `StepReport.values` (TRL's + LPC's). Evaluation records: `{"step": n, "epoch": e, "eval/…": …}`.
/// When a run resumes from step s, records after step s (written by the interrupted run past its
/// last checkpoint) are dropped first, so the file reads as one uninterrupted run.
public final class MetricsLog {
    public let path: String
    let handle: FileHandle

    /// Opens `path`: truncates it for a fresh run (`resumeStep` nil), or keeps the records with
    /// step ≤ `resumeStep` and appends after them.
    public init(path: String, resumeStep: Int? = nil) throws {
        self.path = path
        let fm = FileManager.default
        var kept = Data()
        if let resumeStep, let old = fm.contents(atPath: path) {
            for line in old.split(separator: UInt8(ascii: "\n")) {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      let step = (obj["step"] as? NSNumber)?.intValue else { continue }
                if step <= resumeStep { kept += Data(line) + Data("\n".utf8) }
            }
        }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !dir.isEmpty { try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        do {
            if resumeStep != nil { try AtomicFile.write(kept, to: path) } else { try Data().write(to: URL(fileURLWithPath: path)) }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seekToEnd()
        } catch {
            throw LPCError.invalidConfig("cannot open the metrics file \(path): \(error.localizedDescription)")
        }
    }

    deinit { try? handle.close() }

    /// Appends one record.
    public func write(_ values: [String: Double]) throws {
        try handle.write(contentsOf: Self.line(values))
    }

    /// One JSONL line (with its newline).
    public static func line(_ values: [String: Double]) -> Data {
        var obj: [String: Any] = [:]
        for (k, v) in values {
            if k == "step" || k == "pairs" || k.hasSuffix("/pairs") || k.hasPrefix("eval/ties/") {
                obj[k] = v.isFinite ? Int(v) as Any : NSNull()
            } else {
                obj[k] = v.isFinite ? v as Any : NSNull()
            }
        }
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return data + Data("\n".utf8)
    }

    /// Reads a metrics file back (tests, tools): one dictionary per line, nulls as NaN.
    public static func read(_ path: String) throws -> [[String: Double]] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LPCError.invalidConfig("cannot read the metrics file \(path)")
        }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { line in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { return nil }
            var out: [String: Double] = [:]
            for (k, v) in obj { out[k] = (v as? NSNumber)?.doubleValue ?? .nan }
            return out
        }
    }
}
