import Foundation
import TensorCore

/// How far one tensor is from a reference: the worst absolute error, the worst excess over the
/// tolerance `atol + rtol·|expected|`, and the normalised MSE (as llama.cpp's test-backend-ops).
public struct Closeness: CustomStringConvertible {
    public var maxAbsError: Double = 0
    public var worstIndex: Int = -1
    public var violations: Int = 0
    public var nmse: Double = 0
    public var shapeMismatch: String?

    public var isClose: Bool { shapeMismatch == nil && violations == 0 }

    public var description: String {
        if let shapeMismatch { return shapeMismatch }
        return "max |error| \(maxAbsError) at element \(worstIndex), \(violations) element(s) out of tolerance, NMSE \(nmse)"
    }
}

/// Compares element by element: |a − e| ≤ atol + rtol·|e|. NaN matches NaN; ±inf must match exactly.
public func closeness(_ actual: Tensor, _ expected: Tensor, atol: Double, rtol: Double) -> Closeness {
    var result = Closeness()
    guard actual.shape == expected.shape else {
        result.shapeMismatch = "shape \(actual.shape) (\(actual.dtype)) differs from expected \(expected.shape) (\(expected.dtype))"
        return result
    }
    let a = actual.doubles(), e = expected.doubles()
    var squaredError = 0.0, squaredRef = 0.0
    for i in 0..<a.count {
        if a[i].isNaN && e[i].isNaN { continue }
        if a[i].isInfinite || e[i].isInfinite {
            if a[i] != e[i] { result.violations += 1; result.maxAbsError = .infinity; result.worstIndex = i }
            continue
        }
        let error = abs(a[i] - e[i])
        if !(error <= atol + rtol * abs(e[i])) { result.violations += 1 }
        if !(error <= result.maxAbsError) { result.maxAbsError = error; result.worstIndex = i }
        squaredError += error * error
        squaredRef += e[i] * e[i]
    }
    result.nmse = squaredRef > 0 ? squaredError / squaredRef : squaredError
    return result
}

/// Paths of committed test fixtures, found from this source file's location.
public enum Fixtures {
    public static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
    }

    public static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }

    /// Reads a JSON manifest; fails loudly (throws) when it is missing, so tests never pass empty.
    public static func json(_ relative: String) throws -> Any {
        let url = root.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureError("fixture '\(relative)' is missing under \(root.path); regenerate it with the scripts in tools/")
        }
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
