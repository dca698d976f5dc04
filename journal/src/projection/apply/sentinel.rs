//! The Sentinel family: the Sentinel pods, what each reports and
//! publishes on its event channels, and the switches of primary they made.
//!
//! Once there is a believed primary, Sentinel's switches move it, not the
//! roles the pods report (see `track_sentinel_primary` in the pods
//! family): the switch is a fact Sentinel decided, folded as it is.

use crate::event::Event;
use crate::projection::sentinel::{SentinelPodView, SwitchView};
use crate::projection::{ClusterState, FailoverView};
use crate::time::Timestamp;

impl ClusterState {
    /// Folds what the Sentinels show: their pods, their reports and event
    /// channels, and the switches of primary they made.
    pub(super) fn fold_sentinel(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::SentinelPodObserved {
                pod,
                uid,
                ip,
                phase,
                ready,
            } => {
                self.observed();
                let view = self.sentinel.pods.entry(pod.clone()).or_default();
                if view.uid.as_ref().is_some_and(|old| old != uid) {
                    // A recreated Sentinel: forget what the old one said.
                    *view = SentinelPodView::default();
                    self.sentinel_info_periods.remove(pod);
                }
                view.uid = Some(uid.clone());
                view.ip.clone_from(ip);
                view.phase = Some(*phase);
                view.ready = *ready;
                view.last_seen = at;
            }
            Event::SentinelPodDeleted { pod } => {
                self.observed();
                // A new Sentinel pod of the name is given `default` again.
                self.users.pod_replaced(pod);
                self.sentinel_info_periods.remove(pod);
                if self.sentinel.pods.remove(pod).is_none() {
                    self.anomaly(
                        seq,
                        format!("Sentinel pod {pod} deleted but never observed"),
                    );
                }
            }
            Event::SentinelTimingObserved {
                pod,
                info_period_ms,
            } => {
                self.observed();
                if !self.sentinel.pods.contains_key(pod) {
                    self.anomaly(seq, format!("timing of unknown Sentinel pod {pod}"));
                }
                self.sentinel_info_periods
                    .insert(pod.clone(), *info_period_ms);
            }
            Event::SentinelObserved {
                pod,
                reachability,
                report,
            } => {
                self.observed();
                if !self.sentinel.pods.contains_key(pod) {
                    self.anomaly(seq, format!("observation of unknown Sentinel pod {pod}"));
                }
                let view = self.sentinel.pods.entry(pod.clone()).or_default();
                view.reachability = Some(*reachability);
                view.report.clone_from(report);
                view.last_seen = at;
                // The epoch of the believed primary, as a Sentinel that is
                // not failing it over gives it. (A leader raises the epoch
                // when it promotes, before it names the new primary: its
                // report then is busy and says nothing of the primary's.)
                if let Some(m) = report.as_ref().and_then(|r| r.monitoring.as_ref())
                    && !m.busy()
                    && m.primary_pod.is_some()
                    && m.primary_pod.as_deref() == self.replication.primary.as_deref()
                {
                    self.sentinel.primary_epoch = m.config_epoch;
                }
            }
            Event::SentinelEventObserved {
                pod,
                channel,
                payload,
            } => {
                self.observed();
                if let Some(line) = self.sentinel.fold_event(pod, channel, payload) {
                    self.history(seq, at, body, line);
                }
            }
            Event::SentinelSwitchObserved { switch } => {
                if switch.from.as_deref() != self.replication.primary.as_deref() {
                    self.anomaly(
                        seq,
                        format!(
                            "Sentinel switch from {:?} but the believed primary was {:?}",
                            switch.from, self.replication.primary
                        ),
                    );
                }
                self.counters.failovers = self.counters.failovers.saturating_add(1);
                self.sentinel.switches = self.sentinel.switches.saturating_add(1);
                if switch.after_the_fact {
                    self.sentinel.switches_after_the_fact =
                        self.sentinel.switches_after_the_fact.saturating_add(1);
                }
                self.sentinel.primary_epoch = switch.epoch;
                if let Some(old) = switch.from.as_ref().and_then(|f| self.pods.get_mut(f)) {
                    // Its role is unknown until observed again: it may
                    // still believe it is primary (as after a promotion).
                    old.role = None;
                }
                self.replication.primary = Some(switch.to.clone());
                self.replication.primary_replid = None;
                self.last_failover = Some(FailoverView {
                    seq,
                    at,
                    from: switch.from.clone(),
                    to: switch.to.clone(),
                });
                self.sentinel.last_switch = Some(SwitchView {
                    seq,
                    at,
                    from: switch.from.clone(),
                    to: switch.to.clone(),
                    epoch: switch.epoch,
                    after_the_fact: switch.after_the_fact,
                });
                let leader = switch.leader.as_deref().unwrap_or("unknown");
                let how = if switch.after_the_fact {
                    " (found after the fact)"
                } else {
                    ""
                };
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "Sentinel switched the primary {} -> {} at epoch {} (leader {leader}, {} votes){how}",
                        switch.from.as_deref().unwrap_or("none"),
                        switch.to,
                        switch.epoch,
                        switch.voters.len()
                    ),
                );
            }
            other => self.misrouted(seq, other, "Sentinel"),
        }
    }
}
