package org.slfm.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.os.Bundle
import android.util.Log
import android.widget.Button
import android.widget.TextView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Live camera preview with face/mask boxes, labels and FPS. */
class MainActivity : AppCompatActivity() {
    private lateinit var preview: PreviewView
    private lateinit var overlay: OverlayView
    private lateinit var status: TextView
    private val analyzer: ExecutorService = Executors.newSingleThreadExecutor()
    private var detector: Detector? = null
    private var classes: List<String> = emptyList()
    private var lensFacing = CameraSelector.LENS_FACING_BACK
    private var fps = 0.0
    private var lastFrameNs = 0L

    private val permission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else status.text = getString(R.string.no_permission)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        preview = findViewById(R.id.preview)
        overlay = findViewById(R.id.overlay)
        status = findViewById(R.id.status)
        preview.scaleType = PreviewView.ScaleType.FILL_CENTER
        findViewById<Button>(R.id.flip).setOnClickListener {
            lensFacing = if (lensFacing == CameraSelector.LENS_FACING_BACK) CameraSelector.LENS_FACING_FRONT
            else CameraSelector.LENS_FACING_BACK
            startCamera()
        }
        analyzer.execute { loadModel() }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            permission.launch(Manifest.permission.CAMERA)
        }
    }

    /** On the analyzer thread, so frames only arrive once the model is ready. */
    private fun loadModel() {
        try {
            val loaded = ModelFiles.load(this)
            detector = Detector(loaded.backend, loaded.meta)
            classes = loaded.meta.classes
            runOnUiThread { status.text = "${loaded.backend.label} · ${loaded.meta.imageSize}px" }
        } catch (e: Exception) {
            Log.e(TAG, "model load failed", e)
            runOnUiThread { status.text = "Model error: ${e.message}" }
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val previewUse = Preview.Builder().build().also { it.surfaceProvider = preview.surfaceProvider }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
                .also { it.setAnalyzer(analyzer, ::analyze) }
            val selector = CameraSelector.Builder().requireLensFacing(lensFacing).build()
            provider.unbindAll()
            provider.bindToLifecycle(this, selector, previewUse, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        image.use {
            val det = detector ?: return
            val frame = upright(it)
            val result = det.detect(frame)
            val now = System.nanoTime()
            if (lastFrameNs != 0L) {
                val instant = 1e9 / (now - lastFrameNs)
                fps = if (fps == 0.0) instant else 0.9 * fps + 0.1 * instant
            }
            lastFrameNs = now
            val mirror = lensFacing == CameraSelector.LENS_FACING_FRONT
            val text = "%s · %.1f FPS · %.0f ms · %d found".format(det.label, fps, result.inferenceMs, result.detections.size)
            runOnUiThread {
                overlay.update(result, mirror, classes)
                status.text = text
            }
        }
    }

    /** The frame as an upright bitmap (the sensor's rotation applied). */
    private fun upright(image: ImageProxy): Bitmap {
        val bitmap = image.toBitmap()
        val degrees = image.imageInfo.rotationDegrees
        if (degrees == 0) return bitmap
        val m = Matrix().apply { postRotate(degrees.toFloat()) }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
    }

    override fun onDestroy() {
        super.onDestroy()
        analyzer.execute { detector?.close() }
        analyzer.shutdown()
    }

    private companion object {
        const val TAG = "SlfmDemo"
    }
}
