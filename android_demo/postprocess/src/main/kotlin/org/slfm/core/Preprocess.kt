package org.slfm.core

/**
 * Network input from a letterboxed [size] x [size] image given as ARGB_8888 ints (what `Bitmap.getPixels`
 * returns), mirroring `slfm.core.normalize`: BGR channels, (pixel - mean) * pixelScale, in the
 * artifact's layout (NCHW or NHWC), quantized when the graph takes int8.
 */
class InputEncoder(private val meta: ModelMeta) {
    val size: Int = meta.imageSize
    private val n = size * size

    /** Value of channel [c] (0 = B, 1 = G, 2 = R) of pixel [argb]. */
    private fun value(argb: Int, c: Int): Float {
        val v = when (c) {
            0 -> argb and 0xFF
            1 -> (argb shr 8) and 0xFF
            else -> (argb shr 16) and 0xFF
        }
        return (v.toFloat() - meta.meanBgr[c]) * meta.pixelScale
    }

    private fun index(p: Int, c: Int): Int = if (meta.layout == "NCHW") c * n + p else p * 3 + c

    fun encodeFloat(argb: IntArray, out: FloatArray = FloatArray(3 * n)): FloatArray {
        require(argb.size == n) { "expected ${size}x$size pixels, got ${argb.size}" }
        for (p in 0 until n) for (c in 0 until 3) out[index(p, c)] = value(argb[p], c)
        return out
    }

    fun encodeInt8(argb: IntArray, out: ByteArray = ByteArray(3 * n)): ByteArray {
        require(argb.size == n) { "expected ${size}x$size pixels, got ${argb.size}" }
        val q = requireNotNull(meta.inputQuant) { "the model's input is not quantized (no input_quant in its metadata)" }
        for (p in 0 until n) for (c in 0 until 3) out[index(p, c)] = q.quantize(value(argb[p], c)).toByte()
        return out
    }
}
