#!/usr/bin/env python3
"""Independent reader of the .dmat format, written from schemas/dmat-format.md alone (Python stdlib; chunk
data is decompressed with the `zstd` command). It shows that the spec is enough to read a trace, and the
test suite compares its view with dmatrace's.

Usage: tools/dmat-read.py FILE   -> prints a JSON summary on stdout
"""
import json
import struct
import subprocess
import sys
import zlib

SIDE, SEEK, ZSTD = 0x184D2A5D, 0x184D2A5E, 0xFD2FB528
LIMITS = {b"DMAT": 1 << 20, b"META": 16 << 20, b"STRS": 16 << 20, b"CHNK": 48}


def main(path):
    data = open(path, "rb").read()
    if data[0:4] != b"\x5d\x2a\x4d\x18" or data[8:12] != b"DMAT":
        sys.exit(f"{path}: not a .dmat")
    major = struct.unpack_from("<H", data, 16)[0]
    if major > 1:
        sys.exit(f"{path}: format version {major}.x is newer than this reader")
    out = {"strings": [], "metadata": None, "chunks": [], "kinds": {}, "index": None, "damage": [],
           "ts_sum": 0, "addr_xor": 0, "records": 0}
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
                seq, events, usize, csize, tmin, tmax, nstr, _ = struct.unpack_from("<IIQQQQII", body, 0)
                assert usize == events * 56
                pending = dict(seq=seq, events=events, usize=usize, csize=csize, min=tmin, max=tmax, header=pos)
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
            if r.returncode != 0 or len(r.stdout) != pending["usize"]:
                out["damage"].append(f"chunk {pending['seq']} at {pos}: {r.stderr.decode().strip()}")
            else:
                recs = r.stdout
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
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
