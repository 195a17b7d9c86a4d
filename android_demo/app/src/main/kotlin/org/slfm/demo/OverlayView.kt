package org.slfm.demo

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.RectF
import android.util.AttributeSet
import android.view.View
import kotlin.math.max

/** Draws the boxes over a PreviewView in FILL_CENTER mode (the frame scaled to cover the view, centred). */
class OverlayView @JvmOverloads constructor(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private var result: FrameResult? = null
    private var mirrored = false
    private var classes: List<String> = listOf("background", "face", "mask")
    private val box = Paint().apply { style = Paint.Style.STROKE; strokeWidth = 6f }
    private val text = Paint().apply { color = Color.WHITE; textSize = 40f; isAntiAlias = true }
    private val tag = Paint().apply { style = Paint.Style.FILL }

    fun update(r: FrameResult, mirror: Boolean, names: List<String>) {
        result = r
        mirrored = mirror
        classes = names
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val r = result ?: return
        val k = max(width.toFloat() / r.width, height.toFloat() / r.height)
        val dx = (width - r.width * k) / 2f
        val dy = (height - r.height * k) / 2f
        for (d in r.detections) {
            val x1 = d.x1 * k + dx
            val x2 = d.x2 * k + dx
            val (left, right) = if (mirrored) (width - x2) to (width - x1) else x1 to x2
            val rect = RectF(left, d.y1 * k + dy, right, d.y2 * k + dy)
            val color = if (classes.getOrNull(d.label) == "mask") Color.rgb(40, 200, 80) else Color.rgb(230, 50, 50)
            box.color = color
            tag.color = color
            canvas.drawRect(rect, box)
            val name = classes.getOrElse(d.label) { "#${d.label}" }
            // people read "no mask" for the data's "face" class
            val caption = "${if (name == "face") "no mask" else name} ${"%.2f".format(d.score)}"
            val w = text.measureText(caption)
            canvas.drawRect(rect.left, rect.top - 48f, rect.left + w + 16f, rect.top, tag)
            canvas.drawText(caption, rect.left + 8f, rect.top - 12f, text)
        }
    }
}
