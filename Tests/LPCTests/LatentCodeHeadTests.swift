import Foundation
import Generation
import Testing
import TensorCore
@testable import LPC

/// Conditioned generation's head against the training code's forward (`LPCModel.evaluate`).
@Suite("Latent code head")
struct LatentCodeHeadTests {
    let d = 8, vocab = 20, codes = 4, rank = 3

    func setUp(seed: UInt64 = 3) throws -> (LPCModel, FrozenLMHead) {
        var rng = Xoshiro256(seed: seed)
        let weight = (0..<vocab * d).map { _ in Float(rng.normal()) * 0.5 }
        let lmHead = try FrozenLMHead(weight: weight, vocabSize: vocab, hiddenSize: d)
        var config = LPCConfig(hiddenSize: d, vocabSize: vocab)
        config.codes = codes
        config.rank = rank
        config.codebookInitStd = 0.5
        let model = try LPCModel(config: config, lmHead: lmHead, seed: seed)
        // U starts at zero; give the adapter a real contribution.
        try model.setParameter("head.up.weight", (0..<d * rank).map { _ in Float(rng.normal()) * 0.3 })
        return (model, lmHead)
    }

    func logSoftmax(_ logits: [Float], _ id: Int) -> Double {
        let top = logits.max()!
        let sum = logits.reduce(0.0) { $0 + exp(Double($1 - top)) }
        return Double(logits[id] - top) - log(sum)
    }

    @Test(arguments: [0, 1, 3])
    func aFixedCodeGivesTheTrainingForwardsLogProbs(_ code: Int) throws {
        let (model, lmHead) = try setUp()
        var rng = Xoshiro256(seed: 11)
        let steps = 5
        let hx = (0..<d).map { _ in Float(rng.normal()) }
        let hidden = (0..<steps * d).map { _ in Float(rng.normal()) }
        let ids: [Int32] = (0..<steps).map { _ in Int32(rng.next() % UInt64(vocab)) }
        var batch = PreferenceBatch(hiddenSize: d)
        try batch.append(promptHidden: hx, chosenLastHidden: Array(hidden.suffix(d)), rejectedLastHidden: Array(hidden.prefix(d)),
                         chosenTokens: hidden, chosenIds: ids, chosenReferenceLogProb: 0,
                         rejectedTokens: Array(hidden.prefix(2 * d)), rejectedIds: Array(ids.prefix(2)), rejectedReferenceLogProb: 0)
        let expected = try model.evaluate(batch, code: .fixed(code)).chosenLogProbs[0]

        let head = try LatentCodeHead(model: model, lmHead: lmHead, mode: .fixed(code))
        let choice = try head.begin(promptHidden: hx)
        #expect(choice.code == code && choice.mode == "fixed")
        var sum = 0.0
        for t in 0..<steps { sum += logSoftmax(head.logits(hidden: Array(hidden[t * d..<(t + 1) * d])), Int(ids[t])) }
        #expect(abs(sum - Double(expected)) <= 1e-4 * max(1, abs(Double(expected))), "head \(sum) vs training forward \(expected)")

        // The code really changes the logits: they differ from the unconditioned LM head's.
        let plain = lmHead.logits(hidden: Array(hidden.prefix(d)), rows: 1)
        let conditioned = head.logits(hidden: Array(hidden.prefix(d)))
        #expect(zip(plain, conditioned).contains { abs($0 - $1) > 1e-3 })
    }

    @Test func autoPicksThePriorsArgmaxAndReportsItsTopCodes() throws {
        let (model, lmHead) = try setUp()
        var rng = Xoshiro256(seed: 5)
        for _ in 0..<10 {
            let hx = (0..<d).map { _ in Float(rng.normal()) * 3 }
            let prior = model.priorProbabilities(promptHidden: hx)
            let argmax = prior.indices.max { prior[$0] < prior[$1] }!
            let choice = try LatentCodeHead(model: model, lmHead: lmHead, mode: .auto).begin(promptHidden: hx)
            #expect(choice.code == argmax)
            #expect(choice.top.first?.code == argmax && choice.top.count == codes)
            #expect(abs(choice.top.map(\.probability).reduce(0, +) - 1) < 1e-5)
        }
    }

    @Test func mixBlendsCodesAndSampleIsSeeded() throws {
        let (model, lmHead) = try setUp()
        let hx = [Float](repeating: 0.3, count: d)
        let mix = try LatentCodeHead(model: model, lmHead: lmHead, mode: .mix)
        #expect(try mix.begin(promptHidden: hx).code == nil)
        let blend = try model.code(.priorMean, promptHidden: hx)
        #expect(mix.z == blend)
        let first = try LatentCodeHead(model: model, lmHead: lmHead, mode: .sample(seed: 9)).begin(promptHidden: hx)
        let second = try LatentCodeHead(model: model, lmHead: lmHead, mode: .sample(seed: 9)).begin(promptHidden: hx)
        #expect(first.code == second.code && first.code != nil)
    }

    @Test func anOutOfRangeCodeIsRefused() throws {
        let (model, lmHead) = try setUp()
        #expect(throws: LPCError.self) { _ = try LatentCodeHead(model: model, lmHead: lmHead, mode: .fixed(codes)) }
    }
}
