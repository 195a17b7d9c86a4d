import Foundation

/// SSD box decoding (variances 0.1 / 0.2), mirroring `slfm/codec.py` in `Float` with NumPy's operation order.
public enum Codec {
    public static let defaultVariances: [Float] = [0.1, 0.2]

    /// Decodes offsets `loc[l..<l+4]` against `priors[p..<p+4]` into (x1, y1, x2, y2), normalised.
    @inline(__always)
    public static func decode(
        _ loc: [Float], at l: Int, priors: [Float], at p: Int, variances: [Float] = defaultVariances
    ) -> (Float, Float, Float, Float) {
        let (pcx, pcy, pw, ph) = (priors[p], priors[p + 1], priors[p + 2], priors[p + 3])
        let cx = pcx + loc[l] * variances[0] * pw
        let cy = pcy + loc[l + 1] * variances[0] * ph
        let w = pw * Foundation.exp(loc[l + 2] * variances[1])
        let h = ph * Foundation.exp(loc[l + 3] * variances[1])
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    }

    /// Decodes N rows: `loc` `[N * 4]` against `priors` `[N * 4]` into boxes `[N * 4]`.
    public static func decode(_ loc: [Float], priors: [Float], variances: [Float] = defaultVariances) -> [Float] {
        precondition(loc.count == priors.count && loc.count % 4 == 0, "loc and priors differ in size")
        var out = [Float](repeating: 0, count: loc.count)
        for i in stride(from: 0, to: loc.count, by: 4) {
            (out[i], out[i + 1], out[i + 2], out[i + 3]) = decode(loc, at: i, priors: priors, at: i, variances: variances)
        }
        return out
    }
}
