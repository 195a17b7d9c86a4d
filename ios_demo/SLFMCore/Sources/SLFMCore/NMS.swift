/// IoU, greedy NMS, per-label NMS and cross-class suppression, mirroring `slfm/nms.py`: IoU in `Float` with
/// NumPy's operation order, so that keep/drop decisions are Python's. Boxes are flat `[N * 4]` (x1, y1, x2, y2).
public enum NMS {
    @inline(__always)
    static func area(_ b: [Float], _ i: Int) -> Float {
        max(b[4 * i + 2] - b[4 * i], 0) * max(b[4 * i + 3] - b[4 * i + 1], 0)
    }

    /// IoU of box `i` of `a` and box `j` of `b`.
    public static func iou(_ a: [Float], _ i: Int, _ b: [Float], _ j: Int) -> Float {
        let w = max(min(a[4 * i + 2], b[4 * j + 2]) - max(a[4 * i], b[4 * j]), 0)
        let h = max(min(a[4 * i + 3], b[4 * j + 3]) - max(a[4 * i + 1], b[4 * j + 1]), 0)
        let inter = w * h
        let union = area(a, i) + area(b, j) - inter
        return union > 0 ? inter / max(union, 1e-12) : 0
    }

    /// Indices by descending score; equal scores keep the lower index first (NumPy's stable argsort).
    public static func argsortDescending(_ scores: [Float]) -> [Int] {
        scores.indices.sorted { i, j in scores[i] != scores[j] ? scores[i] > scores[j] : i < j }
    }

    /// Greedy suppression in descending score order: `drops(kept, candidate, iou)` removes a candidate.
    private static func greedy(
        _ boxes: [Float], _ scores: [Float], drops: (_ kept: Int, _ candidate: Int, _ iou: Float) -> Bool
    ) -> [Int] {
        let order = argsortDescending(scores)
        var keep = [Bool](repeating: true, count: order.count)
        for r in order.indices where keep[r] {
            for s in (r + 1)..<order.count where keep[s] {
                if drops(order[r], order[s], iou(boxes, order[r], boxes, order[s])) { keep[s] = false }
            }
        }
        return order.indices.filter { keep[$0] }.map { order[$0] }
    }

    /// Greedy NMS: kept indices by descending score; a box goes when its IoU with a kept better box > threshold.
    public static func nms(_ boxes: [Float], _ scores: [Float], iouThreshold: Float) -> [Int] {
        greedy(boxes, scores) { _, _, iou in iou > iouThreshold }
    }

    /// NMS within each label: boxes of different labels never suppress each other. Indices by descending score.
    public static func batchedNMS(_ boxes: [Float], _ scores: [Float], labels: [Int], iouThreshold: Float) -> [Int] {
        greedy(boxes, scores) { i, j, iou in iou > iouThreshold && labels[i] == labels[j] }
    }

    /// Face/mask suppression: drops a box overlapped (IoU > threshold) by a better box of another label.
    public static func crossClassSuppress(
        _ boxes: [Float], _ scores: [Float], labels: [Int], iouThreshold: Float
    ) -> [Int] {
        greedy(boxes, scores) { i, j, iou in iou > iouThreshold && labels[i] != labels[j] }
    }
}
