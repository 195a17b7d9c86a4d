/// The geometry of `slfm.core.letterbox`: long side to `size`, aspect kept, padding right and bottom
/// with the mean colour. The platform resamples the pixels; this fixes where they go.
public struct Letterbox: Equatable, Sendable {
    public let size: Int
    public let scale: Double
    public let resizedWidth: Int
    public let resizedHeight: Int

    public init(height: Int, width: Int, size: Int) {
        precondition(height > 0 && width > 0, "empty image")
        self.size = size
        scale = Double(size) / Double(max(height, width))
        // Python's round(): halves to even.
        resizedWidth = min(size, Int((Double(width) * scale).rounded(.toNearestOrEven)))
        resizedHeight = min(size, Int((Double(height) * scale).rounded(.toNearestOrEven)))
    }

    /// A box from normalised input coordinates to image pixels, clipped (`slfm.predictor.to_image_pixels`).
    public func toImagePixels(_ d: Detection, imageHeight: Int, imageWidth: Int) -> Detection {
        let s = Float(size)
        let k = Float(scale)
        let w = Float(imageWidth)
        let h = Float(imageHeight)
        func clip(_ v: Float, _ hi: Float) -> Float { min(max(v, 0), hi) }
        var out = d
        out.x1 = clip(d.x1 * s / k, w)
        out.y1 = clip(d.y1 * s / k, h)
        out.x2 = clip(d.x2 * s / k, w)
        out.y2 = clip(d.y2 * s / k, h)
        return out
    }
}
