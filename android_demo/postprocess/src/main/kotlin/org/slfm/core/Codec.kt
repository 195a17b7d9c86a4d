package org.slfm.core

import kotlin.math.exp

/** SSD box decoding (variances 0.1 / 0.2), mirroring `slfm/codec.py`, in float32 with NumPy's operation order. */
object Codec {
    /**
     * Decodes offsets `loc[4 * i ..]` against `priors[4 * p ..]` into (x1, y1, x2, y2) normalised boxes.
     * Writes 4 floats into `out` at `outOffset`.
     */
    fun decodeInto(
        loc: FloatArray, locOffset: Int,
        priors: FloatArray, priorOffset: Int,
        variances: FloatArray,
        out: FloatArray, outOffset: Int,
    ) {
        val pcx = priors[priorOffset]
        val pcy = priors[priorOffset + 1]
        val pw = priors[priorOffset + 2]
        val ph = priors[priorOffset + 3]
        val cx = pcx + loc[locOffset] * variances[0] * pw
        val cy = pcy + loc[locOffset + 1] * variances[0] * ph
        val w = pw * exp(loc[locOffset + 2] * variances[1])
        val h = ph * exp(loc[locOffset + 3] * variances[1])
        out[outOffset] = cx - w / 2f
        out[outOffset + 1] = cy - h / 2f
        out[outOffset + 2] = cx + w / 2f
        out[outOffset + 3] = cy + h / 2f
    }

    /** Decodes N rows: `loc` [N * 4] against `priors` [N * 4] -> boxes [N * 4]. */
    fun decode(loc: FloatArray, priors: FloatArray, variances: FloatArray = DEFAULT_VARIANCES): FloatArray {
        require(loc.size == priors.size && loc.size % 4 == 0) { "loc ${loc.size} and priors ${priors.size} differ" }
        val out = FloatArray(loc.size)
        for (i in 0 until loc.size / 4) decodeInto(loc, 4 * i, priors, 4 * i, variances, out, 4 * i)
        return out
    }

    val DEFAULT_VARIANCES = floatArrayOf(0.1f, 0.2f)
}
