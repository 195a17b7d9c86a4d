// swift-tools-version:5.9
// Pure-Swift pre/post-processing for the SL-FMDet iOS demo: no UIKit, Vision or Core ML, so `swift test`
// runs on Linux as well as on macOS. It mirrors slfm/{anchors,codec,nms,postprocess,preprocess}.py and is
// tested against the golden vectors in tests/golden (made by `python -m slfm.golden`).
import PackageDescription

let package = Package(
    name: "SLFMCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "SLFMCore", targets: ["SLFMCore"])],
    targets: [
        .target(name: "SLFMCore"),
        .testTarget(name: "SLFMCoreTests", dependencies: ["SLFMCore"]),
    ]
)
