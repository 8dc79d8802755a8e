#!/usr/bin/env python3
"""tools/capture facts [--out DIR]: what each guest under DIR really did, as a Markdown table, from each
capture directory's own files: config.json (versions, vIOMMU, devices, the guest's marker probe),
guest-dmesg.txt (IOMMU policy printed, fault lines), guest-steps.log (workload results) and
qemu-trace.log[.zst] (the invalidations and faults QEMU saw)."""
import glob, json, os, re, subprocess, sys


def qemu_log(d):
    if os.path.exists(f"{d}/qemu-trace.log.zst"):
        return subprocess.run(["zstd", "-qdc", f"{d}/qemu-trace.log.zst"], capture_output=True, text=True).stdout
    if os.path.exists(f"{d}/qemu-trace.log"):
        return open(f"{d}/qemu-trace.log", errors="replace").read()
    return ""


def short_fault(line):
    m = re.search(r"\[(DMA (?:Read|Write))[^]]*\].*fault reason (\S+?)\]", line)
    if m:
        form = " (PASID ffffffff form)" if "PASID ffffffff" in line else " (NO_PASID form)" if "NO_PASID" in line else ""
        return f"{m.group(1)} reason {m.group(2)}{form}"
    return line[:80]


def row(d):
    c = json.load(open(f"{d}/config.json"))
    g = c["guest"]
    dmesg = [re.sub(r"^\[[ 0-9.]+\] ", "", l.rstrip("\n")) for l in open(f"{d}/guest-dmesg.txt", errors="replace")]
    dmesg = [l for l in dmesg if not re.match(r"(Kernel )?[Cc]ommand line:", l)]
    pol = [l for l in dmesg if re.search(
        r"TLB invalidation policy|strict mode|batching|Default domain type|No supported address widths|VIOT|virtio_iommu", l)]
    pol = "; ".join(re.sub(r"^(iommu|AMD-Vi|DMAR): ", "", l).strip() for l in pol) or "(none)"
    steps = open(f"{d}/guest-steps.log").read() if os.path.exists(f"{d}/guest-steps.log") else ""
    names = {x["role"].split()[0]: x.get("guest_name") for x in c["devices"]}
    blk = "blk HANG" if "HANG: blk" in steps else "blk ok" if names.get("scratch") else "blk absent"
    net = "net ok" if "net: DHCP ok" in steps and "ping failed" not in steps else \
        "net failed" if names.get("network") else "net absent"
    faults = [l for l in dmesg if re.search(r"DMAR: ?\[DMA|AMD-Vi: Event logged|IO_PAGE_FAULT|fault addr", l)]
    fl = f"{len(faults)}: " + "; ".join(sorted({short_fault(f) for f in faults})) if faults else "0"
    q = qemu_log(d)
    inv = {k: len(re.findall(r":vtd_inv_desc_iotlb_" + k + " ", q)) for k in ("pages", "domain")}
    flush = "-"
    if c["viommu"]["kind"] == "intel-iommu":
        flush = f"per page ({inv['pages']})" if inv["pages"] else f"domain ({inv['domain']})" if inv["domain"] else "none"
    qf = [f"{ev} {n}" for ev in ("vtd_dmar_fault", "amdvi_page_fault", "virtio_iommu_report_fault")
          if (n := len(re.findall(":" + ev + " ", q)))]
    v = c["viommu"]["kind"] + (f" ({c['viommu']['properties']})" if c["viommu"]["properties"] else "")
    plat = {x["iommu_platform"] for x in c["devices"] if "iommu_platform" in x and x["role"].startswith(("scratch", "network"))}
    v += ", iommu_platform=" + ("on" if plat == {True} else "off")
    if c.get("bypass_iommu_bus"):
        v += ", blk+net behind pxb-pcie bypass_iommu=on"
    res = (c["workload"].get("edu_write_result") or "(not run)").replace("write DMA ", "").replace(" at 0x2345000", "")
    return (f"| {os.path.basename(d)} | {g['kernel_release']} | {c['host']['qemu_version'].split()[3]} | {v} | {pol} "
            f"| {flush} | {blk}, {net} | {fl} | {', '.join(qf) or 'none'} | {res} |")


print("| capture | kernel | QEMU | vIOMMU / devices | IOMMU policy printed by the guest | IOTLB invalidations QEMU saw "
      "| virtio blk / net | guest fault lines | QEMU fault events | stray edu write |")
print("|---|---|---|---|---|---|---|---|---|---|")
for cfg in sorted(glob.glob(os.path.join(sys.argv[1], "*/config.json"))):
    print(row(os.path.dirname(cfg)))
