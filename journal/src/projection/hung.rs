//! Whether the journal shows a Valkey Cluster shard primary hung: frozen
//! or stuck, its process alive but answering nothing. Decide fails such a
//! primary over by `CLUSTER FAILOVER FORCE` well before Valkey's own
//! `cluster-node-timeout`, and the audit justifies that decision by the
//! same rule, from the journal alone.

use super::ClusterState;
use crate::event::{LinkStatus, Reachability};
use crate::policy::Policy;

impl ClusterState {
    /// Why the journal does not show the shard primary `primary` hung, or
    /// `Ok` with its run of failed probes when it does. Hung means both:
    ///
    /// - its probes **timed out**, at least `failureThreshold` of them in
    ///   a row over the policy's whole span ([`Policy::unanswered_long_enough`]).
    ///   A refused probe is a process gone and an error reply a process
    ///   that answers (a restarted one loading its data, say): neither
    ///   hangs, and each has its own rule (death, a primary behind its
    ///   replica).
    /// - every answering replica of it still holds its replication link
    ///   **up but silent** (`LinkStatus::Silent`: nothing heard past a
    ///   ping, or the offset still while the primary fails). A stopped
    ///   process's sockets stay open in the kernel, so its replicas keep
    ///   the link and hear nothing; a killed or restarted one resets
    ///   them (`Down`, then a resync), and one still replicating is
    ///   heard (`Up`). Without such a replica there is no corroboration.
    ///
    /// The second part is what makes a forced failover safe here: a
    /// primary that restarted in place shows its replicas' links down,
    /// and is left to the rule that hands its slots to the replica
    /// holding its lost writes, which a forced election (refused by the
    /// primaries for twice the node timeout after they voted for this
    /// shard) could delay until that replica resynced from the emptied
    /// primary.
    ///
    /// # Errors
    /// What the journal lacks, in words for the decision's or the
    /// audit's message.
    pub fn primary_hung(&self, primary: &str, policy: &Policy) -> Result<u32, String> {
        let Some(view) = self.pods.get(primary) else {
            return Err(format!("{primary} is not in the journal"));
        };
        let failures = view.consecutive_failures;
        if view.reachability != Some(Reachability::TimedOut)
            || failures < policy.failure_threshold.max(1)
            || !policy.unanswered_long_enough(view.failing_since, view.last_failed_at)
        {
            return Err(format!(
                "{primary}'s probes were not journaled timing out {} times in a row for {} ms",
                policy.failure_threshold.max(1),
                policy.unreachable_after_ms()
            ));
        }
        let replicas: Vec<_> = self
            .pods
            .iter()
            .filter(|(_, v)| {
                v.replicates.as_deref() == Some(primary)
                    && v.reachability == Some(Reachability::Reachable)
            })
            .collect();
        if replicas.is_empty() {
            return Err(format!("no answering replica of {primary} was journaled"));
        }
        if let Some((name, v)) = replicas
            .iter()
            .find(|(_, v)| v.link != Some(LinkStatus::Silent))
        {
            return Err(format!(
                "{name}'s link to {primary} was journaled {}, not silent",
                v.link
                    .map_or_else(|| "unknown".to_owned(), |l| format!("{l:?}"))
            ));
        }
        Ok(failures)
    }
}
