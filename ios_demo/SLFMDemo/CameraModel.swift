import AVFoundation
import SLFMCore
import SwiftUI

/// Owns the capture session and the detector; publishes the latest frame's detections, FPS and status.
@MainActor
final class CameraModel: NSObject, ObservableObject {
    @Published var frame: FrameResult?
    @Published var status = "Loading model…"
    @Published var isFront = false
    private(set) var classes: [String] = []

    nonisolated let session = AVCaptureSession()
    private let queue = DispatchQueue(label: "slfm.camera")
    private let output = AVCaptureVideoDataOutput()
    private nonisolated(unsafe) var detector: Detector?
    private nonisolated(unsafe) var fps = 0.0
    private nonisolated(unsafe) var lastFrame: UInt64 = 0

    func start() async {
        do {
            let d = try Detector()
            detector = d
            classes = d.meta.classes
            status = "\(d.label) · \(d.meta.imageSize)px"
        } catch {
            status = "Model error: \(error)"
        }
        guard await AVCaptureDevice.requestAccess(for: .video) else {
            status = "Camera access denied (Settings > SLFM Demo > Camera)"
            return
        }
        configure(front: isFront)
        queue.async { [session] in session.startRunning() }
    }

    func flip() {
        isFront.toggle()
        configure(front: isFront)
    }

    private func configure(front: Bool) {
        session.beginConfiguration()
        defer { session.commitConfiguration() }
        session.sessionPreset = .hd1280x720
        session.inputs.forEach { session.removeInput($0) }
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video,
                                                   position: front ? .front : .back),
              let input = try? AVCaptureDeviceInput(device: device), session.canAddInput(input) else {
            status = "No camera available"
            return
        }
        session.addInput(input)
        if session.outputs.isEmpty, session.canAddOutput(output) {
            output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
            output.alwaysDiscardsLateVideoFrames = true
            output.setSampleBufferDelegate(self, queue: queue)
            session.addOutput(output)
        }
        if let connection = output.connection(with: .video) {
            // Upright portrait frames, so that detections map straight onto the portrait preview.
            if #available(iOS 17.0, *) {
                if connection.isVideoRotationAngleSupported(90) { connection.videoRotationAngle = 90 }
            } else {
                connection.videoOrientation = .portrait
            }
        }
    }
}

extension CameraModel: AVCaptureVideoDataOutputSampleBufferDelegate {
    nonisolated func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer,
                                   from connection: AVCaptureConnection) {
        guard let detector, let pixels = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        do {
            let result = try detector.detect(pixels)
            let now = DispatchTime.now().uptimeNanoseconds
            if lastFrame != 0 {
                let instant = 1e9 / Double(now - lastFrame)
                fps = fps == 0 ? instant : 0.9 * fps + 0.1 * instant
            }
            lastFrame = now
            let text = String(format: "%@ · %.1f FPS · %.0f ms · %d found", detector.label, fps, result.inferenceMs,
                              result.detections.count)
            Task { @MainActor in
                self.frame = result
                self.status = text
            }
        } catch {
            Task { @MainActor in self.status = "Inference error: \(error)" }
        }
    }
}
