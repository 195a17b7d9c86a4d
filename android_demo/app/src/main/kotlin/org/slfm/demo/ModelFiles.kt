package org.slfm.demo

import android.content.Context
import java.io.File
import java.io.FileInputStream
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import org.slfm.core.ModelMeta

/** The model `slfm deploy android` put in the assets: model.tflite (LiteRT) or model.pte (ExecuTorch), each
 *  with its `<name>.json` sidecar. */
object ModelFiles {
    private const val TFLITE = "model.tflite"
    private const val PTE = "model.pte"

    class Loaded(val backend: Backend, val meta: ModelMeta)

    fun load(context: Context): Loaded {
        val assets = context.assets.list("")?.toSet().orEmpty()
        val name = listOf(TFLITE, PTE).firstOrNull { it in assets }
            ?: throw IllegalStateException("no model in the APK's assets: run `slfm deploy android <model.tflite>`")
        val meta = meta(context, name)
        val backend = when (name) {
            TFLITE -> LiteRtBackend(map(context, name), meta)
            else -> ExecuTorchBackend(copyToFiles(context, name).path, meta)
        }
        return Loaded(backend, meta)
    }

    fun meta(context: Context, model: String): ModelMeta {
        val name = "$model.json"
        val text = try {
            context.assets.open(name).bufferedReader().use { it.readText() }
        } catch (e: java.io.IOException) {
            throw IllegalStateException("$name missing from the assets (every slfm artifact has a sidecar)", e)
        }
        return ModelMeta.parse(text)
    }

    private fun map(context: Context, name: String): MappedByteBuffer =
        context.assets.openFd(name).use { fd ->
            FileInputStream(fd.fileDescriptor).channel.use {
                it.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }
        }

    private fun copyToFiles(context: Context, name: String): File {
        val out = File(context.filesDir, name)
        context.assets.open(name).use { src -> out.outputStream().use { src.copyTo(it) } }
        return out
    }
}
