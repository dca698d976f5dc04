//! Hibernation's effects on the data pods: their data made durable before
//! they stop (`PersistForHibernation`), their roles given back when they
//! are back (`Wake`).
//!
//! Going to sleep, in order: writes paused on every primary (`CLIENT
//! PAUSE WRITE`: a write not acknowledged by then is refused or never
//! answered), the primaries' offsets read and their replicas waited for
//! until they hold as much, then every pod's data written to its volume
//! as the spec's persistence says: `SAVE` (the RDB file, fsynced before
//! the answer) and, with an append-only file, a rewrite of it from memory
//! waited for. Whatever each server reads at its next start then holds
//! every write it acknowledged. A failure part-way lifts the pause and
//! says what was done.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use logbook_journal::projection::PodData;
use logbook_journal::{Event, HIBERNATE_PAUSE_MS, ReplId, Role};

use super::persistence::{RewriteWait, wait_for_rewrite};
use super::{ActError, Done, Target, valkey_err};
use crate::valkey::ValkeyClient;

/// How long the replicas may take to hold their primary's offset. One
/// that does not is not an error: its primary's file holds everything,
/// and it resyncs from it on waking.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);
/// How long one `SAVE` may take.
const PERSIST_LIMIT: Duration = Duration::from_secs(300);
/// How often a catch-up is looked at.
const POLL: Duration = Duration::from_millis(20);

/// `PersistForHibernation`: pause, catch up, persist.
///
/// # Errors
/// A pod without an address, a command refused or unanswered, a rewrite
/// that fails or outlasts [`PERSIST_LIMIT`]: each says what was already
/// done, and the pause is lifted first.
pub async fn persist(
    valkey: &ValkeyClient,
    target: Target<'_>,
    primaries: &[String],
    pods: &[String],
) -> Result<Done, ActError> {
    let mut paused: Vec<SocketAddr> = Vec::new();
    let mut said: Vec<String> = Vec::new();
    let result = persist_steps(valkey, target, primaries, pods, &mut paused, &mut said).await;
    match result {
        Ok(events) => Ok(Done {
            detail: said.join("; "),
            events,
            password: None,
        }),
        Err(err) => {
            // The pause is lifted so that the cluster serves as before;
            // the decision is taken again.
            let mut lifted = Vec::new();
            for addr in paused {
                if valkey.client_unpause(addr).await.is_ok() {
                    lifted.push(addr.ip().to_string());
                }
            }
            if !lifted.is_empty() {
                said.push(format!("writes resumed on {}", lifted.join(", ")));
            }
            Err(if said.is_empty() {
                err
            } else {
                err.after(&said.join("; "))
            })
        }
    }
}

async fn persist_steps(
    valkey: &ValkeyClient,
    target: Target<'_>,
    primaries: &[String],
    pods: &[String],
    paused: &mut Vec<SocketAddr>,
    said: &mut Vec<String>,
) -> Result<Vec<Event>, ActError> {
    let mut events = Vec::new();
    for primary in primaries {
        let addr = target.addr(primary)?;
        valkey
            .client_pause_writes(addr, HIBERNATE_PAUSE_MS)
            .await
            .map_err(valkey_err(format!("pausing writes on {primary}")))?;
        paused.push(addr);
        said.push(format!("writes paused on {primary}"));
    }
    for primary in primaries {
        let addr = target.addr(primary)?;
        said.push(catch_up(valkey, addr, primary).await?);
    }
    let (rdb, aof) = (
        target.spec.storage.persistence.rdb(),
        target.spec.storage.persistence.aof(),
    );
    for pod in pods {
        let addr = target.addr(pod)?;
        if aof {
            rewrite(valkey, addr, pod).await?;
        }
        // An RDB file too when the spec keeps one, and always without an
        // append-only file (a server reads its RDB file then).
        if rdb || !aof {
            valkey
                .save(addr, PERSIST_LIMIT)
                .await
                .map_err(valkey_err(format!("SAVE on {pod}")))?;
        }
        said.push(format!(
            "{pod} durable ({})",
            match (rdb || !aof, aof) {
                (true, true) => "RDB file saved, append-only file rewritten",
                (false, true) => "append-only file rewritten",
                _ => "RDB file saved",
            }
        ));
        events.push(data_observed(
            pod,
            read_data(valkey, addr, pod).await?,
            true,
        ));
    }
    Ok(events)
}

/// What `pod` holds as it answers now: its history, offset and keys.
async fn read_data(
    valkey: &ValkeyClient,
    addr: SocketAddr,
    pod: &str,
) -> Result<PodData, ActError> {
    let info = valkey
        .info_replication(addr)
        .await
        .map_err(valkey_err(format!("reading {pod}'s offset")))?;
    let keyspace = valkey
        .info_fields(addr, "keyspace")
        .await
        .map_err(valkey_err(format!("reading {pod}'s keys")))?;
    let replid = ReplId::from_hex(&info.replid).map_err(|e| {
        ActError::Refused(format!(
            "{pod} reports a replication id that is not one ({:?}): {e}",
            info.replid
        ))
    })?;
    Ok(PodData {
        replid,
        offset: info.master_repl_offset,
        keys: keyspace_keys(&keyspace),
    })
}

/// `PodDataObserved` of `pod` holding `data`.
fn data_observed(pod: &str, data: PodData, persisted: bool) -> Event {
    Event::PodDataObserved {
        pod: pod.to_owned(),
        replid: data.replid,
        offset: data.offset,
        keys: data.keys,
        persisted,
    }
}

/// The keys of every database of an `INFO keyspace` reply
/// (`db0:keys=101,expires=1,avg_ttl=0`).
fn keyspace_keys(fields: &std::collections::BTreeMap<String, String>) -> u64 {
    fields
        .iter()
        .filter(|(name, _)| name.starts_with("db"))
        .filter_map(|(_, value)| {
            value
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

/// Waits until every replica connected to the primary at `addr` holds its
/// offset; says how far each got.
async fn catch_up(
    valkey: &ValkeyClient,
    addr: SocketAddr,
    primary: &str,
) -> Result<String, ActError> {
    let started = Instant::now();
    loop {
        let info = valkey
            .info_replication(addr)
            .await
            .map_err(valkey_err(format!("reading {primary}'s offset")))?;
        let offset = info.master_repl_offset;
        let behind: Vec<&str> = info
            .replicas
            .iter()
            .filter(|r| r.offset < offset)
            .map(|r| r.ip.as_str())
            .collect();
        if info.replicas.is_empty() {
            return Ok(format!("{primary} at offset {offset}, no replica"));
        }
        if behind.is_empty() {
            return Ok(format!(
                "{primary} at offset {offset}, its {} replicas caught up",
                info.replicas.len()
            ));
        }
        if started.elapsed() > CATCH_UP_LIMIT {
            return Ok(format!(
                "{primary} at offset {offset}; replicas at {} still behind after {} s (they resync from it on waking)",
                behind.join(", "),
                CATCH_UP_LIMIT.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Rewrites `pod`'s append-only file from memory and waits for the
/// rewrite (one already running is waited for first: it may have begun
/// before the pause).
async fn rewrite(valkey: &ValkeyClient, addr: SocketAddr, pod: &str) -> Result<(), ActError> {
    let says = RewriteWait {
        already: "",
        if_failed: "it is not stopped",
        if_slow: "it hibernates once it ends",
    };
    wait_for_rewrite(valkey, addr, pod, &says).await?;
    valkey
        .bgrewriteaof(addr)
        .await
        .map_err(valkey_err(format!("BGREWRITEAOF on {pod}")))?;
    wait_for_rewrite(valkey, addr, pod, &says).await
}

/// `Wake`: `primary` (booted fenced, as every pod of a Replication does)
/// takes writes again and every other pod follows it; without one, each
/// pod is only asked whether it answers.
///
/// # Errors
/// A pod without an address, or a command refused or unanswered: what
/// was already done is said.
pub async fn wake(
    valkey: &ValkeyClient,
    target: Target<'_>,
    primary: Option<&str>,
    pods: &[String],
) -> Result<Done, ActError> {
    let mut said: Vec<String> = Vec::new();
    let mut events = Vec::new();
    let Some(primary) = primary else {
        let cluster = target.spec.topology == logbook_crds::Topology::Cluster;
        for pod in pods {
            let addr = target.addr(pod)?;
            if cluster {
                // A node that stopped as a shard primary boots holding full
                // resyncs back (`CLUSTER_BOOT_FENCE_SECONDS`), in case a
                // replica kept writes it lost; asleep, every replica had
                // caught up and every file was written, so the normal
                // delay is set back on every node.
                valkey
                    .config_set(
                        addr,
                        "repl-diskless-sync-delay",
                        &crate::resources::CLUSTER_FULL_SYNC_DELAY_SECONDS.to_string(),
                    )
                    .await
                    .map_err(valkey_err(format!(
                        "setting {pod}'s full-resync delay back to {} s",
                        crate::resources::CLUSTER_FULL_SYNC_DELAY_SECONDS
                    )))
                    .map_err(|e| match said.is_empty() {
                        true => e,
                        false => e.after(&format!(
                            "full-resync delay set back on {}",
                            said.join(", ")
                        )),
                    })?;
                said.push(pod.clone());
            } else {
                // INFO, not PING: a pod of a cluster that slept before it
                // ever had a primary boots fenced, and a fenced replica
                // answers PING with MASTERDOWN; INFO it answers.
                valkey
                    .info_replication(addr)
                    .await
                    .map_err(valkey_err(format!("asking {pod} whether it answers")))?;
            }
        }
        return Ok(Done::said(if cluster {
            format!(
                "{} back as they were, their full-resync delay set back to {} s",
                pods.join(", "),
                crate::resources::CLUSTER_FULL_SYNC_DELAY_SECONDS
            )
        } else {
            format!("{} answer, as they were", pods.join(", "))
        }));
    };
    // What every pod holds back from its volume, journaled before any is
    // given writes: the decided primary must hold what was persisted.
    let mut held = Vec::new();
    let mut primary_holds = None;
    for pod in pods {
        let data = read_data(valkey, target.addr(pod)?, pod).await?;
        if pod == primary {
            primary_holds = Some(data);
        }
        held.push(data_observed(pod, data, false));
    }
    if let (Some(required), Some(now)) = (target.state.hibernation_data.required(), primary_holds)
        && !now.holds(required)
    {
        return Err(ActError::NotYet(format!(
            "{primary} is back holding {} keys at offset {}, less than was made durable before it slept ({} keys at offset {}): its volume was lost or replaced; it is not given writes (nothing changed)",
            now.keys, now.offset, required.keys, required.offset
        ))
        .with_facts(held));
    }
    events.append(&mut held);
    let step = async {
        let addr = target.addr(primary)?;
        valkey
            .replicaof(addr, None)
            .await
            .map_err(valkey_err(format!("giving {primary} its writes back")))?;
        let offset = valkey
            .info_replication(addr)
            .await
            .map(|i| i.master_repl_offset)
            .unwrap_or(0);
        said.push(format!("{primary} primary again at offset {offset}"));
        events.push(Event::NodeRoleObserved {
            pod: primary.to_owned(),
            role: Role::Primary,
            primary: None,
        });
        let others: BTreeSet<&String> = pods.iter().filter(|p| *p != primary).collect();
        for pod in others {
            let at = target.addr(pod)?;
            valkey
                .replicaof(at, Some(addr))
                .await
                .map_err(valkey_err(format!("pointing {pod} at {primary}")))?;
            said.push(format!("{pod} follows it"));
            events.push(Event::NodeRoleObserved {
                pod: pod.clone(),
                role: Role::Replica,
                primary: Some(primary.to_owned()),
            });
        }
        Ok::<(), ActError>(())
    }
    .await;
    match step {
        Ok(()) => Ok(Done {
            detail: said.join("; "),
            events,
            password: None,
        }),
        // What was read and every role already changed is journaled with
        // the failure: the next decision starts from it.
        Err(err) if said.is_empty() => Err(err.with_facts(events)),
        Err(err) => Err(err.after(&said.join("; ")).with_facts(events)),
    }
}
