package org.slfm.core

/** Thresholds of `slfm.postprocess.PostprocessConfig` (defaults: the demo's). */
data class PostprocessConfig(
    val scoreThreshold: Float = 0.5f,
    val nmsIou: Float = 0.3f,
    val crossClassIou: Float = 0.5f, // face vs mask on the same person; <= 0 disables
    val preNmsTopK: Int = 5000,
    val maxDetections: Int = 750,
)

/** One detection: a box (x1, y1, x2, y2), its score and its label (1 = face, 2 = mask). */
data class Detection(val x1: Float, val y1: Float, val x2: Float, val y2: Float, val score: Float, val label: Int)

/**
 * From raw model outputs to detections, mirroring `slfm/postprocess.py`: score threshold, top-k, decode,
 * per-label NMS, cross-class suppression, cap. Returns detections by descending score, boxes normalised
 * to the network input.
 *
 * @param loc SSD offsets [A * 4]
 * @param scores class probabilities [A * numClasses], column 0 background
 * @param priors anchors [A * 4] from [Anchors.generate]
 */
fun postprocess(
    loc: FloatArray,
    scores: FloatArray,
    numClasses: Int,
    priors: FloatArray,
    variances: FloatArray = Codec.DEFAULT_VARIANCES,
    config: PostprocessConfig = PostprocessConfig(),
): List<Detection> {
    val a = loc.size / 4
    require(loc.size == 4 * a && scores.size == a * numClasses) {
        "expected loc [A, 4] and scores [A, $numClasses] with the same A, got ${loc.size} and ${scores.size} values"
    }
    require(priors.size == loc.size) { "$a predictions but ${priors.size / 4} anchors: input size mismatch" }

    // Candidates in NumPy's nonzero order: anchor, then class.
    var anchorIdx = ArrayList<Int>()
    var cls = ArrayList<Int>()
    for (i in 0 until a) {
        for (c in 1 until numClasses) {
            if (scores[i * numClasses + c] > config.scoreThreshold) {
                anchorIdx.add(i)
                cls.add(c - 1)
            }
        }
    }
    var conf = FloatArray(anchorIdx.size) { scores[anchorIdx[it] * numClasses + cls[it] + 1] }
    if (conf.size > config.preNmsTopK) {
        val top = Nms.argsortDescending(conf).copyOf(config.preNmsTopK)
        anchorIdx = top.mapTo(ArrayList()) { anchorIdx[it] }
        cls = top.mapTo(ArrayList()) { cls[it] }
        conf = FloatArray(top.size) { conf[top[it]] }
    }
    val n = conf.size
    val boxes = FloatArray(4 * n)
    for (k in 0 until n) Codec.decodeInto(loc, 4 * anchorIdx[k], priors, 4 * anchorIdx[k], variances, boxes, 4 * k)
    val labels = IntArray(n) { cls[it] + 1 }

    var keep = Nms.batchedNms(boxes, conf, labels, config.nmsIou)
    var kb = select(boxes, keep)
    var ks = FloatArray(keep.size) { conf[keep[it]] }
    var kl = IntArray(keep.size) { labels[keep[it]] }
    if (config.crossClassIou > 0f) {
        keep = Nms.crossClassSuppress(kb, ks, kl, config.crossClassIou)
        kb = select(kb, keep)
        ks = FloatArray(keep.size) { ks[keep[it]] }
        kl = IntArray(keep.size) { kl[keep[it]] }
    }
    return List(minOf(ks.size, config.maxDetections)) {
        Detection(kb[4 * it], kb[4 * it + 1], kb[4 * it + 2], kb[4 * it + 3], ks[it], kl[it])
    }
}

private fun select(boxes: FloatArray, idx: IntArray): FloatArray =
    FloatArray(4 * idx.size) { boxes[4 * idx[it / 4] + it % 4] }
