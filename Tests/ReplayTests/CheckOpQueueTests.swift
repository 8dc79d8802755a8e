import Testing
import TraceFormat

@testable import Replay

/// ``CheckOpQueue`` holds what an `[CheckOp]` would: random appends (growing past its first capacity several
/// times) and clears, every element compared after each step.
@Test(arguments: [1, 2, 3] as [UInt64])
func checkOpQueueBehavesAsAnArray(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let queue = CheckOpQueue(capacity: 4)
    var model: [CheckOp] = []
    for step in 0..<3_000 {
        if rng.next() % 50 == 0 {
            queue.removeAll()
            model.removeAll()
        } else {
            let op = CheckOp(
                call: CheckOp.Call(rawValue: UInt8(rng.next() % 4))!, device: Int(rng.next() % 3),
                iova: rng.next(), size: rng.next() % 65536, cpu: rng.next() % 2 == 0 ? nil : Int(rng.next() % 8),
                time: rng.next(), index: step,
                event: Event(kind: .dmaMap, timestamp: rng.next(), address: rng.next(), size: rng.next()))
            queue.append(op)
            model.append(op)
        }
        #expect(queue.count == model.count, "seed \(seed) step \(step)")
        if step % 97 == 0 || step == 2_999 {
            for i in model.indices {
                let a = queue[i], b = model[i]
                #expect(
                    a.call == b.call && a.device == b.device && a.iova == b.iova && a.size == b.size && a.cpu == b.cpu
                        && a.time == b.time && a.index == b.index && a.event == b.event,
                    "seed \(seed) step \(step) #\(i)")
            }
        }
    }
}

/// An ``OpLog`` makes the check calls queued without a place (``OpLog/queueCheck(_:)``, the one-scenario
/// path) after its logged operations, all of them and in order: the check sees the unmaps of the maps it saw.
@Test func opLogAppliesQueuedChecksInOrder() {
    var log = OpLog()
    var check: AllocatorCheck? = AllocatorCheck(
        lazy: false, flushTimeoutMs: 10, flushEntries: 256, addressWidth: 48, below4GFirst: true,
        cpus: 1, hypotheses: 4, domainOf: [0])
    var direct = check
    var states: [ScenarioState] = []
    for i in 0..<(2 * OpLog.batch + 10) {
        let iova: UInt64 = 0xFFFF_F000 &- UInt64(i % 64) << 12
        let op = CheckOp(
            call: i % 2 == 0 ? .map : .unmap, device: 0, iova: iova, size: 4096, cpu: 0, time: UInt64(i) * 1000,
            index: i, event: Event(kind: i % 2 == 0 ? .dmaMap : .dmaUnmap, device: 0, address: iova, size: 4096))
        log.queueCheck(op)
        OpLog.apply(op, to: &direct)
    }
    #expect(log.checks.count == 2 * OpLog.batch + 10)
    log.apply(to: &states, check: &check)
    #expect(check?.checked == direct?.checked)
    #expect(check?.divergenceCount == direct?.divergenceCount)
    #expect((check?.checked ?? 0) > OpLog.batch)
}
