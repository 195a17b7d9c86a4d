import Foundation

/// The artifact contract (`slfm/artifact.py`, schema `slfm-artifact/1`), read from the `<model>.json` sidecar
/// shipped beside the model: input size, layout and quantization, normalisation, anchors and thresholds.
public struct ModelMeta: Equatable, Sendable {
    public static let schema = "slfm-artifact/1"

    public let format: String
    public let precision: String
    public let imageSize: Int
    public let layout: String
    public let inputDtype: String
    public let inputQuant: QuantParams?
    public let outputQuant: [String: QuantParams]
    public let meanBGR: [Float]
    public let pixelScale: Float
    public let outputs: [String]
    /// Each of `outputs`' position among the graph's outputs; nil in sidecars older than the field.
    public let outputIndices: [Int]?
    public let classes: [String]
    public let minSizes: [[Int]]
    public let steps: [Int]
    public let variances: [Float]
    public let numAnchors: Int
    public let postprocess: PostprocessConfig

    public var numClasses: Int { classes.count }

    /// The anchors for `imageSize`, checked against the metadata's count.
    public func anchors() throws -> [Float] {
        let a = Anchors.generate(height: imageSize, width: imageSize, minSizes: minSizes, steps: steps)
        guard numAnchors == 0 || a.count / 4 == numAnchors else {
            throw MetaError.invalid("metadata says \(numAnchors) anchors but \(a.count / 4) were generated")
        }
        return a
    }

    public enum MetaError: Error, Equatable, CustomStringConvertible {
        case invalid(String)
        public var description: String {
            switch self { case .invalid(let m): return "model metadata: \(m)" }
        }
    }

    private struct Raw: Decodable {
        let schema: String?
        let format, precision, layout, inputDtype, color: String
        let imageSize, numAnchors: Int
        let inputQuant: [Double]?
        let outputQuant: [String: [Double]]
        let meanBgr: [Double]
        let pixelScale: Double
        let outputs, classes: [String]
        let outputIndices: [Int]?
        let minSizes: [[Int]]
        let steps: [Int]
        let variances: [Double]
        let scoreThreshold, nmsIou, crossClassIou: Double
    }

    private static func quant(_ v: [Double]) throws -> QuantParams {
        guard v.count == 2 else { throw MetaError.invalid("quantization parameters must be [scale, zero_point]") }
        return QuantParams(scale: Float(v[0]), zeroPoint: Int(v[1]))
    }

    /// Parses a sidecar; the error names what is wrong.
    public static func parse(_ data: Data) throws -> ModelMeta {
        struct SchemaOnly: Decodable { let schema: String? }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let found = (try? decoder.decode(SchemaOnly.self, from: data))?.schema
        guard found == schema else {
            throw MetaError.invalid("schema '\(found ?? "none")' is not '\(schema)'")
        }
        let r: Raw
        do { r = try decoder.decode(Raw.self, from: data) } catch {
            throw MetaError.invalid("unreadable: \(error)")
        }
        guard r.layout == "NCHW" || r.layout == "NHWC" else { throw MetaError.invalid("unknown layout '\(r.layout)'") }
        guard r.color == "BGR" else { throw MetaError.invalid("only BGR models are supported, got '\(r.color)'") }
        return ModelMeta(
            format: r.format, precision: r.precision, imageSize: r.imageSize, layout: r.layout,
            inputDtype: r.inputDtype, inputQuant: try r.inputQuant.map(quant),
            outputQuant: try r.outputQuant.mapValues(quant), meanBGR: r.meanBgr.map(Float.init),
            pixelScale: Float(r.pixelScale), outputs: r.outputs, outputIndices: r.outputIndices, classes: r.classes, minSizes: r.minSizes,
            steps: r.steps, variances: r.variances.map(Float.init), numAnchors: r.numAnchors,
            postprocess: PostprocessConfig(
                scoreThreshold: Float(r.scoreThreshold), nmsIoU: Float(r.nmsIou),
                crossClassIoU: Float(r.crossClassIou)))
    }
}
