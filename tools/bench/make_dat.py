#!/usr/bin/env python3
"""Writes a trace-cmd trace.dat v7 (zstd) holding N synthetic iommu:map/iommu:unmap events.

Method: the real v6 capture in Tests/Fixtures/real/intel-viommu-strict (guest-trace-cmd-v6.dat.zst) keeps its
header sections (header_page/header_event, event formats with iommu:map id 1149 and iommu:unmap id 1148,
kallsyms, printk, cmdlines, options) up to the `flyrecord` tag; the per-CPU ring-buffer pages after it are
replaced by generated pages (4096-byte pages: u64 timestamp, u64 commit, then records of a u32 event header
`type_len:5 | time_delta:27` and the 32-byte event: common fields + iova, paddr/size, size/unmapped_size).
`trace-cmd convert --file-version 7 --compression zstd` then turns that v6 file into a genuine v7 zstd file
written by trace-cmd itself. The workload: Linux-like descending IOVA allocation with LIFO reuse, 4 KiB to
64 KiB buffers, a bounded queue of live mappings, microsecond-scale gaps, a few pids; deterministic.

usage: make_dat.py OUT.dat N [--v6-only]
"""
import os
import random
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "Tests/Fixtures/real/intel-viommu-strict/guest-trace-cmd-v6.dat.zst")
MAP_ID, UNMAP_ID = 1149, 1148
PAGE = 4096


def events(n, seed=7):
    rng = random.Random(seed)
    ts = 11_918_000_000
    free, live, top = {}, [], 0x1_0000_0000  # per-size LIFO free lists, like the IOVA rcaches
    pids = [152, 153, 97, 1]
    sizes = [4096, 4096, 4096, 8192, 16384, 65536]
    for _ in range(n):
        ts += rng.choice((0, 0, 1000, 2000, 3000)) + rng.randrange(0, 900)
        pid = pids[rng.randrange(len(pids))] if rng.random() < 0.1 else pids[0]
        if live and (len(live) >= 64 or rng.random() < 0.5):
            iova, size = live.pop(rng.randrange(len(live)) if rng.random() < 0.2 else 0)
            free.setdefault(size, []).append(iova)
            yield ts, pid, UNMAP_ID, struct.pack("<QQQ", iova, size, size)
        else:
            size = sizes[rng.randrange(len(sizes))]
            if free.get(size):
                iova = free[size].pop()
            else:
                top -= size
                iova = top
            live.append((iova, size))
            paddr = rng.randrange(0x1000, 0x4_0000) << 12
            yield ts, pid, MAP_ID, struct.pack("<QQQ", iova, paddr, size)


def pages(n):
    """Ring-buffer pages for one CPU."""
    out = bytearray()
    data, base, last = bytearray(), None, None
    for ts, pid, eid, body in events(n):
        rec = struct.pack("<HBBi", eid, 0, 1, pid) + body  # 32 bytes: type_len 8
        if base is None:
            base = last = ts
        if len(data) + 4 + len(rec) > PAGE - 16:
            out += struct.pack("<QQ", base, len(data)) + data + bytes(PAGE - 16 - len(data))
            data, base, last = bytearray(), ts, ts
        delta = ts - last
        assert delta < (1 << 27)
        data += struct.pack("<I", (delta << 5) | (len(rec) // 4)) + rec
        last = ts
    if data:
        out += struct.pack("<QQ", base, len(data)) + data + bytes(PAGE - 16 - len(data))
    return bytes(out)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, n = sys.argv[1], int(sys.argv[2])
    head = subprocess.run(["zstd", "-dc", FIXTURE], check=True, stdout=subprocess.PIPE).stdout
    tag = head.find(b"flyrecord\0")
    assert tag > 0 and head.count(b"flyrecord\0") == 1
    ncpus = struct.unpack_from("<I", head, head.rfind(b"options  \0") - 4)[0]
    assert ncpus == 2, ncpus
    v6 = bytearray(head[: tag + 10])
    data = pages(n)
    start = (len(v6) + 2 * 16 + PAGE - 1) // PAGE * PAGE
    v6 += struct.pack("<QQ", start, len(data)) + struct.pack("<QQ", start + len(data), 0)
    v6 += bytes(start - len(v6)) + data
    if "--v6-only" in sys.argv:
        open(out, "wb").write(v6)
        return
    with tempfile.NamedTemporaryFile(suffix=".dat", dir=os.path.dirname(os.path.abspath(out))) as tmp:
        tmp.write(v6)
        tmp.flush()
        subprocess.run(["trace-cmd", "convert", "-i", tmp.name, "--file-version", "7", "--compression", "zstd", "-o", out],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
