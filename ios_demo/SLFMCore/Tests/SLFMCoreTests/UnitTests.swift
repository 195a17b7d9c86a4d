import XCTest

@testable import SLFMCore

/// Hand-made cases for what the golden vectors do not pin down: ties, empties, bad input, the encoder.
final class UnitTests: XCTestCase {
    let unit: [Float] = [0, 0, 1, 1, 0, 0, 1, 1]

    func testTiesKeepLowerIndexFirst() {
        XCTAssertEqual(NMS.argsortDescending([0.5, 0.9, 0.5, 0.9]), [1, 3, 0, 2])
        XCTAssertEqual(NMS.nms(unit, [0.7, 0.7], iouThreshold: 0.3), [0])
    }

    func testLabelsNeverSuppressEachOtherInBatchedNMS() {
        XCTAssertEqual(NMS.batchedNMS(unit, [0.6, 0.8], labels: [1, 2], iouThreshold: 0.3), [1, 0])
        XCTAssertEqual(NMS.crossClassSuppress(unit, [0.6, 0.8], labels: [1, 2], iouThreshold: 0.5), [1])
    }

    func testEmptyInputs() throws {
        XCTAssertEqual(NMS.batchedNMS([], [], labels: [], iouThreshold: 0.3), [])
        let pri = Anchors.generate(height: 32, width: 32)
        let a = pri.count / 4
        let out = try postprocess(loc: .init(repeating: 0, count: 4 * a), scores: .init(repeating: 0, count: 3 * a),
                                  numClasses: 3, priors: pri)
        XCTAssertEqual(out, [])
    }

    func testSizeMismatchThrows() {
        XCTAssertThrowsError(try postprocess(loc: [0, 0, 0, 0], scores: [1, 0, 0], numClasses: 3,
                                             priors: Anchors.generate(height: 32, width: 32)))
    }

    func testAnchorCountAt640() {
        XCTAssertEqual(Anchors.generate(height: 640, width: 640).count, 16800 * 4)
    }

    func testOtherSchemaIsRefused() {
        XCTAssertThrowsError(try ModelMeta.parse(Data(#"{"schema": "other/9"}"#.utf8))) { error in
            XCTAssertTrue("\(error)".contains("slfm-artifact/1"))
        }
    }

    func testInputEncoderBGRMinusMean() throws {
        let json = #"""
            {"schema": "slfm-artifact/1", "format": "coreml", "precision": "fp16", "image_size": 2, "layout": "NCHW",
             "input_dtype": "float32", "input_quant": null, "output_quant": {}, "color": "BGR",
             "mean_bgr": [104.0, 117.0, 123.0], "pixel_scale": 1.0, "outputs": ["loc", "scores"],
             "classes": ["background", "face", "mask"], "min_sizes": [[16, 32], [64, 128], [256, 512]],
             "steps": [8, 16, 32], "variances": [0.1, 0.2], "num_anchors": 0, "score_threshold": 0.5,
             "nms_iou": 0.3, "cross_class_iou": 0.5}
            """#
        let meta = try ModelMeta.parse(Data(json.utf8))
        let px: [UInt8] = [50, 100, 200, 255] + [UInt8](repeating: 0, count: 12)  // B G R A, then 3 black pixels
        let out = InputEncoder(meta: meta).encode(bgra: px)
        XCTAssertEqual([out[0], out[4], out[8]], [50 - 104, 100 - 117, 200 - 123] as [Float])
        XCTAssertEqual(out[1], -104)
    }
}
