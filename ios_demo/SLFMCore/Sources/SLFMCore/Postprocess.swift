/// Thresholds of `slfm.postprocess.PostprocessConfig` (defaults: the demo's).
public struct PostprocessConfig: Equatable, Sendable {
    public var scoreThreshold: Float = 0.5
    public var nmsIoU: Float = 0.3
    public var crossClassIoU: Float = 0.5  // face vs mask on the same person; <= 0 disables
    public var preNMSTopK: Int = 5000
    public var maxDetections: Int = 750

    public init(
        scoreThreshold: Float = 0.5, nmsIoU: Float = 0.3, crossClassIoU: Float = 0.5,
        preNMSTopK: Int = 5000, maxDetections: Int = 750
    ) {
        self.scoreThreshold = scoreThreshold
        self.nmsIoU = nmsIoU
        self.crossClassIoU = crossClassIoU
        self.preNMSTopK = preNMSTopK
        self.maxDetections = maxDetections
    }
}

/// One detection: a box (x1, y1, x2, y2), its score and its label (1 = face, 2 = mask).
public struct Detection: Equatable, Sendable {
    public var x1, y1, x2, y2: Float
    public var score: Float
    public var label: Int

    public init(x1: Float, y1: Float, x2: Float, y2: Float, score: Float, label: Int) {
        (self.x1, self.y1, self.x2, self.y2, self.score, self.label) = (x1, y1, x2, y2, score, label)
    }
}

public enum PostprocessError: Error, Equatable, CustomStringConvertible {
    case shapeMismatch(String)
    public var description: String {
        switch self { case .shapeMismatch(let m): return m }
    }
}

/// From raw model outputs to detections, mirroring `slfm/postprocess.py`: score threshold, top-k, decode,
/// per-label NMS, cross-class suppression, cap. Detections by descending score, boxes normalised to the input.
///
/// - Parameters:
///   - loc: SSD offsets `[A * 4]`
///   - scores: class probabilities `[A * numClasses]`, column 0 background
///   - priors: anchors `[A * 4]` from `Anchors.generate`
public func postprocess(
    loc: [Float], scores: [Float], numClasses: Int, priors: [Float],
    variances: [Float] = Codec.defaultVariances, config: PostprocessConfig = PostprocessConfig()
) throws -> [Detection] {
    let a = loc.count / 4
    guard loc.count == 4 * a, scores.count == a * numClasses else {
        throw PostprocessError.shapeMismatch(
            "expected loc [A, 4] and scores [A, \(numClasses)] with the same A, got \(loc.count) and \(scores.count) values")
    }
    guard priors.count == loc.count else {
        throw PostprocessError.shapeMismatch("\(a) predictions but \(priors.count / 4) anchors: input size mismatch")
    }
    // Candidates in NumPy's nonzero order: anchor, then class.
    var anchorIdx: [Int] = []
    var cls: [Int] = []
    var conf: [Float] = []
    for i in 0..<a {
        for c in 1..<numClasses where scores[i * numClasses + c] > config.scoreThreshold {
            anchorIdx.append(i)
            cls.append(c - 1)
            conf.append(scores[i * numClasses + c])
        }
    }
    if conf.count > config.preNMSTopK {
        let top = NMS.argsortDescending(conf).prefix(config.preNMSTopK)
        (anchorIdx, cls, conf) = (top.map { anchorIdx[$0] }, top.map { cls[$0] }, top.map { conf[$0] })
    }
    var boxes = [Float](repeating: 0, count: 4 * conf.count)
    for k in conf.indices {
        let p = 4 * anchorIdx[k]
        (boxes[4 * k], boxes[4 * k + 1], boxes[4 * k + 2], boxes[4 * k + 3]) =
            Codec.decode(loc, at: p, priors: priors, at: p, variances: variances)
    }
    let labels = cls.map { $0 + 1 }

    var keep = NMS.batchedNMS(boxes, conf, labels: labels, iouThreshold: config.nmsIoU)
    var kb = select(boxes, keep)
    var ks = keep.map { conf[$0] }
    var kl = keep.map { labels[$0] }
    if config.crossClassIoU > 0 {
        keep = NMS.crossClassSuppress(kb, ks, labels: kl, iouThreshold: config.crossClassIoU)
        (kb, ks, kl) = (select(kb, keep), keep.map { ks[$0] }, keep.map { kl[$0] })
    }
    return (0..<min(ks.count, config.maxDetections)).map {
        Detection(x1: kb[4 * $0], y1: kb[4 * $0 + 1], x2: kb[4 * $0 + 2], y2: kb[4 * $0 + 3], score: ks[$0], label: kl[$0])
    }
}

private func select(_ boxes: [Float], _ idx: [Int]) -> [Float] {
    idx.flatMap { boxes[(4 * $0)..<(4 * $0 + 4)] }
}
