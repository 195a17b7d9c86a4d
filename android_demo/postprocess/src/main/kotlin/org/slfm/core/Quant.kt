package org.slfm.core

import kotlin.math.abs
import kotlin.math.sign
import kotlin.math.truncate

/** (scale, zero point) of an int8 tensor, from the sidecar's `input_quant` / `output_quant`. */
data class QuantParams(val scale: Float, val zeroPoint: Int) {
    /** TFLite's affine quantization: clamp(round(x / scale) + zeroPoint), halves away from zero (`slfm.core.quantize`). */
    fun quantize(x: Float, qmin: Int = -128, qmax: Int = 127): Int {
        val y = x / scale
        val t = truncate(y)
        val r = if (abs(y - t) >= 0.5f) t + sign(y) else t // exact: floor(|y| + 0.5) rounds 0.49999997 up
        return (r + zeroPoint).coerceIn(qmin.toFloat(), qmax.toFloat()).toInt()
    }

    /** x = (q - zeroPoint) * scale. */
    fun dequantize(q: Int): Float = (q - zeroPoint).toFloat() * scale

    /** Dequantizes a whole int8 output buffer. */
    fun dequantize(q: ByteArray): FloatArray = FloatArray(q.size) { dequantize(q[it].toInt()) }
}
