import CoreImage
import CoreML
import CoreVideo
import Foundation
import SLFMCore
import Vision

/// Detections of one frame in the (upright) frame's pixels, and the time the model took.
struct FrameResult {
    let detections: [Detection]
    let width: Int
    let height: Int
    let inferenceMs: Double
}

enum DetectorError: Error, CustomStringConvertible {
    case missing(String), unsupported(String)
    var description: String {
        switch self {
        case .missing(let m), .unsupported(let m): return m
        }
    }
}

/// Letterbox (Core Image, bilinear; geometry from SLFMCore's `Letterbox`) -> Core ML (through Vision when the
/// model takes an image, directly when it takes a tensor) -> SLFMCore's `postprocess` -> boxes in frame pixels.
/// A model made with `slfm convert --coreml-nms` (outputs `confidence`, `coordinates`: decode and per-class NMS
/// inside) gives Vision's `VNRecognizedObjectObservation`s; only the cross-class step then runs here.
final class Detector {
    let meta: ModelMeta
    let label: String
    private let model: MLModel
    private let visionModel: VNCoreMLModel?
    private let nmsPipeline: Bool
    private let inputName: String
    private let anchors: [Float]
    private let encoder: InputEncoder
    private let ciContext = CIContext(options: [.cacheIntermediates: false])
    private var letterboxed: CVPixelBuffer?

    /// Loads `Model.mlmodelc` (Xcode compiles the `Model.mlpackage` that `slfm deploy ios` copied) and its sidecar.
    init(bundle: Bundle = .main) throws {
        guard let url = bundle.url(forResource: "Model", withExtension: "mlmodelc") else {
            throw DetectorError.missing("no Model.mlpackage in the app: run `slfm deploy ios <model>.mlpackage` and rebuild")
        }
        guard let sidecar = bundle.url(forResource: "Model.mlpackage", withExtension: "json") else {
            throw DetectorError.missing("Model.mlpackage.json (the model's sidecar) is missing from the app")
        }
        meta = try ModelMeta.parse(try Data(contentsOf: sidecar))
        let config = MLModelConfiguration()
        config.computeUnits = .all
        model = try MLModel(contentsOf: url, configuration: config)
        guard let input = model.modelDescription.inputDescriptionsByName.first else {
            throw DetectorError.unsupported("the model has no input")
        }
        inputName = input.key
        visionModel = input.value.type == .image ? try VNCoreMLModel(for: model) : nil
        let outputs = model.modelDescription.outputDescriptionsByName
        nmsPipeline = visionModel != nil && outputs["confidence"] != nil && outputs["coordinates"] != nil
        anchors = try meta.anchors()
        encoder = InputEncoder(meta: meta)
        label = "Core ML \(visionModel == nil ? "tensor" : nmsPipeline ? "Vision NMS" : "Vision") \(meta.precision)"
    }

    func detect(_ frame: CVPixelBuffer) throws -> FrameResult {
        let (w, h) = (CVPixelBufferGetWidth(frame), CVPixelBufferGetHeight(frame))
        let lb = Letterbox(height: h, width: w, size: meta.imageSize)
        let input = try letterbox(frame, lb)
        let t0 = DispatchTime.now().uptimeNanoseconds
        if nmsPipeline, let vm = visionModel {
            let dets = try runVisionNMS(vm, input)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            return FrameResult(detections: dets.map { lb.toImagePixels($0, imageHeight: h, imageWidth: w) },
                               width: w, height: h, inferenceMs: ms)
        }
        let (loc, scores) = try visionModel.map { try runVision($0, input) } ?? runTensor(input)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        let dets = try postprocess(loc: loc, scores: scores, numClasses: meta.numClasses, priors: anchors,
                                   variances: meta.variances, config: meta.postprocess)
        return FrameResult(detections: dets.map { lb.toImagePixels($0, imageHeight: h, imageWidth: w) },
                           width: w, height: h, inferenceMs: ms)
    }

    /// The frame scaled into the top-left of a size x size BGRA buffer filled with the mean colour.
    private func letterbox(_ frame: CVPixelBuffer, _ lb: Letterbox) throws -> CVPixelBuffer {
        let s = meta.imageSize
        if letterboxed == nil {
            let attrs = [kCVPixelBufferIOSurfacePropertiesKey: [:]] as CFDictionary
            CVPixelBufferCreate(nil, s, s, kCVPixelFormatType_32BGRA, attrs, &letterboxed)
        }
        guard let out = letterboxed else { throw DetectorError.unsupported("cannot allocate the input buffer") }
        let image = CIImage(cvPixelBuffer: frame)
        let sx = CGFloat(lb.resizedWidth) / image.extent.width
        let sy = CGFloat(lb.resizedHeight) / image.extent.height
        // Core Image's origin is bottom-left: move the scaled frame up so that it touches the top edge.
        let placed = image.transformed(by: CGAffineTransform(scaleX: sx, y: sy))
            .transformed(by: CGAffineTransform(translationX: 0, y: CGFloat(s - lb.resizedHeight)))
        let m = meta.meanBGR.map { CGFloat(($0).rounded()) / 255 }
        let pad = CIImage(color: CIColor(red: m[2], green: m[1], blue: m[0]))
            .cropped(to: CGRect(x: 0, y: 0, width: s, height: s))
        ciContext.render(placed.composited(over: pad), to: out, bounds: CGRect(x: 0, y: 0, width: s, height: s),
                         colorSpace: nil)
        return out
    }

    private func runVision(_ vm: VNCoreMLModel, _ input: CVPixelBuffer) throws -> ([Float], [Float]) {
        let request = VNCoreMLRequest(model: vm)
        request.imageCropAndScaleOption = .scaleFill  // already size x size: no further scaling
        try VNImageRequestHandler(cvPixelBuffer: input, options: [:]).perform([request])
        let arrays = (request.results as? [VNCoreMLFeatureValueObservation] ?? []).compactMap { obs in
            obs.featureValue.multiArrayValue.map { (obs.featureName, $0) }
        }
        return try split(arrays)
    }

    /// The NMS pipeline's observations as detections in normalised input coordinates (top-left origin; Vision's
    /// boxes are bottom-left), labelled by the sidecar's class index, then SLFMCore's cross-class suppression.
    private func runVisionNMS(_ vm: VNCoreMLModel, _ input: CVPixelBuffer) throws -> [Detection] {
        let request = VNCoreMLRequest(model: vm)
        request.imageCropAndScaleOption = .scaleFill  // already size x size: no further scaling
        try VNImageRequestHandler(cvPixelBuffer: input, options: [:]).perform([request])
        let dets: [Detection] = (request.results as? [VNRecognizedObjectObservation] ?? []).compactMap { obs in
            guard let top = obs.labels.first, let label = meta.classes.firstIndex(of: top.identifier) else { return nil }
            let b = obs.boundingBox
            return Detection(x1: Float(b.minX), y1: Float(1 - b.maxY), x2: Float(b.maxX), y2: Float(1 - b.minY),
                             score: top.confidence, label: label)
        }.sorted { $0.score > $1.score }
        let cfg = meta.postprocess
        guard cfg.crossClassIoU > 0 else { return Array(dets.prefix(cfg.maxDetections)) }
        let keep = NMS.crossClassSuppress(dets.flatMap { [$0.x1, $0.y1, $0.x2, $0.y2] }, dets.map(\.score),
                                          labels: dets.map(\.label), iouThreshold: cfg.crossClassIoU)
        return keep.prefix(cfg.maxDetections).map { dets[$0] }
    }

    private func runTensor(_ input: CVPixelBuffer) throws -> ([Float], [Float]) {
        let s = meta.imageSize
        let shape: [NSNumber] = meta.layout == "NCHW" ? [1, 3, s, s] as [NSNumber] : [1, s, s, 3] as [NSNumber]
        let x = try MLMultiArray(shape: shape, dataType: .float32)
        CVPixelBufferLockBaseAddress(input, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(input, .readOnly) }
        let bytes = UnsafeRawBufferPointer(start: CVPixelBufferGetBaseAddress(input),
                                           count: CVPixelBufferGetDataSize(input))
        let dst = UnsafeMutableBufferPointer(start: x.dataPointer.bindMemory(to: Float.self, capacity: x.count),
                                             count: x.count)
        encoder.encode(bgra: bytes, bytesPerRow: CVPixelBufferGetBytesPerRow(input), into: dst)
        let out = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: [inputName: x]))
        let arrays = out.featureNames.compactMap { name in out.featureValue(for: name)?.multiArrayValue.map { (name, $0) } }
        return try split(arrays)
    }

    /// (loc, scores) by the sidecar's output names when the model has them (Core ML outputs are named and
    /// unordered, so output_indices do not apply), else by `OutputOrder`'s shape rule (as every port).
    private func split(_ arrays: [(String, MLMultiArray)]) throws -> ([Float], [Float]) {
        let byName = Dictionary(arrays, uniquingKeysWith: { a, _ in a })
        if let loc = byName["loc"], let scores = byName["scores"] { return (floats(loc), floats(scores)) }
        let dims = arrays.map { $0.1.shape.last?.intValue ?? 0 }
        let order: (loc: Int, scores: Int)
        do { order = try OutputOrder.of(lastDims: dims, numClasses: meta.numClasses) } catch {
            throw DetectorError.unsupported("outputs \(arrays.map { $0.0 }): \(error)")
        }
        return (floats(arrays[order.loc].1), floats(arrays[order.scores].1))
    }

    private func floats(_ a: MLMultiArray) -> [Float] {
        switch a.dataType {
        case .float32: return a.withUnsafeBufferPointer(ofType: Float.self) { Array($0) }
        case .float16: return a.withUnsafeBufferPointer(ofType: Float16.self) { $0.map(Float.init) }
        default: return (0..<a.count).map { a[$0].floatValue }
        }
    }
}
