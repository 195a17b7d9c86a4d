package org.slfm.demo

import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Matrix
import android.graphics.Paint
import android.os.SystemClock
import org.slfm.core.Detection
import org.slfm.core.Letterbox
import org.slfm.core.ModelMeta
import org.slfm.core.postprocess

/** Detections of one frame in the (upright) frame's pixels, and the time the model took. */
class FrameResult(val detections: List<Detection>, val width: Int, val height: Int, val inferenceMs: Double)

/**
 * Letterbox (here, with Android's bilinear scaling; geometry from the shared [Letterbox]) -> backend ->
 * the shared [postprocess] -> boxes in frame pixels. Not thread-safe: one analyzer thread.
 */
class Detector(private val backend: Backend, private val meta: ModelMeta) : AutoCloseable {
    private val size = meta.imageSize
    private val anchors = meta.anchors()
    private val canvasBitmap = Bitmap.createBitmap(size, size, Bitmap.Config.ARGB_8888)
    private val canvas = Canvas(canvasBitmap)
    private val paint = Paint(Paint.FILTER_BITMAP_FLAG)
    private val pixels = IntArray(size * size)
    private val padColor = meta.meanBgr.map { Math.round(it).coerceIn(0, 255) }.let { (b, g, r) -> Color.rgb(r, g, b) }

    val label: String get() = backend.label

    fun detect(frame: Bitmap): FrameResult {
        val lb = Letterbox.of(frame.height, frame.width, size)
        canvas.drawColor(padColor)
        val m = Matrix().apply {
            setScale(lb.resizedWidth.toFloat() / frame.width, lb.resizedHeight.toFloat() / frame.height)
        }
        canvas.drawBitmap(frame, m, paint)
        canvasBitmap.getPixels(pixels, 0, size, 0, 0, size, size)

        val t0 = SystemClock.elapsedRealtimeNanos()
        val raw = backend.run(pixels)
        val ms = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6

        val dets = postprocess(raw.loc, raw.scores, meta.numClasses, anchors, meta.variances, meta.postprocess)
        return FrameResult(dets.map { lb.toImagePixels(it, frame.height, frame.width) }, frame.width, frame.height, ms)
    }

    override fun close() = backend.close()
}
