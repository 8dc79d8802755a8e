#!/usr/bin/env python3
"""The ftrace parser a user would otherwise write: the line regex of the ftrace line format (kernel/trace/trace_output.c) plus one
regex per event body, building one tuple per event. Usage: ftrace_regex.py FILE  (prints counts)."""
import re
import sys
from collections import Counter

LINE = re.compile(r'^\s*(?P<comm>.+)-(?P<pid>\d+)\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[(?P<cpu>\d{3})\]\s+'
                  r'(?:(?P<flags>[^\s]{4,5})\s+)?(?P<ts>\d+(?:\.\d+)?):\s+(?P<event>[^:\s]+):\s(?P<body>.*)$')
BODY = {
    "dma_map_page": re.compile(r'(\S+) (?:dir=(\S+) )?dma_addr=([0-9a-f]+) size=(\d+) phys_addr=([0-9a-f]+) attrs=(\S*)'),
    "dma_unmap_page": re.compile(r'(\S+) (?:dir=(\S+) )?dma_addr=([0-9a-f]+) size=(\d+) attrs=(\S*)'),
    "map": re.compile(r'IOMMU: iova=0x([0-9a-f]+)(?: - 0x[0-9a-f]+)? paddr=0x([0-9a-f]+) size=(\d+)'),
    "unmap": re.compile(r'IOMMU: iova=0x([0-9a-f]+)(?: - 0x[0-9a-f]+)? size=(\d+) unmapped_size=(\d+)'),
    "dma_map_sg": re.compile(r'(\S+) dir=(\S+) dma_addrs=\{([^}]*)\} sizes=\{([^}]*)\} phys_addrs=\{([^}]*)\} attrs=(\S*)'),
    "swiotlb_bounced": re.compile(r'dev_name: (\S+) dma_mask=([0-9a-f]+) dev_addr=([0-9a-f]+) size=(\d+) (\S+)'),
    "dma_alloc": re.compile(r'(\S+) (?:dir=(\S+) )?dma_addr=([0-9a-f]+) size=(\d+) virt_addr=([0-9a-f]+) flags=(\S+) attrs=(\S*)'),
}

def main():
    counts = Counter()
    events = []
    unknown = 0
    with open(sys.argv[1], "r", errors="replace") as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = LINE.match(line)
            if not m:
                continue
            ev = m.group("event")
            body = BODY.get(ev)
            if body is None:
                unknown += 1
                continue
            b = body.match(m.group("body"))
            if not b:
                continue
            sec, _, frac = m.group("ts").partition(".")
            ts = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0"))
            g = b.groups()
            if ev == "dma_map_sg":
                for i, (a, s) in enumerate(zip(g[2].split(","), g[3].split(","))):
                    events.append((ts, ev, g[0], int(a, 16), int(s, 16), i))
            else:
                events.append((ts, ev) + tuple(int(x, 16) if x and re.fullmatch(r'[0-9a-f]+', x) else x for x in g))
            counts[ev] += 1
            if len(events) >= 100000:  # a user would keep them; we only bound memory
                events.clear()
    print(sum(counts.values()), "events", unknown, "unknown", dict(sorted(counts.items())))

main()
