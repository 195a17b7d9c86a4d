import Foundation

/// (scale, zero point) of an int8 tensor, from the sidecar's `input_quant` / `output_quant`.
public struct QuantParams: Equatable, Sendable {
    public let scale: Float
    public let zeroPoint: Int

    public init(scale: Float, zeroPoint: Int) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// TFLite's affine quantization: clamp(round(x / scale) + zeroPoint), halves away from zero
    /// (`slfm.core.quantize`).
    public func quantize(_ x: Float, qmin: Int = -128, qmax: Int = 127) -> Int {
        let y = x / scale
        let r = y.rounded(.toNearestOrAwayFromZero)  // std::round, exactly (floor(|y| + 0.5) rounds 0.49999997 up)
        return Int(min(max(r + Float(zeroPoint), Float(qmin)), Float(qmax)))
    }

    /// x = (q - zeroPoint) * scale.
    public func dequantize(_ q: Int) -> Float { Float(q - zeroPoint) * scale }

    public func dequantize(_ q: [Int8]) -> [Float] { q.map { dequantize(Int($0)) } }
}
