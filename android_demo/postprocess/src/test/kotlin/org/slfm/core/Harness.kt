package org.slfm.core

import java.io.File
import kotlin.system.exitProcess

/**
 * A dependency-free test runner (kotlin-test's asserts, no JUnit): runs every [TestCase], prints one line
 * each and exits non-zero on any failure. Gradle runs it as `goldenTest`; `tests/test_android_logic.py`
 * runs it after compiling with kotlinc.
 */
class TestCase(val name: String, val body: () -> Unit)

fun runAll(tests: List<TestCase>): Int {
    var failed = 0
    for (t in tests) {
        try {
            t.body()
            println("PASS ${t.name}")
        } catch (e: Throwable) {
            failed++
            println("FAIL ${t.name}: ${e::class.simpleName}: ${e.message}")
        }
    }
    println("${tests.size - failed} passed, $failed failed")
    return failed
}

/** Arguments: the golden-vector folder (default: ../../tests/golden from the module, or SLFM_GOLDEN_DIR). */
fun main(args: Array<String>) {
    val dir = File(args.firstOrNull() ?: System.getenv("SLFM_GOLDEN_DIR") ?: "../../tests/golden")
    require(dir.isDirectory) { "golden vectors not found in $dir (run: python -m slfm.golden --out tests/golden)" }
    val golden = Golden(dir)
    val failed = runAll(GoldenTests(golden).all() + UnitTests.all())
    exitProcess(if (failed == 0) 0 else 1)
}

/** Reads the golden JSON files written by `slfm/golden.py`. */
class Golden(private val dir: File) {
    @Suppress("UNCHECKED_CAST")
    fun load(name: String): Map<String, Any?> {
        val d = Json.parse(File(dir, name).readText()) as Map<String, Any?>
        check(d["schema"] == "slfm-golden/1" || name.startsWith("sidecar")) { "$name: unknown golden schema ${d["schema"]}" }
        return d
    }

    fun text(name: String): String = File(dir, name).readText()

    fun postprocessFiles(): List<String> =
        dir.listFiles { f -> f.name.startsWith("postprocess_") && f.name.endsWith(".json") }!!.map { it.name }.sorted()
}

@Suppress("UNCHECKED_CAST")
fun Any?.asMap(): Map<String, Any?> = this as Map<String, Any?>

@Suppress("UNCHECKED_CAST")
fun Any?.asList(): List<Any?> = this as List<Any?>

fun Any?.rows(): FloatArray = asList().flatMap { r -> r.asList().map { (it as Double).toFloat() } }.toFloatArray()
