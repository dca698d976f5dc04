//! How a list field merges: the one piece of schema knowledge that the patch
//! engines (strategic merge, server-side apply) need, shared by the built-in
//! kinds' table and the CRD schemas so neither module depends on the other.

/// The merge semantics of a list field (Kubernetes' `x-kubernetes-list-type`,
/// or a built-in kind's `patchMergeKey` / `listType` markers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// The list is replaced as a whole and owned as a whole (the default).
    Atomic,
    /// A list of scalars merged as a set; each value owned separately.
    Set,
    /// A list of objects merged by the named key fields (e.g. `["name"]`,
    /// or `["containerPort", "protocol"]`); each element owned separately.
    Map(Vec<String>),
}

/// Answers the list type of the list at a field path, given as the field
/// names from the object root with list positions left out — e.g.
/// `["spec", "template", "spec", "containers"]` or
/// `["spec", "template", "spec", "containers", "env"]`.
pub trait ListTypes: Send + Sync {
    /// The list type at `path`; [`ListType::Atomic`] when unknown.
    fn list_type(&self, path: &[&str]) -> ListType;

    /// Whether the map at `path` is atomic (`+mapType=atomic`, such as a
    /// Service's `spec.selector`): replaced and owned as a whole, so an
    /// applier that sets it takes back keys another manager added. Maps
    /// are granular unless said so.
    fn map_atomic(&self, _path: &[&str]) -> bool {
        false
    }
}

/// Every list atomic: custom resources without list markers.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllAtomic;

impl ListTypes for AllAtomic {
    fn list_type(&self, _path: &[&str]) -> ListType {
        ListType::Atomic
    }
}
