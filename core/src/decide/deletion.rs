//! A deleted ValkeyCluster: what the operator made for it is deleted by
//! one decided intent, journaled before it runs and with its outcome, so
//! that an instance that does not lead (a follower, a fenced one) never
//! deletes, and the journal says what was deleted and when.

use logbook_journal::{ClusterState, Intent, ReasonCode};

use super::Decision;

/// `DeleteOwnedObjects` until the journal says every owned object is
/// gone. Only for a deletion this build journaled (`DeletionRequested`):
/// an older build deleted the objects itself and then journaled
/// `ClusterDeleted`.
pub(super) fn decide_deletion(state: &ClusterState) -> Vec<Decision> {
    let deletion = &state.deletion;
    if !deletion.requested || deletion.objects_deleted {
        return Vec::new();
    }
    let pvcs = if deletion.delete_pvcs {
        "its PVCs too (delete-pvcs-on-delete)"
    } else {
        "its PVCs are kept"
    };
    vec![Decision::new(
        Intent::DeleteOwnedObjects {
            delete_pvcs: deletion.delete_pvcs,
        },
        ReasonCode::ClusterDeleted,
        format!("the ValkeyCluster was deleted: its objects go, {pvcs}; the journal is kept"),
    )]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use logbook_journal::{ClusterState, Intent, Timestamp};

    use super::super::decide;

    #[test]
    fn a_requested_deletion_is_decided_until_its_objects_are_gone() {
        let mut state = ClusterState::default();
        let policy = logbook_journal::Policy::default();
        // An older build's deletion, already carried out: nothing.
        state.deleted = true;
        assert!(decide(&state, Timestamp::default(), &policy).is_empty());
        state.deletion.requested = true;
        state.deletion.delete_pvcs = true;
        let decided = decide(&state, Timestamp::default(), &policy);
        assert_eq!(decided.len(), 1);
        assert_eq!(
            decided[0].intent,
            Intent::DeleteOwnedObjects { delete_pvcs: true }
        );
        state.deletion.objects_deleted = true;
        assert!(decide(&state, Timestamp::default(), &policy).is_empty());
    }
}
