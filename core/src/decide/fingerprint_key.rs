//! The cluster's fingerprint key: the HMAC key of every password
//! fingerprint and `ACL LIST` digest the journal keeps, in the Secret
//! `<cluster>-internal`. Made with the cluster's other objects by
//! `ApplyResources`; when the journal says it is missing once those are
//! applied (a cluster made before the key existed, or the key deleted by
//! hand), `CreateFingerprintKey` makes it. Until then no password is
//! fingerprinted, so this comes before the ACL users.

use logbook_journal::projection::FingerprintKeyView;
use logbook_journal::{Intent, ReasonCode};

use super::Decision;
use super::view::ClusterView;

/// `CreateFingerprintKey` when the key is known missing and the objects
/// of the spec in force are applied (else `ApplyResources`, which makes
/// it too, comes first).
pub fn decide_fingerprint_key(view: &ClusterView<'_>) -> Option<Decision> {
    let state = view.state;
    let missing = match state.fingerprint_key {
        FingerprintKeyView::Missing => true,
        FingerprintKeyView::Unread | FingerprintKeyView::Present => false,
    };
    (missing && state.applied_generation == Some(view.generation)).then(|| {
        Decision::new(
            Intent::CreateFingerprintKey,
            ReasonCode::FingerprintKeyMissing,
            "the cluster's Secret <name>-internal holds no usable fingerprint key: no password is fingerprinted until it does",
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use logbook_crds::{Topology, ValkeyClusterSpec};
    use logbook_journal::{Event, Intent};

    use super::decide_fingerprint_key;
    use crate::decide::ClusterView;
    use crate::decide::given::Given;

    fn standalone() -> Given {
        let mut g = Given::new();
        g.spec(&ValkeyClusterSpec::with_topology(Topology::Standalone));
        g
    }

    fn wanted(g: &Given) -> Option<Intent> {
        decide_fingerprint_key(&ClusterView::new(&g.state).unwrap()).map(|d| d.intent)
    }

    #[test]
    fn a_missing_key_is_made_once_the_objects_are_applied_and_then_no_more() {
        let mut g = standalone();
        g.event(Event::FingerprintKeyObserved { present: false });
        // The objects first: ApplyResources makes the key with them.
        assert_eq!(wanted(&g), None);
        assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 1 }]);
        g.applied(1);
        let decided = decide_fingerprint_key(&ClusterView::new(&g.state).unwrap()).unwrap();
        assert_eq!(decided.intent, Intent::CreateFingerprintKey);
        assert_eq!(decided.reason.code.name(), "FingerprintKeyMissing");
        assert!(g.intents().contains(&Intent::CreateFingerprintKey));
        // Its outcome carries the key observed: nothing more.
        g.succeed(Intent::CreateFingerprintKey);
        g.event(Event::FingerprintKeyObserved { present: true });
        assert_eq!(wanted(&g), None);
        assert!(!g.intents().contains(&Intent::CreateFingerprintKey));
    }

    #[test]
    fn a_key_never_read_or_there_asks_for_nothing_and_one_deleted_is_made_again() {
        let mut g = standalone();
        g.applied(1);
        assert_eq!(wanted(&g), None, "never read");
        g.event(Event::FingerprintKeyObserved { present: true });
        assert_eq!(wanted(&g), None);
        g.event(Event::FingerprintKeyObserved { present: false });
        assert_eq!(wanted(&g), Some(Intent::CreateFingerprintKey));
        // A new generation: its ApplyResources makes it.
        g.spec_at(2, &ValkeyClusterSpec::with_topology(Topology::Standalone));
        assert_eq!(wanted(&g), None);
    }
}
