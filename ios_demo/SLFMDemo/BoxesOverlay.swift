import SLFMCore
import SwiftUI

/// Draws detections (in frame pixels) over an aspect-fill preview: the frame scaled to cover, centred.
struct BoxesOverlay: View {
    let frame: FrameResult?
    let classes: [String]
    let mirrored: Bool

    var body: some View {
        Canvas { context, size in
            guard let frame else { return }
            let k = max(size.width / CGFloat(frame.width), size.height / CGFloat(frame.height))
            let dx = (size.width - CGFloat(frame.width) * k) / 2
            let dy = (size.height - CGFloat(frame.height) * k) / 2
            for d in frame.detections {
                var x1 = CGFloat(d.x1) * k + dx
                var x2 = CGFloat(d.x2) * k + dx
                if mirrored { (x1, x2) = (size.width - x2, size.width - x1) }
                let rect = CGRect(x: x1, y: CGFloat(d.y1) * k + dy, width: x2 - x1, height: CGFloat(d.y2 - d.y1) * k)
                let name = d.label < classes.count ? classes[d.label] : "#\(d.label)"
                let color: Color = name == "mask" ? .green : .red
                context.stroke(Path(rect), with: .color(color), lineWidth: 3)
                let shown = name == "face" ? "no mask" : name  // people read "no mask" for the data's "face" class
                let caption = Text("\(shown) \(String(format: "%.2f", d.score))").font(.caption).bold().foregroundColor(.white)
                let resolved = context.resolve(caption)
                let textSize = resolved.measure(in: size)
                let tag = CGRect(x: rect.minX, y: rect.minY - textSize.height - 4, width: textSize.width + 8, height: textSize.height + 4)
                context.fill(Path(tag), with: .color(color))
                context.draw(resolved, at: CGPoint(x: tag.minX + 4, y: tag.minY + 2), anchor: .topLeading)
            }
        }
        .allowsHitTesting(false)
    }
}
