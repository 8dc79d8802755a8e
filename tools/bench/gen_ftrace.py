#!/usr/bin/env python3
"""Writes a realistic ftrace text file of at least SIZE bytes (default 1 GiB) for the ingest benchmark.

The mix imitates a Linux 6.15 guest with an IOMMU in a DMA domain: virtio-blk/virtio-net dma_map_page /
dma_unmap_page pairs (header, data, status), iommu map/unmap, occasional dma_map_sg, dma_alloc/free,
swiotlb_bounced and a few unrelated events (sched_switch), in the tracefs `trace` line format with latency
flags. Deterministic (seeded). Usage: gen_ftrace.py OUT [SIZE_BYTES]
"""
import random
import sys

if len(sys.argv) not in (2, 3) or sys.argv[1].startswith("-"):
    sys.exit(__doc__.strip() + "\n")
out = sys.argv[1]
try:
    target = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 30
except ValueError:
    sys.exit(f"gen_ftrace.py: SIZE_BYTES must be an integer, got {sys.argv[2]!r}")
rng = random.Random(42)
comms = ["fio-1234", "kworker/u4:1-88", "<idle>-0", "ksoftirqd/0-12", "(udev-worker)-191", "dd-156"]
devs = ["0000:00:02.0", "0000:00:03.0", "0000:00:1f.2"]
flags = [".....", "d.h1.", "..s1.", "d..1.", "b..1."]

HEADER = """# tracer: nop
#
# entries-in-buffer/entries-written: 0/0   #P:2
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""

def main():
    written = 0
    ts = 2_000_000  # microseconds
    with open(out, "w", buffering=1 << 22) as f:
        f.write(HEADER)
        written += len(HEADER)
        batch = []
        while written < target:
            ts += rng.randint(1, 40)
            comm = rng.choice(comms)
            cpu = rng.randint(0, 1)
            prefix = "%16s [%03d] %s %6d.%06d: " % (comm, cpu, rng.choice(flags), ts // 1_000_000, ts % 1_000_000)
            dev = rng.choice(devs)
            dma = 0xfff00000 - rng.randint(0, 4095) * 0x1000 + rng.choice([0, 0x640, 0x210])
            phys = rng.randint(0x100000, 0x7fffffff) & ~0xfff
            size = rng.choice([16, 1, 512, 4096, 32768])
            r = rng.random()
            if r < 0.30:
                d = rng.choice(["TO_DEVICE", "FROM_DEVICE", "BIDIRECTIONAL"])
                line = "dma_map_page: %s dir=%s dma_addr=%x size=%d phys_addr=%x attrs=" % (dev, d, dma, size, phys)
            elif r < 0.60:
                d = rng.choice(["TO_DEVICE", "FROM_DEVICE"])
                at = "SKIP_CPU_SYNC" if rng.random() < 0.2 else ""
                line = "dma_unmap_page: %s dir=%s dma_addr=%x size=%d attrs=%s" % (dev, d, dma, size, at)
            elif r < 0.77:
                iova = dma & ~0xfff
                line = "map: IOMMU: iova=0x%016x - 0x%016x paddr=0x%016x size=4096" % (iova, iova + 4096, phys)
            elif r < 0.94:
                iova = dma & ~0xfff
                line = "unmap: IOMMU: iova=0x%016x - 0x%016x size=4096 unmapped_size=4096" % (iova, iova + 4096)
            elif r < 0.96:
                line = ("dma_map_sg: %s dir=FROM_DEVICE dma_addrs={0x%x} sizes={0x2000} phys_addrs={0x%x,0x%x} attrs="
                        % (dev, dma & ~0xfff, phys, phys + 0x5000))
            elif r < 0.97:
                line = "swiotlb_bounced: dev_name: %s dma_mask=ffffffffffffffff dev_addr=%x size=%d FORCE" % (dev, phys, size)
            elif r < 0.98:
                line = ("dma_alloc: %s dir=BIDIRECTIONAL dma_addr=%x size=6726 virt_addr=00000000%08x "
                        "flags=GFP_KERNEL|__GFP_NOWARN|__GFP_ZERO attrs=" % (dev, dma & ~0xfff, rng.getrandbits(32)))
            else:
                line = "sched_switch: prev_comm=fio prev_pid=1234 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120"
            s = prefix + line + "\n"
            batch.append(s)
            written += len(s)
            if len(batch) >= 10000:
                f.write("".join(batch))
                batch.clear()
        f.write("".join(batch))

main()
