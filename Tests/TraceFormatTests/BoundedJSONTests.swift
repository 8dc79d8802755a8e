import FoundationEssentials
import Testing
@testable import TraceFormat

/// The nesting guard in front of Foundation's JSONDecoder (which traps on 513 `[` at the end of its input).
struct BoundedJSONTests {
    @Test func nestingBeyondTheLimitIsRefusedWithItsPlace() {
        let deep = Array(repeating: UInt8(ascii: "["), count: 513)
        let problem = deep.withUnsafeBytes { BoundedJSON.nestingProblem($0) }
        #expect(problem == "line 1, column 129: JSON nested deeper than 128 levels")
        let lines = Array("{\n \"a\": [[\n[[".utf8)
        #expect(
            lines.withUnsafeBytes { BoundedJSON.nestingProblem($0, limit: 4) }
                == "line 3, column 2: JSON nested deeper than 4 levels")
    }

    @Test func bracketsInsideStringsAndAtTheLimitAreAccepted() throws {
        let atLimit = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(
            atLimit.utf8.withContiguousStorageIfAvailable { BoundedJSON.nestingProblem(UnsafeRawBufferPointer($0)) }
                == .some(nil))
        let quoted = #"{"s": "[[[[[[ \" {{{{ \\", "n": [1]}"#
        #expect(Array(quoted.utf8).withUnsafeBytes { BoundedJSON.nestingProblem($0, limit: 2) } == nil)
        struct S: Decodable { var s: String; var n: [Int] }
        let v = try BoundedJSON.decode(S.self, from: Data(quoted.utf8))
        #expect(v.s == #"[[[[[[ " {{{{ \"#)
        #expect(v.n == [1])
    }

    @Test func decodeThrowsInsteadOfTrapping() {
        let data = Data(repeating: UInt8(ascii: "["), count: 513)
        #expect(throws: BoundedJSON.NestingError.self) { try BoundedJSON.decode([Int].self, from: data) }
        do {
            _ = try BoundedJSON.decode([Int].self, from: data)
        } catch {
            #expect(
                DecodingErrorText.describe(error, data: Array(data))
                    == "line 1, column 129: JSON nested deeper than 128 levels")
        }
    }
}
