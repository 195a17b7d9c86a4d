package org.slfm.core

/**
 * The geometry of `slfm.core.letterbox`: scale the long side to [size], keep the aspect, and pad
 * right and bottom with the mean colour. The platform resamples the pixels; this fixes where they go.
 */
data class Letterbox(val size: Int, val scale: Double, val resizedWidth: Int, val resizedHeight: Int) {
    companion object {
        fun of(height: Int, width: Int, size: Int): Letterbox {
            require(height > 0 && width > 0) { "image size ${width}x$height is empty" }
            val scale = size.toDouble() / maxOf(height, width)
            // Python's round(): halves to even, like Math.rint.
            return Letterbox(
                size,
                scale,
                resizedWidth = minOf(size, Math.rint(width * scale).toInt()),
                resizedHeight = minOf(size, Math.rint(height * scale).toInt()),
            )
        }
    }

    /** A detection's box from normalised input coordinates to image pixels, clipped (`slfm.predictor.to_image_pixels`). */
    fun toImagePixels(d: Detection, imageHeight: Int, imageWidth: Int): Detection {
        val s = size.toFloat()
        val k = scale.toFloat()
        val w = imageWidth.toFloat()
        val h = imageHeight.toFloat()
        return d.copy(
            x1 = (d.x1 * s / k).coerceIn(0f, w),
            y1 = (d.y1 * s / k).coerceIn(0f, h),
            x2 = (d.x2 * s / k).coerceIn(0f, w),
            y2 = (d.y2 * s / k).coerceIn(0f, h),
        )
    }
}
