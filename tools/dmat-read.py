#!/usr/bin/env python3
"""Independent reader of the .dmat format, written from schemas/dmat-format.md alone (Python stdlib; chunk
data is decompressed with the `zstd` command). It shows that the spec is enough to read a trace, and the
test suite compares its view with dmatrace's.

Usage: tools/dmat-read.py [--records] FILE   -> prints a JSON summary on stdout
       (--records adds "records": every decoded 56-byte record as hex, in file order)
"""
import json
import struct
import subprocess
import sys
import zlib

SIDE, SEEK, ZSTD = 0x184D2A5D, 0x184D2A5E, 0xFD2FB528
LIMITS = {b"DMAT": 1 << 20, b"META": 16 << 20, b"STRS": 16 << 20, b"CHNK": 48}
MAX_EVENTS = (64 << 20) // 56

# Compact chunk layout (spec section 9a).
FIELDS = ["flags", "detail", "clock", "device", "source", "timestamp", "address", "address2", "size", "aux",
          "aux2", "position", "ref", "reuse", "cpu"]
F = {name: i for i, name in enumerate(FIELDS)}
FIELD_MAX = {"flags": 0xFF, "detail": 0xFF, "clock": 0xFF, "device": 0xFFFF, "source": 0xFFFF,
             "aux": 0xFFFFFFFF, "aux2": 0xFFFFFFFF, "ref": 4096, "reuse": 64, "position": (1 << 48) - 1,
             "cpu": 0xFFFF}
POSITION_MASK = (1 << 48) - 1
ROLES = {1: (0, "open"), 2: (0, "close"), 5: (0, "peek"), 3: (1, "open"), 4: (1, "close"),
         16: (2, "open"), 17: (2, "close")}
LIVE_CAPACITY, RELEASED_CAPACITY = 4096, 64
M64 = (1 << 64) - 1
RECORD = struct.Struct("<BBBBHHQQQQIIQ")


class Damaged(Exception):
    pass


def unzigzag(z):
    return (z >> 1) ^ (M64 if z & 1 else 0)


def decode_compact(p, events):
    """The records (56 bytes each) of a compact payload that its chunk header says holds `events` records."""
    if len(p) < 8:
        raise Damaged("payload shorter than its header")
    n, count, reserved = struct.unpack_from("<IHH", p, 0)
    if n != events or reserved != 0:
        raise Damaged(f"payload header declares {n} records (chunk: {events}), reserved {reserved}")
    data = 8 + events + 8 * count
    if data > len(p):
        raise Damaged("kinds and directory run past the payload")
    kinds = p[8:8 + events]
    streams, last_key = {}, -1
    for s in range(count):
        kind, field, mode, width, n = struct.unpack_from("<BBBBI", p, 8 + events + 8 * s)
        key = (kind, field)
        if field >= len(FIELDS) or kind * 16 + field <= last_key or width > 8 or n > events:
            raise Damaged(f"bad directory entry {s}")
        name = FIELDS[field]
        derived = name in ("address2", "aux", "aux2")
        allowed = {0} if name in ("ref", "reuse") else {0, 1, 2, 3, 4} if derived else {0, 1, 4}
        if mode not in allowed:
            raise Damaged(f"mode {mode} not defined for {name}")
        last_key = kind * 16 + field
        size = width if mode == 4 else width * n
        if data + size > len(p):
            raise Damaged(f"stream {key} runs past the payload")
        if mode == 4:  # constant: one value, used n times
            vals = [int.from_bytes(p[data:data + width], "little")] * n
            mode = 0
        else:
            vals = [0] * n
            for j in range(width):
                plane = p[data + j * n:data + (j + 1) * n]
                for i, b in enumerate(plane):
                    vals[i] |= b << (8 * j)
        data += size
        streams[key] = [mode, vals, 0, FIELD_MAX.get(name, M64)]
    if data != len(p):
        raise Damaged("streams do not end where the payload ends")
    live = [[], [], []]      # oldest first
    released = [[], [], []]  # newest last
    zero = (0,) * 13
    last, prev_any, out = {}, zero, []

    def value(kind, name, pred, size=0, address=0):
        st = streams.get((kind, F[name]))
        if st is None or st[2] >= len(st[1]):
            raise Damaged(f"kind {kind} needs a value of {name}")
        mode, r = st[0], st[1][st[2]]
        st[2] += 1
        base = {0: 0, 1: pred, 2: size, 3: address}[mode]
        v = r if mode == 0 else (base + unzigzag(r)) & M64
        if v > st[3]:
            raise Damaged(f"{name} value {v} too large")
        return v

    for kind in kinds:
        prev = last.get(kind, zero)  # (kind, flags, detail, clock, device, source, ts, addr, addr2, size, aux, aux2, pos)
        flags = value(kind, "flags", prev[1])
        detail = value(kind, "detail", prev[2])
        clock = value(kind, "clock", prev[3])
        source = value(kind, "source", prev[5])
        ts = value(kind, "timestamp", prev_any[6])
        pos = value(kind, "position", prev_any[12] & POSITION_MASK)
        # Format 3.0: the CPU (record bytes 54-55) is read when the chunk has a cpu stream for the kind, else 0.
        cpu = value(kind, "cpu", prev_any[12] >> 48) if (kind, F["cpu"]) in streams else 0
        fam, role = ROLES.get(kind, (0, None))
        known = False
        if role in ("close", "peek"):
            r = value(kind, "ref", 0)
            if r:
                if r > len(live[fam]):
                    raise Damaged("reference past the live mappings")
                device, addr, size = live[fam][r - 1]
                if role == "close":
                    del live[fam][r - 1]
                known = True
        if not known:
            device = value(kind, "device", prev[4])
            size = value(kind, "size", prev[9])
            addr = None
            if role == "open":
                c = value(kind, "reuse", 0)
                if c:
                    hits = [i for i in range(len(released[fam]) - 1, -1, -1) if released[fam][i][0] == device and released[fam][i][2] == size]
                    if c > len(hits):
                        raise Damaged("reuse of a released mapping that does not exist")
                    addr = released[fam].pop(hits[c - 1])[1]
            if addr is None:
                addr = value(kind, "address", prev[7])
        addr2 = value(kind, "address2", prev[8], size, addr)
        aux = value(kind, "aux", prev[10], size, addr)
        aux2 = value(kind, "aux2", prev[11], size, addr)
        if role == "open":
            if len(live[fam]) == LIVE_CAPACITY:
                del live[fam][0]
            live[fam].append((device, addr, size))
        elif role == "close":
            if len(released[fam]) == RELEASED_CAPACITY:
                del released[fam][0]
            released[fam].append((device, addr, size))
        rec = (kind, flags, detail, clock, device, source, ts, addr, addr2, size, aux, aux2, pos | cpu << 48)
        out.append(RECORD.pack(*rec))
        last[kind] = rec
        prev_any = rec
    if any(st[2] != len(st[1]) for st in streams.values()):
        raise Damaged("a stream holds values no record used")
    return b"".join(out)


def main(args):
    want_records = "--records" in args
    path = [a for a in args if a != "--records"][0]
    data = open(path, "rb").read()
    if data[0:4] != b"\x5d\x2a\x4d\x18" or data[8:12] != b"DMAT":
        sys.exit(f"{path}: not a .dmat")
    major = struct.unpack_from("<H", data, 16)[0]
    if major > 3:
        sys.exit(f"{path}: format version {major}.x is newer than this reader")
    out = {"strings": [], "metadata": None, "chunks": [], "kinds": {}, "index": None, "damage": [],
           "ts_sum": 0, "addr_xor": 0, "records": 0, "layouts": []}
    hexrecs = []
    pos, pending = 0, None
    while pos < len(data):
        if pos + 8 > len(data):
            out["damage"].append(f"truncated frame header at {pos}")
            break
        magic, size = struct.unpack_from("<II", data, pos)
        if magic == SIDE:
            tag = data[pos + 8:pos + 12]
            body = data[pos + 16:pos + 8 + size]
            if tag in LIMITS and (size - 8 > LIMITS[tag] or pos + 8 + size > len(data)):
                out["damage"].append(f"bad {tag} frame at {pos}")
                break
            if zlib.crc32(tag + body) != struct.unpack_from("<I", data, pos + 12)[0]:
                out["damage"].append(f"CRC mismatch at {pos}")
            elif tag == b"DMAT":
                major, minor, rsize, flags, chunk_events, slen = struct.unpack_from("<HHHHII", body, 0)
                out["version"] = f"{major}.{minor}"
                out["record_size"] = rsize
                out["schema_kinds"] = len(json.loads(body[16:16 + slen])["kinds"])
            elif tag == b"META":
                out["metadata"] = json.loads(body)
            elif tag == b"STRS":
                first, count = struct.unpack_from("<II", body, 0)
                assert first == len(out["strings"]), "string frame out of order"
                o = 8
                for _ in range(count):
                    (n,) = struct.unpack_from("<I", body, o)
                    out["strings"].append(body[o + 4:o + 4 + n].decode("utf-8", "replace"))
                    o += 4 + n
            elif tag == b"CHNK":
                seq, events, usize, csize, tmin, tmax, nstr, cflags = struct.unpack_from("<IIQQQQII", body, 0)
                layout = cflags & 0xFF
                assert events <= MAX_EVENTS and usize <= 64 << 20
                assert layout != 0 or usize == events * 56
                pending = dict(seq=seq, events=events, usize=usize, csize=csize, min=tmin, max=tmax, header=pos,
                               layout=layout)
            pos += 8 + size
        elif magic == SEEK:
            frame = data[pos + 8:pos + 8 + size]
            n, desc, footer = struct.unpack_from("<IBI", frame, len(frame) - 9)
            assert footer == 0x8F92EAB1
            width = 12 if desc & 0x80 else 8
            out["index"] = [list(struct.unpack_from("<III" if width == 12 else "<II", frame, i * width)) for i in range(n)]
            pos += 8 + size
        elif 0x184D2A50 <= magic <= 0x184D2A5F:
            pos += 8 + size
        elif magic == ZSTD and pending is not None:
            frame = data[pos:pos + pending["csize"]]
            if len(frame) < pending["csize"]:
                out["damage"].append(f"chunk {pending['seq']} truncated at {pos}")
                break
            r = subprocess.run(["zstd", "-d", "-c", "-q"], input=frame, capture_output=True)
            recs = None
            if r.returncode != 0 or len(r.stdout) != pending["usize"]:
                out["damage"].append(f"chunk {pending['seq']} at {pos}: {r.stderr.decode().strip()}")
            elif pending["layout"] == 0:
                recs = r.stdout
            elif pending["layout"] == 1:
                try:
                    recs = decode_compact(r.stdout, pending["events"])
                except (Damaged, struct.error) as e:
                    out["damage"].append(f"chunk {pending['seq']} at {pos}: compact payload: {e}")
            else:
                out["damage"].append(f"chunk {pending['seq']} at {pos}: unknown layout {pending['layout']}")
            out["layouts"].append(pending["layout"])
            if recs is not None:
                if want_records:
                    hexrecs += [recs[i:i + 56].hex() for i in range(0, len(recs), 56)]
                for i in range(0, len(recs), 56):
                    kind = recs[i]
                    out["kinds"][kind] = out["kinds"].get(kind, 0) + 1
                    ts, addr = struct.unpack_from("<QQ", recs, i + 8)
                    out["ts_sum"] = (out["ts_sum"] + ts) % (1 << 64)
                    out["addr_xor"] ^= addr
                out["records"] += len(recs) // 56
            out["chunks"].append({k: pending[k] for k in ("seq", "events", "min", "max", "header")} | {"frame": pos})
            pos += pending["csize"]
            pending = None
        else:
            out["damage"].append(f"unexpected bytes at {pos}")
            break
    out["kinds"] = {str(k): v for k, v in sorted(out["kinds"].items())}
    if want_records:
        out["records_hex"] = hexrecs
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
