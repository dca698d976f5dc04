//! Sentinel facts: what one Sentinel process reports of the primary it
//! monitors for a cluster (`SENTINEL MASTER`, `REPLICAS`, `SENTINELS`,
//! `MYID`), the events it publishes, and a switch of primary Sentinel
//! made, as the journal stores them.
//!
//! In topology Sentinel, Valkey Sentinel is the authority on failover:
//! the operator never promotes on its own. It watches every Sentinel and
//! journals what it saw, so that a switch Sentinel made can be explained
//! from the journal as fully as one the operator decided.
//!
//! Volatile fields (ping times, replication offsets, link ages) are left
//! out of reports on purpose: a report is journaled only when it differs
//! from the last one, so an idle cluster appends nothing.

use serde::{Deserialize, Serialize};

/// The per-primary settings a Sentinel applies (`SENTINEL SET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentinelSettings {
    /// Sentinels that must agree the primary is down.
    pub quorum: u32,
    /// `down-after-milliseconds`.
    pub down_after_ms: u64,
    /// `failover-timeout`.
    pub failover_timeout_ms: u64,
    /// `parallel-syncs`.
    pub parallel_syncs: u32,
}

/// An instance a Sentinel knows of (a replica or another Sentinel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentinelKnown {
    /// The address it has for it.
    pub ip: String,
    /// Its port.
    pub port: u16,
    /// The pod at that address when observed (`None`: no current pod has
    /// it, a stale entry).
    pub pod: Option<String>,
    /// Its run id (a Sentinel's id is what votes name).
    pub run_id: Option<String>,
    /// Its notable flags: `s_down`, `o_down`, `disconnected`, `promoted`.
    pub flags: Vec<String>,
}

/// What one Sentinel reports of the primary it monitors for the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentinelMonitorReport {
    /// The primary's address.
    pub primary_ip: String,
    /// Its port.
    pub primary_port: u16,
    /// The data pod at that address (`None`: no current pod has it).
    pub primary_pod: Option<String>,
    /// The configuration epoch of that primary (raised by each failover).
    pub config_epoch: u64,
    /// Notable flags of the primary: `s_down`, `o_down`,
    /// `failover_in_progress`, `coordinated_failover`, `force_failover`.
    pub flags: Vec<String>,
    /// The failover state while one runs (`wait_start` … `update_config`).
    pub failover_state: Option<String>,
    /// The settings it applies.
    pub settings: SentinelSettings,
    /// The replicas it knows of.
    pub replicas: Vec<SentinelKnown>,
    /// The other Sentinels it knows of.
    pub sentinels: Vec<SentinelKnown>,
}

impl SentinelMonitorReport {
    /// Whether it sees the primary down or is failing it over.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.failover_state.is_some()
            || self
                .flags
                .iter()
                .any(|f| matches!(f.as_str(), "s_down" | "o_down" | "failover_in_progress"))
    }
}

/// What one Sentinel reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentinelReport {
    /// Its id (`SENTINEL MYID`), which leader votes name.
    pub myid: String,
    /// The primary it monitors under the cluster's master name, `None`
    /// when it monitors none.
    pub monitoring: Option<SentinelMonitorReport>,
}

/// The `info-period` the operator gives every Sentinel, in milliseconds.
/// During a failover a Sentinel asks the replicas for `INFO` once a second
/// whatever this is (hard-coded), and it sees the replica it promoted only
/// in such a reply: with the default 10 s, the one it sends at the
/// failover's start comes just before the promotion and the promotion is
/// seen a whole second later; at 1 s, the replicas' `INFO` keeps the
/// phase it had before the failover, and the promotion is seen at the
/// next reply, half a second later on average. Less than a second would
/// not help: the failover's own one-second period takes over.
pub const SENTINEL_INFO_PERIOD_MS: u64 = 1_000;

/// How long a hibernation pauses the primaries' writes at most (`CLIENT
/// PAUSE WRITE`), in milliseconds: the StatefulSets stop the pods right
/// after the data is durable; should the operator die first, the servers
/// lift the pause themselves.
pub const HIBERNATE_PAUSE_MS: u64 = 60_000;

/// The down-after every Sentinel is given before a hibernation pauses the
/// primary's writes, in milliseconds: longer than the pause can last. A
/// Sentinel takes a paused primary for down (its `PUBLISH` to the hello
/// channel waits for the pause to end, and its `PING` behind it on the
/// same link), and would otherwise fail it over while its data is being
/// made durable; once the pause is lifted, the old primary would take
/// writes its replacement never sees.
pub const HIBERNATE_DOWN_AFTER_MS: u64 = HIBERNATE_PAUSE_MS + 30_000;

/// A data pod as it stood when Sentinel switched primaries, as the
/// operator last saw it: the candidates Sentinel chose among.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchCandidate {
    /// Pod name.
    pub pod: String,
    /// Its last journaled replication offset.
    pub offset: Option<u64>,
    /// Whether its last probe answered.
    pub reachable: bool,
    /// Whether it was a replica following the old primary with its link up.
    pub in_sync: bool,
}

/// A switch of primary made by Sentinel, found by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentinelSwitch {
    /// The primary replaced (the one the journal believed), if any.
    pub from: Option<String>,
    /// The new primary's pod.
    pub to: String,
    /// Its address as the Sentinels give it.
    pub to_ip: String,
    /// The configuration epoch of the switch.
    pub epoch: u64,
    /// The Sentinel (pod) elected to lead the failover, when its
    /// `+elected-leader` was seen.
    pub leader: Option<String>,
    /// The Sentinels (pods) seen voting for that leader in that epoch.
    pub voters: Vec<String>,
    /// The data pods as the operator last saw them before the switch.
    pub candidates: Vec<SwitchCandidate>,
    /// The Sentinels (pods) naming the new primary when it was journaled.
    pub reported_by: Vec<String>,
    /// Found after the fact: no event of this failover's epoch was
    /// watched (the operator was down or not subscribed), so leader and
    /// voters are unknown, and the candidates are as last seen before.
    pub after_the_fact: bool,
}
