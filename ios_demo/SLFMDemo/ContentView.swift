import SwiftUI

/// Live camera preview with face/mask boxes, labels and FPS.
struct ContentView: View {
    @StateObject private var camera = CameraModel()

    var body: some View {
        ZStack(alignment: .topLeading) {
            CameraPreview(session: camera.session)
                .ignoresSafeArea()
            BoxesOverlay(frame: camera.frame, classes: camera.classes, mirrored: camera.isFront)
                .ignoresSafeArea()
            Text(camera.status)
                .font(.system(.footnote, design: .monospaced))
                .padding(6)
                .background(.black.opacity(0.6))
                .foregroundColor(.white)
                .padding()
        }
        .overlay(alignment: .bottomTrailing) {
            Button("Flip") { camera.flip() }
                .buttonStyle(.borderedProminent)
                .padding()
        }
        .task { await camera.start() }
    }
}
