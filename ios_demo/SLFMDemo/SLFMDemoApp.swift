import SwiftUI

@main
struct SLFMDemoApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}
