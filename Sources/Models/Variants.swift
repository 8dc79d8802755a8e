/// The version axis: a kernel model at one release, a QEMU mode at one QEMU version and machine type.
/// Rules (`byRelease`, `byVersion`) are applied in file order; a resolved model whose version is not the
/// default carries it in its id (`linux-5.4:5.8`, `qemu-amd-iommu:10.0`, `qemu-viommu-virtio-translated:10.0/9.1`),
/// so results, fingerprints and the recorded-scenario check tell the versions apart.
public enum ModelVersions {
    /// `2.9-`, `4.8-5.2` → "from 2.9", "4.8 to 5.2".
    static func text(_ r: ReleaseRange) -> String { r.to.map { "\(r.from) to \($0)" } ?? "from \(r.from)" }

    /// The QEMU version a scenario means when it names none: that of the bundled captures (QEMU 7.2), or the
    /// nearest version the mode exists in.
    public static let defaultQEMU = "7.2"

    /// `major.minor` of `text` (`6.1.0-56-amd64` → `6.1`, `QEMU emulator version 7.2.22` → `7.2`).
    public static func canonical(_ text: String) -> String? {
        guard let (a, b) = ReleaseRange.majorMinor(text) else { return nil }
        return "\(a).\(b)"
    }

    /// The QEMU version used for `mode` when the scenario names none.
    public static func defaultQEMU(for mode: QemuModeModel) -> String {
        guard let r = mode.versions else { return defaultQEMU }
        if r.contains(release: defaultQEMU) { return defaultQEMU }
        if let lo = ReleaseRange.majorMinor(r.from), let d = ReleaseRange.majorMinor(defaultQEMU), d < lo {
            return canonical(r.from) ?? defaultQEMU
        }
        return r.to.flatMap(canonical) ?? defaultQEMU
    }

    /// The release used for `kernel` when the scenario names none (nil for models without releases).
    public static func defaultRelease(for kernel: KernelModel) -> String? {
        (kernel.defaultRelease ?? kernel.releases?.from).flatMap(canonical)
    }
}

extension KernelModel {
    /// This model at `release` (nil: the default release): rules applied, id suffixed when not the default.
    public func resolved(release: String?) throws(ModelError) -> KernelModel {
        let base = ModelVersions.defaultRelease(for: self)
        var rel = base
        if let release {
            guard let c = ModelVersions.canonical(release) else {
                throw .badScenario(
                    "\(id):\(release)", reason: "'\(release)' is not a kernel release (MAJOR.MINOR, e.g. 5.8)")
            }
            guard let r = releases, r.contains(release: c) else {
                let range = releases.map { "releases \(ModelVersions.text($0))" } ?? "no release range"
                throw .badScenario("\(id):\(release)", reason: "kernel model \(id) covers \(range), not \(c)")
            }
            rel = c
        }
        var k = self
        guard let rel else { return k }
        for rule in byRelease ?? [] where rule.releases.contains(release: rel) {
            if let v = rule.drivers { k.iommu.drivers = v }
            if let v = rule.dmaOpsScope { k.iommu.dmaOpsScope = v }
            if let v = rule.contextAttach { k.iommu.contextAttach = v }
            if let v = rule.flushQueue { k.iommu.flushQueue = v }
            if let v = rule.iovaCache { k.iommu.iovaCache = v }
            if let v = rule.strictIgnoredBy { k.iommu.strictIgnoredBy = v }
            if let v = rule.defaultPolicy { k.iommu.defaultPolicy = v }
            if let v = rule.strictWhen { k.iommu.strictWhen = v }
            if let v = rule.vtd { k.dmesg.vtd = v }
            if let v = rule.amdvi { k.dmesg.amdvi = v }
            if let v = rule.smmuv3 { k.dmesg.smmuv3 = v }
            k.sources.append("\(rel): \(rule.source)")
            if let v = rule.verify { k.notes = (k.notes ?? []) + ["\(rel): to verify with a real boot: \(v)"] }
        }
        k.oopses = oopses?.filter { $0.releases.contains(release: rel) }
        if rel != base { k.id = "\(id):\(rel)" }
        return k
    }
}

extension QemuModeModel {
    /// This mode at QEMU `qemu` with machine type `machine` (nil: defaults, machine = the QEMU version):
    /// rules applied, id suffixed when not the default.
    public func resolved(qemu: String?, machine: String?) throws(ModelError) -> QemuModeModel {
        let defQ = ModelVersions.defaultQEMU(for: self)
        var q = defQ
        if let qemu {
            guard let c = ModelVersions.canonical(qemu) else {
                throw .badScenario("\(id):\(qemu)", reason: "'\(qemu)' is not a QEMU version (MAJOR.MINOR, e.g. 10.0)")
            }
            if let r = versions, !r.contains(release: c) {
                throw .badScenario(
                    "\(id):\(qemu)", reason: "QEMU mode \(id) exists in QEMU \(ModelVersions.text(r)), not \(c)")
            }
            q = c
        }
        var mach = q
        if let machine {
            guard let c = ModelVersions.canonical(machine) else {
                throw .badScenario(
                    "\(id):\(q)/\(machine)",
                    reason: "'\(machine)' is not a machine type version (e.g. 9.1 for pc-q35-9.1)")
            }
            guard let mv = ReleaseRange.majorMinor(c), let qv = ReleaseRange.majorMinor(q), !(qv < mv) else {
                throw .badScenario("\(id):\(q)/\(machine)", reason: "QEMU \(q) has no machine type \(c)")
            }
            mach = c
        }
        var m = self
        for rule in byVersion ?? [] {
            if let r = rule.qemu, !r.contains(release: q) { continue }
            if let r = rule.machine, !r.contains(release: mach) { continue }
            if let v = rule.awBits { m.awBits = v }
            if let v = rule.dmaTranslation { m.dmaTranslation = v }
            if let v = rule.bootBypass { m.bootBypass = v }
            if let v = rule.silentNotPresent { m.faults.silentNotPresent = v }
            if let v = rule.eventLog { m.faults.eventLog = v }
            m.sources.append("QEMU \(q), machine \(mach): \(rule.source)")
            if let v = rule.verify { m.notes = (m.notes ?? []) + ["QEMU \(q): to verify with a real boot: \(v)"] }
        }
        if q != defQ || mach != q { m.id = mach != q ? "\(id):\(q)/\(mach)" : "\(id):\(q)" }
        return m
    }
}
