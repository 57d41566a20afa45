import Foundation
import Testing
@testable import Generation

/// Logit processors and samplers on hand-computed distributions.
@Suite("Sampling chain")
struct SamplingTests {
    let logits: [Float] = [Float(log(0.5)), Float(log(0.25)), Float(log(0.15)), Float(log(0.10))]

    func probabilities(_ values: [Float]) -> [Float] { softmax(values) }

    @Test func softmaxOfLogProbabilitiesGivesThemBack() {
        let p = probabilities(logits)
        for (a, b) in zip(p, [Float(0.5), 0.25, 0.15, 0.10]) { #expect(abs(a - b) < 1e-6) }
    }

    @Test func temperatureSharpensAndFlattens() {
        var cold = logits
        Temperature(0.5).process(&cold, history: [])
        // p_i^2 normalised: 0.25, 0.0625, 0.0225, 0.01 over 0.345
        let p = probabilities(cold)
        for (a, b) in zip(p, [0.25 / 0.345, 0.0625 / 0.345, 0.0225 / 0.345, 0.01 / 0.345].map(Float.init)) {
            #expect(abs(a - b) < 1e-5)
        }
    }

    @Test func topKKeepsTheKLargest() {
        var values = logits
        TopK(2).process(&values, history: [])
        let p = probabilities(values)
        #expect(abs(p[0] - 2.0 / 3.0) < 1e-6 && abs(p[1] - 1.0 / 3.0) < 1e-6 && p[2] == 0 && p[3] == 0)
    }

    @Test func topPKeepsTheSmallestNucleus() {
        var values = logits
        TopP(0.8).process(&values, history: [])  // 0.5 + 0.25 = 0.75 < 0.8, so 0.15 joins
        let p = probabilities(values)
        #expect(p[3] == 0 && abs(p[2] - 0.15 / 0.9) < 1e-6)
        var tight = logits
        TopP(0.1).process(&tight, history: [])  // the top token alone already reaches 0.1
        #expect(probabilities(tight) == [1, 0, 0, 0])
    }

    @Test func minPDropsTokensBelowAFractionOfTheTop() {
        var values = logits
        MinP(0.3).process(&values, history: [])  // threshold 0.15: keeps 0.5, 0.25, 0.15
        let p = probabilities(values)
        #expect(p[3] == 0 && p[2] > 0)
    }

    @Test func repetitionPenaltyDividesPositiveAndMultipliesNegative() {
        var values: [Float] = [2, -2, 1]
        RepetitionPenalty(2).process(&values, history: [0, 1, 1])
        #expect(values == [1, -4, 1])
    }

    @Test func presenceAndFrequencyCountOnlyGeneratedTokens() {
        var values: [Float] = [0, 0, 0]
        PresenceFrequencyPenalty(presence: 0.5, frequency: 0.25, generatedFrom: 1).process(&values, history: [2, 0, 0, 1])
        #expect(values == [-1.0, -0.75, 0])
    }

    @Test func logitBiasCanBanAToken() {
        var values = logits
        LogitBias([0: -.infinity]).process(&values, history: [])
        var generator = SeededGenerator(seed: 1)
        #expect(Sampler.greedy.sample(values, using: &generator) == 1)
    }

    @Test func greedyTakesTheLowestIdAmongTies() {
        var generator = SeededGenerator(seed: 1)
        #expect(Sampler.greedy.sample([1, 3, 3, 2], using: &generator) == 1)
    }

    @Test func seededSamplingIsReproducibleAndMatchesTheDistribution() {
        var first = SeededGenerator(seed: 42), second = SeededGenerator(seed: 42)
        let a = (0..<100).map { _ in Sampler.random.sample(logits, using: &first) }
        let b = (0..<100).map { _ in Sampler.random.sample(logits, using: &second) }
        #expect(a == b)
        // 20,000 draws: each frequency within 5 standard deviations of its probability.
        var generator = SeededGenerator(seed: 7)
        var counts = [0, 0, 0, 0]
        let n = 20_000
        for _ in 0..<n { counts[Sampler.random.sample(logits, using: &generator)] += 1 }
        for (count, p) in zip(counts, [0.5, 0.25, 0.15, 0.10]) {
            let sigma = (Double(n) * p * (1 - p)).squareRoot()
            #expect(abs(Double(count) - Double(n) * p) < 5 * sigma, "count \(count) for p \(p)")
        }
    }

    @Test func optionsAreValidatedWithTheirCLINames() {
        var options = SamplingOptions()
        options.topP = 0
        #expect(throws: GenerationError.invalidOption("--top-p must be in (0, 1], got 0.0")) { try options.validate() }
        options = SamplingOptions()
        options.temperature = -1
        #expect(throws: GenerationError.self) { try options.validate() }
    }
}
