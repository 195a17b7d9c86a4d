import Foundation

/// Anchor (prior box) generation, mirroring `slfm/anchors.py`.
///
/// Rows are (cx, cy, w, h) normalised to the input size, ordered by level, then row (y), then column (x),
/// then the level's min sizes. Values are computed in `Double` and rounded to `Float`, as NumPy does.
public enum Anchors {
    public static let defaultMinSizes: [[Int]] = [[16, 32], [64, 128], [256, 512]]
    public static let defaultSteps: [Int] = [8, 16, 32]

    public static func featureSizes(height: Int, width: Int, steps: [Int]) -> [(rows: Int, cols: Int)] {
        steps.map { s in
            (Int((Double(height) / Double(s)).rounded(.up)), Int((Double(width) / Double(s)).rounded(.up)))
        }
    }

    /// Anchors as a flat `[A * 4]` array; anchor `i` starts at `4 * i`.
    public static func generate(
        height: Int, width: Int, minSizes: [[Int]] = defaultMinSizes, steps: [Int] = defaultSteps
    ) -> [Float] {
        precondition(minSizes.count == steps.count, "min sizes and steps differ in length")
        var out: [Float] = []
        for (level, fm) in featureSizes(height: height, width: width, steps: steps).enumerated() {
            let step = Double(steps[level])
            out.reserveCapacity(out.count + fm.rows * fm.cols * minSizes[level].count * 4)
            for y in 0..<fm.rows {
                for x in 0..<fm.cols {
                    let cx = Float((Double(x) + 0.5) * step / Double(width))
                    let cy = Float((Double(y) + 0.5) * step / Double(height))
                    for s in minSizes[level] {
                        out += [cx, cy, Float(Double(s) / Double(width)), Float(Double(s) / Double(height))]
                    }
                }
            }
        }
        return out
    }
}
