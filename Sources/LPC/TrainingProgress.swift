import Foundation

/// Progress of a training run on stderr: a one-line bar redrawn in place with rate and ETA on a
/// terminal, or plain lines (every `lineEvery` steps, and the last) when stderr is a file or pipe.
///
/// The rate counts only time spent in optimizer steps (evaluation and checkpoints excluded), over
/// the steps of this session (a resumed run measures its own steps).
public final class TrainingProgress {
    public enum Style: Sendable { case bar, lines, silent }

    public let style: Style
    public let totalSteps: Int
    public let pairsPerStep: Int
    public var lineEvery: Int
    let write: (String) -> Void
    var stepSeconds = 0.0
    var stepsTimed = 0
    var barShown = false
    let barWidth = 24

    /// `write` receives finished text (bars start with "\r"); default: stderr.
    public init(style: Style, totalSteps: Int, pairsPerStep: Int, lineEvery: Int? = nil,
                write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.style = style
        self.totalSteps = totalSteps
        self.pairsPerStep = pairsPerStep
        self.lineEvery = max(1, lineEvery ?? max(1, totalSteps / 50))
        self.write = write
    }

    /// `.bar` when stderr is a terminal, else `.lines`.
    public static var automaticStyle: Style { isatty(STDERR_FILENO) != 0 ? .bar : .lines }

    /// Pairs per second over the timed steps.
    public var pairsPerSecond: Double { stepSeconds > 0 ? Double(stepsTimed * pairsPerStep) / stepSeconds : .nan }

    /// Seconds left at the current rate.
    public func eta(step: Int) -> Double {
        stepsTimed > 0 ? stepSeconds / Double(stepsTimed) * Double(max(0, totalSteps - step)) : .nan
    }

    /// After an optimizer step: `step` steps done in all, this one took `seconds`.
    public func update(step: Int, seconds: Double, values: [String: Double]) {
        stepSeconds += seconds
        stepsTimed += 1
        switch style {
        case .silent: return
        case .bar:
            let frac = Double(step) / Double(max(1, totalSteps))
            let filled = min(barWidth, Int(frac * Double(barWidth)))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: barWidth - filled)
            write("\r\u{1B}[K" + String(format: "%@ %d/%d %3.0f%% %@ pairs/s  loss %@  acc %@  ETA %@",
                                        bar, step, totalSteps, frac * 100, Self.number(pairsPerSecond, digits: 1),
                                        Self.number(values["loss"], digits: 4), Self.number(values["rewards/accuracies"], digits: 3),
                                        Self.duration(eta(step: step))))
            barShown = true
            if step >= totalSteps { write("\n"); barShown = false }
        case .lines:
            guard step % lineEvery == 0 || step >= totalSteps else { return }
            write(Self.line(step: step, total: totalSteps, values: values, rate: pairsPerSecond, eta: eta(step: step)) + "\n")
        }
    }

    /// A message on its own line (evaluation results, checkpoints), keeping the bar intact.
    public func note(_ text: String) {
        if style == .silent { return }
        if barShown { write("\r\u{1B}[K") ; barShown = false }
        write(text + "\n")
    }

    /// Ends the bar's line if one is shown.
    public func finish() {
        if barShown { write("\n"); barShown = false }
    }

    /// The plain progress line.
    public static func line(step: Int, total: Int, values: [String: Double], rate: Double, eta: Double) -> String {
        var s = String(format: "step %d/%d (%.0f%%)", step, total, 100 * Double(step) / Double(max(1, total)))
        s += "  loss " + number(values["loss"], digits: 4)
        s += "  acc " + number(values["rewards/accuracies"], digits: 3)
        s += "  margin " + number(values["rewards/margins"], digits: 4)
        if let kl = values["kl"] { s += "  kl " + number(kl, digits: 4) }
        s += "  lr " + (values["learning_rate"].map { String(format: "%.2e", $0) } ?? "n/a")
        s += "  " + number(rate, digits: 1) + " pairs/s  ETA " + duration(eta)
        return s
    }

    static func number(_ x: Double?, digits: Int) -> String {
        guard let x, x.isFinite else { return "n/a" }
        return String(format: "%.\(digits)f", x)
    }

    /// h:mm:ss or m:ss.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
