/// How the driver addressed a device and whether its DMA was translated, as reports spell it
/// (`iova-translated`, `gpa-identity`, `gpa-untranslated-claimed`, ...): the typed form of
/// ``DeviceResult/addressing`` and of ``DevicePlan/addressingSummary``, so the matrix decides on values, not on
/// string suffixes.
public struct DeviceAddressing: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The addressing itself.
    public enum Base: String, Sendable, CaseIterable {
        /// The device never ran (blocked at probe).
        case none
        case iovaTranslated = "iova-translated"
        case iovaUntranslated = "iova-untranslated"
        case gpaTranslated = "gpa-translated"
        case gpaUntranslated = "gpa-untranslated"
        case gpaIdentity = "gpa-identity"
        case bounceTranslated = "bounce-translated"
        case bounceGPA = "bounce-gpa"
        case mappingError = "mapping-error"
        /// Not recorded (reports of schema 1) or not a value this version writes.
        case unknown = ""
    }

    public var base: Base
    /// The platform claims a translation (the guest trusts an IOMMU) that the device does not get.
    public var claimed: Bool
    /// The text of a value this version does not write (``Base/unknown`` then), kept as read.
    private var unrecognised: String?

    public init(base: Base, claimed: Bool = false) {
        self.base = base
        self.claimed = claimed
    }

    /// Reads the report spelling (`-claimed` suffix included).
    public init(_ text: String) {
        let claimed = text.hasSuffix("-claimed")
        let name = claimed ? String(text.dropLast("-claimed".count)) : text
        self.init(base: Base(rawValue: name) ?? .unknown, claimed: claimed)
        if Base(rawValue: name) == nil { unrecognised = text }
    }

    /// The report spelling.
    public var description: String { unrecognised ?? (claimed ? base.rawValue + "-claimed" : base.rawValue) }

    /// Decodes the report spelling (a JSON string).
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    /// Encodes the report spelling (a JSON string), as read for a value of another version.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// The device's DMA walks the vIOMMU's page tables.
    public var isTranslated: Bool { base == .iovaTranslated || base == .gpaTranslated || base == .bounceTranslated }

    /// How isolated a device with this addressing and `verdict` is: the one rule behind the matrix's symbols
    /// (Analysis' `MatrixAnswer`) and so of its working and unsafe modes. nil for a failing verdict.
    public func isolation(verdict: OutcomeClass) -> Isolation? {
        switch verdict {
        case .untranslatedWhileClaimed: return .bypassesClaimedIOMMU
        case .ok:
            if claimed { return .bypassesClaimedIOMMU }
            // A device that never did DMA (none) or whose addressing was not recorded is taken as isolated; a
            // value of another version by the name it ends in.
            if let unrecognised { return unrecognised.hasSuffix("-translated") ? .isolated : .unisolated }
            return isTranslated || base == .none || base == .unknown ? .isolated : .unisolated
        default: return nil
        }
    }

    /// Isolation of a working device.
    public enum Isolation: Sendable, Equatable {
        /// Translated by an IOMMU the guest uses (or no DMA at all).
        case isolated
        /// Working without DMA isolation (no vIOMMU, identity domain, bounce buffers), honestly so.
        case unisolated
        /// Working only because DMA bypasses an IOMMU the guest trusts.
        case bypassesClaimedIOMMU
    }
}
