import Models

extension MatrixAxis {
    /// Every `kernel@mode` scenario of the axis, kernel-major (the order of a matrix run's units).
    public func scenarios(catalog: ModelCatalog) throws -> [Scenario] {
        try kernels.flatMap { k in try modes.map { try Scenario.parse("\(k)@\($0)", catalog: catalog) } }
    }
}
