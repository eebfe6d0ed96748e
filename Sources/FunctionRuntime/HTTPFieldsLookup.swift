import HTTPTypes

extension HTTPFields {
    /// `self[name]`, without its lazy join for a field that occurs once (as
    /// nearly every one does): the join cost 3,400 instructions a lookup, and
    /// a POST looks up two present fields (callgrind).
    func value(of name: HTTPField.Name) -> String? {
        guard let first = firstIndex(where: { $0.name == name }) else { return nil }
        let rest = self[index(after: first)...]
        return rest.contains(where: { $0.name == name }) ? self[name] : self[first].value
    }
}
