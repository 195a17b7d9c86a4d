/// Network input from a letterboxed `size` x `size` image in BGRA byte order (a `kCVPixelFormatType_32BGRA`
/// pixel buffer's rows), mirroring `slfm.core.normalize`: BGR channels, (pixel - mean) * pixelScale,
/// in the artifact's layout (NCHW or NHWC). Used when the Core ML model takes a tensor, not an image.
public struct InputEncoder: Sendable {
    public let meta: ModelMeta
    public var size: Int { meta.imageSize }

    public init(meta: ModelMeta) { self.meta = meta }

    /// - Parameters:
    ///   - bgra: pixel bytes, `bytesPerRow` apart, B G R A per pixel
    ///   - out: `3 * size * size` floats
    public func encode(bgra: UnsafeRawBufferPointer, bytesPerRow: Int, into out: UnsafeMutableBufferPointer<Float>) {
        let n = size * size
        precondition(out.count >= 3 * n && bgra.count >= bytesPerRow * (size - 1) + 4 * size, "buffer too small")
        let nchw = meta.layout == "NCHW"
        let mean = meta.meanBGR
        let k = meta.pixelScale
        for y in 0..<size {
            for x in 0..<size {
                let src = y * bytesPerRow + 4 * x
                let p = y * size + x
                for c in 0..<3 {
                    out[nchw ? c * n + p : 3 * p + c] = (Float(bgra[src + c]) - mean[c]) * k
                }
            }
        }
    }

    /// Convenience for tests and small inputs: tightly packed BGRA bytes -> floats.
    public func encode(bgra: [UInt8]) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * size * size)
        bgra.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { encode(bgra: src, bytesPerRow: 4 * size, into: $0) }
        }
        return out
    }
}
