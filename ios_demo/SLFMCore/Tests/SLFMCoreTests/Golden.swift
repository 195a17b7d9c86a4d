import Foundation
import XCTest

/// Reads the golden JSON files written by `slfm/golden.py` (folder: $SLFM_GOLDEN_DIR, else the repository's
/// tests/golden, found from this file's path).
enum Golden {
    static var dir: URL {
        if let env = ProcessInfo.processInfo.environment["SLFM_GOLDEN_DIR"] { return URL(fileURLWithPath: env) }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 { url.deleteLastPathComponent() }  // Tests/SLFMCoreTests/x.swift -> repository root
        return url.appendingPathComponent("tests/golden")
    }

    static func data(_ name: String) throws -> Data {
        let url = dir.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("golden file \(url.path) not found (python -m slfm.golden --out tests/golden)")
        }
        return try Data(contentsOf: url)
    }

    static func load(_ name: String) throws -> [String: JSON] {
        let obj = try JSONDecoder().decode([String: JSON].self, from: try data(name))
        XCTAssertEqual(obj["schema"], .string("slfm-golden/1"), name)
        return obj
    }

    static func postprocessFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasPrefix("postprocess_") && $0.hasSuffix(".json") }.sorted()
    }
}

/// A parsed JSON value. JSONDecoder, not JSONSerialization: on Linux the latter misreads some doubles by an ulp.
/// Numbers are read as Double, then rounded to Float, as Python reads the same text (json, then NumPy).
enum JSON: Decodable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSON]), object([String: JSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Double.self) { self = .number(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSON].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSON].self)) }
    }

    var double: Double { if case .number(let v) = self { return v }; fatalError("not a number: \(self)") }
    var array: [JSON] { if case .array(let v) = self { return v }; fatalError("not an array: \(self)") }
    var object: [String: JSON] { if case .object(let v) = self { return v }; fatalError("not an object: \(self)") }
}

extension Dictionary where Key == String, Value == JSON {
    func dict(_ k: String) -> [String: JSON] { self[k]!.object }
    func list(_ k: String) -> [JSON] { self[k]!.array }
    func double(_ k: String) -> Double { self[k]!.double }
    func float(_ k: String) -> Float { Float(double(k)) }
    func int(_ k: String) -> Int { Int(double(k)) }
    func floats(_ k: String) -> [Float] { list(k).map { Float($0.double) } }
    func ints(_ k: String) -> [Int] { list(k).map { Int($0.double) } }
    /// A list of rows of numbers, flattened.
    func rows(_ k: String) -> [Float] { list(k).flatMap { $0.array.map { Float($0.double) } } }
    func cases(_ k: String = "cases") -> [[String: JSON]] { list(k).map(\.object) }
}

func assertClose(_ want: [Float], _ got: [Float], tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(want.count, got.count, "\(what): length", file: file, line: line)
    for (i, (w, g)) in zip(want, got).enumerated() where abs(w - g) > tol * max(1, abs(w)) {
        XCTFail("\(what)[\(i)]: want \(w), got \(g)", file: file, line: line)
        return
    }
}
