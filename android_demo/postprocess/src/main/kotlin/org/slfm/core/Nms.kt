package org.slfm.core

/**
 * IoU, greedy NMS, per-label NMS and cross-class suppression, mirroring `slfm/nms.py`: IoU in float32 with
 * NumPy's operation order, so that keep/drop decisions are Python's. Boxes are flat [N * 4] (x1, y1, x2, y2).
 */
object Nms {
    private fun area(b: FloatArray, i: Int): Float =
        maxOf(b[4 * i + 2] - b[4 * i], 0f) * maxOf(b[4 * i + 3] - b[4 * i + 1], 0f)

    /** IoU of box `i` of `a` and box `j` of `b`. */
    fun iou(a: FloatArray, i: Int, b: FloatArray, j: Int): Float {
        val w = maxOf(minOf(a[4 * i + 2], b[4 * j + 2]) - maxOf(a[4 * i], b[4 * j]), 0f)
        val h = maxOf(minOf(a[4 * i + 3], b[4 * j + 3]) - maxOf(a[4 * i + 1], b[4 * j + 1]), 0f)
        val inter = w * h
        val union = area(a, i) + area(b, j) - inter
        return if (union > 0f) inter / maxOf(union, 1e-12f) else 0f
    }

    /** Indices sorted by descending score; equal scores keep the lower index first (NumPy's stable argsort). */
    fun argsortDescending(scores: FloatArray): IntArray =
        scores.indices.sortedWith { i, j ->
            when {
                scores[i] > scores[j] -> -1
                scores[i] < scores[j] -> 1
                else -> i.compareTo(j)
            }
        }.toIntArray()

    /** Greedy suppression in descending score order: [drops] (kept box, candidate, their IoU) removes a candidate. */
    private inline fun greedy(boxes: FloatArray, scores: FloatArray, drops: (kept: Int, candidate: Int, iou: Float) -> Boolean): IntArray {
        val order = argsortDescending(scores)
        val keep = BooleanArray(order.size) { true }
        for (i in order.indices) {
            if (!keep[i]) continue
            for (j in i + 1 until order.size) {
                if (keep[j] && drops(order[i], order[j], iou(boxes, order[i], boxes, order[j]))) keep[j] = false
            }
        }
        return order.filterIndexed { r, _ -> keep[r] }.toIntArray()
    }

    /** Greedy NMS: kept indices by descending score; a box goes when IoU with a kept better box > threshold. */
    fun nms(boxes: FloatArray, scores: FloatArray, iouThreshold: Float): IntArray =
        greedy(boxes, scores) { _, _, iou -> iou > iouThreshold }

    /** NMS within each label: boxes of different labels never suppress each other. Indices by descending score. */
    fun batchedNms(boxes: FloatArray, scores: FloatArray, labels: IntArray, iouThreshold: Float): IntArray =
        greedy(boxes, scores) { i, j, iou -> iou > iouThreshold && labels[i] == labels[j] }

    /** Face/mask suppression: drops a box overlapped (IoU > threshold) by a better box of another label. */
    fun crossClassSuppress(boxes: FloatArray, scores: FloatArray, labels: IntArray, iouThreshold: Float): IntArray =
        greedy(boxes, scores) { i, j, iou -> iou > iouThreshold && labels[i] != labels[j] }
}
