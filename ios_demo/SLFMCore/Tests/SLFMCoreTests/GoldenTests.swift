import Foundation
import XCTest

@testable import SLFMCore

/// The port against the Python definitions, through the golden vectors.
final class GoldenTests: XCTestCase {
    func testAnchors() throws {
        for c in try Golden.load("anchors.json").cases() {
            let a = Anchors.generate(height: c.int("height"), width: c.int("width"))
            XCTAssertEqual(a.count / 4, c.int("count"))
            let rows = c.rows("rows")
            for (k, i) in c.ints("indices").enumerated() {
                XCTAssertEqual(Array(a[(4 * i)..<(4 * i + 4)]), Array(rows[(4 * k)..<(4 * k + 4)]), "anchor \(i)")
            }
        }
    }

    func testLetterbox() throws {
        for c in try Golden.load("letterbox.json").cases() {
            let lb = Letterbox(height: c.int("height"), width: c.int("width"), size: c.int("size"))
            XCTAssertEqual(lb.scale, c.double("scale"))
            XCTAssertEqual(lb.resizedWidth, c.int("resized_width"), "\(c)")
            XCTAssertEqual(lb.resizedHeight, c.int("resized_height"), "\(c)")
        }
    }

    func testDecode() throws {
        for c in try Golden.load("decode.json").cases() {
            let boxes = Codec.decode(c.rows("loc"), priors: c.rows("priors"), variances: c.floats("variances"))
            assertClose(c.rows("boxes"), boxes, tol: 1e-6, "decode \(c["image"]!)")
        }
    }

    func testNMS() throws {
        for c in try Golden.load("nms.json").cases() {
            let (boxes, scores, labels, thr) = (c.rows("boxes"), c.floats("scores"), c.ints("labels"), c.float("iou_threshold"))
            let want = c.dict("expected")
            let what = "\(c["image"]!) @ \(thr)"
            XCTAssertEqual(NMS.nms(boxes, scores, iouThreshold: thr), want.ints("nms"), what)
            XCTAssertEqual(NMS.batchedNMS(boxes, scores, labels: labels, iouThreshold: thr), want.ints("batched_nms"), what)
            XCTAssertEqual(NMS.crossClassSuppress(boxes, scores, labels: labels, iouThreshold: thr), want.ints("cross_class"), what)
            let n = scores.count
            let ious = (0..<(3 * n)).map { NMS.iou(boxes, $0 / n, boxes, $0 % n) }
            assertClose(want.rows("iou_first_rows"), ious, tol: 1e-6, "iou \(what)")
        }
    }

    func testQuant() throws {
        for c in try Golden.load("quant.json").cases() {
            let q = QuantParams(scale: c.float("scale"), zeroPoint: c.int("zero_point"))
            let want = c.dict("expected")
            XCTAssertEqual(c.floats("values").map { q.quantize($0) }, want.ints("quantized"), "\(c["name"]!)")
            XCTAssertEqual(q.dequantize(c.ints("q").map { Int8($0) }), want.floats("dequantized"), "\(c["name"]!)")
        }
    }

    func testSidecar() throws {
        let m = try ModelMeta.parse(try Golden.data("sidecar_int8.tflite.json"))
        XCTAssertEqual(m.format, "tflite")
        XCTAssertEqual(m.layout, "NHWC")
        XCTAssertEqual(m.inputQuant, QuantParams(scale: 1, zeroPoint: -11))
        XCTAssertEqual(m.outputQuant["scores"], QuantParams(scale: 0.00390625, zeroPoint: -128))
        XCTAssertEqual(try m.anchors().count / 4, m.numAnchors)
        XCTAssertEqual(m.classes, ["background", "face", "mask"])
        XCTAssertEqual(m.postprocess, PostprocessConfig())
        XCTAssertEqual(m.outputIndices, [1, 0])
        let order = try OutputOrder.of(meta: m, lastDims: [3, 4])
        XCTAssertEqual([order.loc, order.scores], [1, 0])
    }

    /// Pixels -> model input under sidecars with pixel_scale != 1, int8 ties and both layouts.
    func testEncode() throws {
        let raw = try JSONSerialization.jsonObject(with: try Golden.data("encode.json")) as! [String: Any]
        let sidecars = (raw["cases"] as! [[String: Any]]).map { $0["sidecar"]! }
        for (c, sidecar) in zip(try Golden.load("encode.json").cases(), sidecars) {
            let meta = try ModelMeta.parse(try JSONSerialization.data(withJSONObject: sidecar))
            let bgr = c.ints("pixels")
            var bgra = [UInt8](repeating: 255, count: bgr.count / 3 * 4)
            for p in 0..<(bgr.count / 3) {
                for k in 0..<3 { bgra[4 * p + k] = UInt8(bgr[3 * p + k]) }
            }
            let x = InputEncoder(meta: meta).encode(bgra: bgra)
            if meta.inputDtype == "int8" {
                let q = try XCTUnwrap(meta.inputQuant)
                XCTAssertEqual(x.map { q.quantize($0) }, c.ints("expected"), "\(c["name"]!)")
            } else {
                XCTAssertEqual(x, c.floats("expected"), "\(c["name"]!)")
            }
        }
    }

    func testOutputs() throws {
        for c in try Golden.load("outputs.json").cases() {
            let indices: [Int]? = c["indices"] == .null ? nil : c.ints("indices")
            let got = try? OutputOrder.of(lastDims: c.ints("last_dims"), numClasses: c.int("num_classes"), indices: indices)
            let want: [Int]? = c["expected"] == .null ? nil : c.ints("expected")
            XCTAssertEqual(got.map { [$0.loc, $0.scores] }, want, "\(c)")
        }
    }

    func testPostprocess() throws {
        let files = try Golden.postprocessFiles()
        XCTAssertGreaterThanOrEqual(files.count, 2)
        for name in files {
            let c = try Golden.load(name)
            let size = c.int("input_size")
            let minSizes = c.list("min_sizes").map { $0.array.map { Int($0.double) } }
            let all = Anchors.generate(height: size, width: size, minSizes: minSizes, steps: c.ints("steps"))
            let priors = c.ints("anchor_indices").flatMap { all[(4 * $0)..<(4 * $0 + 4)] }
            let (h, w) = (c.int("image_height"), c.int("image_width"))
            let lb = Letterbox(height: h, width: w, size: size)
            XCTAssertEqual(lb.scale, c.double("scale"))
            for (key, value) in c.dict("configs") {
                let k = value.object
                let cfg = PostprocessConfig(
                    scoreThreshold: k.float("score_threshold"), nmsIoU: k.float("nms_iou"),
                    crossClassIoU: k.float("cross_class_iou"), preNMSTopK: k.int("pre_nms_top_k"),
                    maxDetections: k.int("max_detections"))
                let dets = try postprocess(
                    loc: c.rows("loc"), scores: c.rows("scores"), numClasses: 3, priors: priors,
                    variances: c.floats("variances"), config: cfg)
                let want = c.dict("expected").dict(key)
                let what = "\(name)/\(key)"
                XCTAssertEqual(dets.map(\.label), want.ints("labels"), what)
                XCTAssertEqual(dets.map(\.score), want.floats("scores"), what)
                assertClose(want.rows("boxes"), dets.flatMap { [$0.x1, $0.y1, $0.x2, $0.y2] }, tol: 1e-5, "\(what) boxes")
                let px = dets.map { lb.toImagePixels($0, imageHeight: h, imageWidth: w) }
                assertClose(want.rows("pixel_boxes"), px.flatMap { [$0.x1, $0.y1, $0.x2, $0.y2] }, tol: 1e-5, "\(what) pixels")
            }
        }
    }
}
