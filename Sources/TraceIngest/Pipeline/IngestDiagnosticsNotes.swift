extension IngestDiagnostics {
    /// Records a problem that is not a skipped record (lost events the input reports, parts of a file that are
    /// deliberately not read), bounded like ``skip(_:)`` but without counting a skip.
    mutating func note(_ problem: Problem) {
        if problems.count < maxProblems { problems.append(problem) } else { problemsNotStored += 1 }
    }
}
