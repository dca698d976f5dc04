//! Valkey actions: promote, repoint, fence, and the planned switchover.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::{Event, Reachability, Role};
use tokio::time::Instant;

use super::{ActError, Done, Target, valkey_err};
use crate::resources::{FENCE_HOST, valkey_addr};
use crate::valkey::ValkeyClient;

/// How long a switchover may hold writes before giving up: the pause is
/// set with this timeout, so the server lifts it by itself if the operator
/// dies half-way.
pub const SWITCHOVER_PAUSE_MS: u64 = 5_000;
/// How often the target's offset is polled while it catches up.
const CATCH_UP_POLL: Duration = Duration::from_millis(2);

/// `REPLICAOF NO ONE` on `pod`, then its offset as the new primary.
pub async fn promote(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    from: Option<&str>,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    valkey
        .replicaof(addr, None)
        .await
        .map_err(valkey_err(format!("promoting {pod}")))?;
    let offset = valkey
        .info_replication(addr)
        .await
        .map(|i| i.master_repl_offset)
        .unwrap_or(0);
    Ok(Done {
        detail: format!(
            "{pod} promoted at offset {offset}{}",
            from.map(|f| format!(", replacing {f}")).unwrap_or_default()
        ),
        events: vec![Event::ReplicaPromoted {
            pod: pod.to_owned(),
            from: from.map(str::to_owned),
            offset,
        }],
        password: None,
    })
}

/// `REPLICAOF <primary ip> 6379` on `pod`.
pub async fn repoint(
    valkey: &ValkeyClient,
    target: Target<'_>,
    pod: &str,
    to: &str,
) -> Result<Done, ActError> {
    let addr = target.addr(pod)?;
    // Where its peers dial it: its external endpoint in a Sentinel cluster
    // exposed outside, which the Sentinels would otherwise "fix" it to.
    let primary = crate::observe::addresses::peer_address(target.state, to)
        .and_then(|(host, port)| Some(SocketAddr::new(host.parse().ok()?, port)))
        .ok_or_else(|| ActError::Refused(format!("primary {to} has no known address")))?;
    valkey
        .replicaof(addr, Some(primary))
        .await
        .map_err(valkey_err(format!("pointing {pod} at {to}")))?;
    Ok(Done {
        detail: format!("{pod} follows {to} ({primary})"),
        events: vec![Event::NodeRoleObserved {
            pod: pod.to_owned(),
            role: Role::Replica,
            primary: Some(to.to_owned()),
        }],
        password: None,
    })
}

/// Makes a still-running old primary a replica of nowhere (read-only, and
/// refusing to feed other replicas). A dead or frozen one needs nothing
/// more than the label its caller already removed, so failure here is
/// reported as what it observed (its reachability), not raised.
pub async fn fence(valkey: &ValkeyClient, target: Target<'_>, pod: &str) -> Done {
    let Ok(addr) = target.addr(pod) else {
        return Done::said(format!("{pod} has no address to fence"));
    };
    // Waiting out a command timeout on a frozen or dead server would only
    // delay the promotion; such a server is fenced by its label now and
    // repointed when it answers again.
    let reachable =
        target.state.pods.get(pod).and_then(|p| p.reachability) == Some(Reachability::Reachable);
    if !reachable {
        return Done::said(format!(
            "{pod} not answering probes: fenced by its label only"
        ));
    }
    let Some(fence) = valkey_addr(FENCE_HOST) else {
        return Done::said("fence address invalid");
    };
    match valkey.replicaof(addr, Some(fence)).await {
        Ok(()) => Done {
            detail: format!("{pod} fenced (replica of {FENCE_HOST})"),
            events: vec![Event::NodeRoleObserved {
                pod: pod.to_owned(),
                role: Role::Replica,
                primary: None,
            }],
            password: None,
        },
        Err(err) => {
            let reachability = if err.is_death() {
                Reachability::Refused
            } else if err.is_slowness() {
                Reachability::TimedOut
            } else {
                Reachability::ProtocolError
            };
            Done {
                detail: format!("{pod} could not be fenced ({err}): fenced by its label only"),
                events: vec![Event::PodReachabilityObserved {
                    pod: pod.to_owned(),
                    reachability,
                }],
                password: None,
            }
        }
    }
}

/// The replication state of every pod but `except`, read now: the offsets
/// a promotion right after a fence must rank.
pub async fn offsets_of_others(
    valkey: &ValkeyClient,
    target: Target<'_>,
    except: &str,
) -> Vec<Event> {
    let mut events = Vec::new();
    for name in target.state.pods.keys().filter(|p| p.as_str() != except) {
        let Ok(addr) = target.addr(name) else {
            continue;
        };
        let Ok(info) = valkey.info_replication(addr).await else {
            continue;
        };
        let Ok(replid) = logbook_journal::ReplId::from_hex(&info.replid) else {
            continue;
        };
        events.push(Event::ReplicationObserved {
            pod: name.clone(),
            link: crate::observe::link_status(&info),
            offset: info.master_repl_offset,
            replid,
        });
    }
    events
}

/// A hand-over's failure, and whether the held writes may be released: not
/// while `from` is still a primary beside a promoted `to`.
struct HandOverError {
    err: ActError,
    release: bool,
}

impl HandOverError {
    /// A failure after which the writes are released (nothing changed,
    /// or `from` follows `to`).
    fn released(err: ActError) -> Self {
        HandOverError { err, release: true }
    }
}

/// Planned hand-over from `from` to `to` with no acknowledged write lost:
/// hold writes on `from`, wait until `to` has applied everything `from`
/// has, promote `to`, make `from` a replica of `to`, move the labels, then
/// release the held writes (they fail with READONLY and clients retry on
/// the new primary).
///
/// Unlike a bare `FAILOVER TO`, which waits for the replica's
/// once-a-second acknowledgement, the catch-up is read from the target
/// itself every few milliseconds, so the pause lasts as long as the
/// replication lag plus a few round trips.
pub async fn switchover(
    valkey: &ValkeyClient,
    client: &kube::Client,
    target: Target<'_>,
    from: &str,
    to: &str,
) -> Result<Done, ActError> {
    let from_addr = target.addr(from)?;
    let to_addr = target.addr(to)?;
    valkey
        .client_pause_writes(from_addr, SWITCHOVER_PAUSE_MS)
        .await
        .map_err(valkey_err(format!("pausing writes on {from}")))?;
    let started = Instant::now();
    let result = hand_over(valkey, client, target, from, to, from_addr, to_addr).await;
    // Release the held writes, unless `from` is still a primary beside a
    // promoted `to`: then they stay held until the pause expires, and the
    // failure (with the promotion in its facts) has the next decision
    // repoint it.
    let mut done = match result {
        Ok(done) => done,
        Err(HandOverError { err, release }) => {
            if release {
                let _ = valkey.client_unpause(from_addr).await;
            } else {
                tracing::warn!(%from, %to, "{from} could not be pointed at the promoted {to}: its writes stay held until the pause expires ({SWITCHOVER_PAUSE_MS} ms)");
            }
            return Err(err);
        }
    };
    let unpaused = valkey.client_unpause(from_addr).await;
    if let Err(err) = unpaused {
        done.detail.push_str(&format!(
            "; unpause of {from} failed ({err}), the pause expires by itself"
        ));
    }
    done.detail.push_str(&format!(
        "; writes held {} ms",
        started.elapsed().as_millis()
    ));
    Ok(done)
}

async fn hand_over(
    valkey: &ValkeyClient,
    client: &kube::Client,
    target: Target<'_>,
    from: &str,
    to: &str,
    from_addr: SocketAddr,
    to_addr: SocketAddr,
) -> Result<Done, HandOverError> {
    let goal = valkey
        .info_replication(from_addr)
        .await
        .map_err(valkey_err(format!("reading the offset of {from}")))
        .map_err(HandOverError::released)?
        .master_repl_offset;
    let deadline = Instant::now() + Duration::from_millis(SWITCHOVER_PAUSE_MS / 2);
    loop {
        let info = valkey
            .info_replication(to_addr)
            .await
            .map_err(valkey_err(format!("reading the offset of {to}")))
            .map_err(HandOverError::released)?;
        let applied = info
            .primary
            .as_ref()
            .map_or(info.master_repl_offset, |l| l.replica_offset);
        if applied >= goal {
            break;
        }
        if Instant::now() >= deadline {
            return Err(HandOverError::released(ActError::NotYet(format!(
                "{to} did not catch up with {from} (offset {applied} of {goal}); switchover abandoned, writes released"
            ))));
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
    valkey
        .replicaof(to_addr, None)
        .await
        .map_err(valkey_err(format!("promoting {to}")))
        .map_err(HandOverError::released)?;
    // From here on the servers have changed: every later failure carries
    // what was already done, so the projection never believes less than
    // the servers and the API show (two primaries until `from` follows).
    let promoted = Event::ReplicaPromoted {
        pod: to.to_owned(),
        from: Some(from.to_owned()),
        offset: goal,
    };
    // `from` follows `to` before anything else: while it is a primary
    // its replicas acknowledge writes `to` will never have, so it stays
    // paused until it follows (the caller does not release it otherwise).
    // Were the role labels patched first, a failed patch would release
    // the writes on the old primary beside the new one.
    // Once more at once if it fails (a connection reset): `REPLICAOF` is
    // idempotent, and two primaries must not outlast the pause. If it
    // still fails, `to` goes back to following `from` (it has everything
    // `from` has: writes are held), so that one primary remains.
    let demoted = match valkey.replicaof(from_addr, Some(to_addr)).await {
        Ok(()) => Ok(()),
        Err(first) => {
            tracing::warn!(%from, %to, err = %first, "pointing {from} at {to} failed; trying once more");
            valkey.replicaof(from_addr, Some(to_addr)).await
        }
    };
    if let Err(err) = demoted.map_err(valkey_err(format!("pointing {from} at {to}"))) {
        let mut facts = vec![promoted];
        let release = match valkey.replicaof(to_addr, Some(from_addr)).await {
            Ok(()) => {
                facts.push(Event::NodeRoleObserved {
                    pod: to.to_owned(),
                    role: Role::Replica,
                    primary: Some(from.to_owned()),
                });
                true
            }
            Err(back) => {
                tracing::warn!(%from, %to, err = %back, "{to} could not be pointed back at {from}: both are primaries");
                false
            }
        };
        return Err(HandOverError {
            err: err.with_facts(facts),
            release,
        });
    }
    let mut events = vec![
        promoted,
        Event::NodeRoleObserved {
            pod: from.to_owned(),
            role: Role::Replica,
            primary: Some(to.to_owned()),
        },
    ];
    for (pod, primary) in [(from, false), (to, true)] {
        match super::kube_ops::label_pod(client, target, pod, primary).await {
            Ok(labelled) => events.extend(labelled.events),
            Err(err) => {
                return Err(HandOverError {
                    err: err.with_facts(events),
                    release: true,
                });
            }
        }
    }
    Ok(Done {
        detail: format!("{to} took over from {from} at offset {goal}"),
        events,
        password: None,
    })
}
