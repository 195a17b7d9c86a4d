package org.slfm.core

/**
 * A small strict JSON reader (RFC 8259) for the model's metadata sidecar, so this module needs no library.
 * Objects become `Map<String, Any?>`, arrays `List<Any?>`, numbers `Double`, plus `String`, `Boolean`, `null`.
 */
class Json private constructor(private val s: String) {
    private var i = 0

    companion object {
        fun parse(text: String): Any? {
            val p = Json(text)
            val v = p.value()
            p.ws()
            if (p.i != text.length) p.fail("trailing characters")
            return v
        }
    }

    private fun fail(msg: String): Nothing = throw IllegalArgumentException("invalid JSON at offset $i: $msg")

    private fun ws() {
        while (i < s.length && s[i] in " \t\r\n") i++
    }

    private fun value(): Any? {
        ws()
        if (i >= s.length) fail("unexpected end")
        return when (val c = s[i]) {
            '{' -> obj()
            '[' -> arr()
            '"' -> str()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> if (c == '-' || c.isDigit()) num() else fail("unexpected '$c'")
        }
    }

    private fun literal(word: String, v: Any?): Any? {
        if (!s.startsWith(word, i)) fail("expected $word")
        i += word.length
        return v
    }

    private fun obj(): Map<String, Any?> {
        val out = LinkedHashMap<String, Any?>()
        i++
        ws()
        if (i < s.length && s[i] == '}') return out.also { i++ }
        while (true) {
            ws()
            if (i >= s.length || s[i] != '"') fail("expected a key")
            val k = str()
            ws()
            if (i >= s.length || s[i] != ':') fail("expected ':'")
            i++
            out[k] = value()
            ws()
            when (s.getOrNull(i++)) {
                ',' -> continue
                '}' -> return out
                else -> fail("expected ',' or '}'")
            }
        }
    }

    private fun arr(): List<Any?> {
        val out = ArrayList<Any?>()
        i++
        ws()
        if (i < s.length && s[i] == ']') return out.also { i++ }
        while (true) {
            out.add(value())
            ws()
            when (s.getOrNull(i++)) {
                ',' -> continue
                ']' -> return out
                else -> fail("expected ',' or ']'")
            }
        }
    }

    private fun str(): String {
        val sb = StringBuilder()
        i++
        while (true) {
            if (i >= s.length) fail("unterminated string")
            when (val c = s[i++]) {
                '"' -> return sb.toString()
                '\\' -> {
                    when (val e = s.getOrNull(i++)) {
                        '"', '\\', '/' -> sb.append(e)
                        'b' -> sb.append('\b')
                        'f' -> sb.append('\u000C')
                        'n' -> sb.append('\n')
                        'r' -> sb.append('\r')
                        't' -> sb.append('\t')
                        'u' -> {
                            if (i + 4 > s.length) fail("bad \\u escape")
                            sb.append(s.substring(i, i + 4).toInt(16).toChar())
                            i += 4
                        }
                        else -> fail("bad escape")
                    }
                }
                else -> sb.append(c)
            }
        }
    }

    private fun num(): Double {
        val start = i
        while (i < s.length && (s[i].isDigit() || s[i] in "+-.eE")) i++
        return s.substring(start, i).toDoubleOrNull() ?: fail("bad number '${s.substring(start, i)}'")
    }
}

/** Typed access to parsed JSON, with errors that name the missing or mistyped key. */
@Suppress("UNCHECKED_CAST")
internal fun Map<String, Any?>.obj(key: String): Map<String, Any?> =
    this[key] as? Map<String, Any?> ?: throw IllegalArgumentException("'$key' is not an object")

internal fun Map<String, Any?>.list(key: String): List<Any?> =
    this[key] as? List<Any?> ?: throw IllegalArgumentException("'$key' is not a list")

internal fun Map<String, Any?>.num(key: String): Double =
    this[key] as? Double ?: throw IllegalArgumentException("'$key' is not a number")

internal fun Map<String, Any?>.str(key: String): String =
    this[key] as? String ?: throw IllegalArgumentException("'$key' is not a string")

internal fun List<Any?>.floats(): FloatArray = FloatArray(size) { (this[it] as Double).toFloat() }

internal fun List<Any?>.ints(): IntArray = IntArray(size) { (this[it] as Double).toInt() }
