//! Sentinel actions: point a Sentinel at the primary, apply its settings,
//! reset its tables, and ask the Sentinels for a hand-over and wait for
//! their confirmation. Nothing here promotes: Sentinel does.
//!
//! Each action ends with a fresh probe of the Sentinels it touched, whose
//! reports are journaled with its outcome, so that the next decision sees
//! what the action established rather than deciding it again.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::{ClusterState, Event, Reachability, SentinelSettings};
use tokio::time::Instant;

use super::{ActError, Done, Target, valkey_err};
use crate::observe::addresses::{parse_monitor_target, peer_address};
use crate::resources::sentinel_master_name;
use crate::valkey::ValkeyClient;

/// How often a hand-over's progress is polled.
const POLL: Duration = Duration::from_millis(200);
/// How long Sentinel may take to see a replica's new priority (it reads
/// replicas' `INFO` every 10 s).
const PRIORITY_SEEN_WITHIN: Duration = Duration::from_secs(15);
/// Sentinel's default `replica-priority`, restored after a preferred
/// hand-over.
const DEFAULT_PRIORITY: &str = "100";

/// The Sentinel address of the Sentinel pod `pod`.
pub(super) fn sentinel_addr(state: &ClusterState, pod: &str) -> Result<SocketAddr, ActError> {
    let ip = state
        .sentinel
        .pods
        .get(pod)
        .and_then(|p| p.ip.as_deref())
        .ok_or_else(|| ActError::Refused(format!("Sentinel pod {pod} has no known address")))?;
    crate::resources::sentinel_addr(ip)
        .ok_or_else(|| ActError::Refused(format!("Sentinel pod {pod} has an invalid address {ip}")))
}

/// `SENTINEL SET` pairs for `settings`.
fn pairs(settings: &SentinelSettings) -> Vec<(&'static str, String)> {
    vec![
        ("quorum", settings.quorum.to_string()),
        (
            "down-after-milliseconds",
            settings.down_after_ms.to_string(),
        ),
        ("failover-timeout", settings.failover_timeout_ms.to_string()),
        ("parallel-syncs", settings.parallel_syncs.to_string()),
    ]
}

/// A fresh `SentinelObserved` of `pod` (none when the probe's answer is
/// what the projection holds), and the report itself.
async fn reprobe(valkey: &ValkeyClient, target: Target<'_>, pod: &str) -> Vec<Event> {
    let Ok(addr) = sentinel_addr(target.state, pod) else {
        return Vec::new();
    };
    let name = sentinel_master_name(&target.meta.name);
    let outcome = valkey.sentinel_probe(addr, &name).await;
    crate::observe::sentinel::observe_sentinel_probe(target.state, pod, Some(&outcome))
}

/// Makes the Sentinel in `sentinel` monitor `primary` at `ip`.
pub async fn monitor(
    valkey: &ValkeyClient,
    target: Target<'_>,
    sentinel: &str,
    primary: &str,
    ip: &str,
    settings: &SentinelSettings,
) -> Result<Done, ActError> {
    let addr = sentinel_addr(target.state, sentinel)?;
    let name = sentinel_master_name(&target.meta.name);
    // An IP (on the Valkey port), or `host:port` for an external endpoint.
    let (host, port) = parse_monitor_target(ip)
        .ok_or_else(|| ActError::Refused(format!("{ip} is no address to monitor")))?;
    let current = valkey
        .sentinel_master(addr, &name)
        .await
        .map_err(valkey_err(format!("reading what {sentinel} monitors")))?;
    let monitored = current
        .as_ref()
        .is_some_and(|m| m.ip == host && m.port == port);
    if current.is_some() && !monitored {
        valkey
            .sentinel_remove(addr, &name)
            .await
            .map_err(valkey_err(format!("removing {sentinel}'s stale primary")))?;
    }
    if !monitored {
        valkey
            .sentinel_monitor(addr, &name, &host, port, settings.quorum)
            .await
            .map_err(valkey_err(format!("making {sentinel} monitor {primary}")))?;
    }
    // The Sentinels' own user and password for the data nodes (or with
    // none, the cluster's password: empty when auth is off, which the
    // server takes as none), with the settings in one command.
    valkey
        .sentinel_set_auth_and(addr, &name, &pairs(settings))
        .await
        .map_err(valkey_err(format!(
            "giving {sentinel} the data nodes' password and its settings"
        )))?;
    Ok(Done {
        detail: format!(
            "{sentinel} monitors {primary} ({ip}) as {name} with quorum {}",
            settings.quorum
        ),
        events: reprobe(valkey, target, sentinel).await,
        password: None,
    })
}

/// Applies `settings` to the Sentinel in `sentinel`.
pub async fn configure(
    valkey: &ValkeyClient,
    target: Target<'_>,
    sentinel: &str,
    settings: &SentinelSettings,
) -> Result<Done, ActError> {
    let addr = sentinel_addr(target.state, sentinel)?;
    let name = sentinel_master_name(&target.meta.name);
    // The password too, in the same command: a `SENTINEL MONITOR` whose
    // reply was lost leaves a Sentinel monitoring with no password for the
    // data nodes (no probe can show it), and its settings are what is
    // decided next: such a Sentinel sees the primary down for good. The
    // same holds for a password sent as a command of its own after the
    // settings.
    valkey
        .sentinel_set_auth_and(addr, &name, &pairs(settings))
        .await
        .map_err(valkey_err(format!(
            "giving {sentinel} the data nodes' password and its settings"
        )))?;
    Ok(Done {
        detail: format!(
            "{sentinel}: quorum {}, down-after {} ms, failover-timeout {} ms, parallel-syncs {}",
            settings.quorum,
            settings.down_after_ms,
            settings.failover_timeout_ms,
            settings.parallel_syncs
        ),
        events: reprobe(valkey, target, sentinel).await,
        password: None,
    })
}

/// `SENTINEL DEBUG info-period` on the Sentinel in `sentinel`.
pub async fn tune(
    valkey: &ValkeyClient,
    target: Target<'_>,
    sentinel: &str,
    info_period_ms: u64,
) -> Result<Done, ActError> {
    let addr = sentinel_addr(target.state, sentinel)?;
    valkey
        .sentinel_debug_set(addr, "info-period", info_period_ms)
        .await
        .map_err(valkey_err(format!(
            "setting {sentinel}'s INFO period to {info_period_ms} ms"
        )))?;
    Ok(Done {
        detail: format!("{sentinel} asks for INFO every {info_period_ms} ms"),
        events: reprobe(valkey, target, sentinel).await,
        password: None,
    })
}

/// `SENTINEL RESET` on the Sentinel in `sentinel`.
pub async fn reset(
    valkey: &ValkeyClient,
    target: Target<'_>,
    sentinel: &str,
) -> Result<Done, ActError> {
    let addr = sentinel_addr(target.state, sentinel)?;
    let name = sentinel_master_name(&target.meta.name);
    let n = valkey
        .sentinel_reset(addr, &name)
        .await
        .map_err(valkey_err(format!("resetting {sentinel}")))?;
    Ok(Done {
        detail: format!("{sentinel} reset ({n} primary forgot its replicas and Sentinels)"),
        events: reprobe(valkey, target, sentinel).await,
        password: None,
    })
}

/// Asks the Sentinels to hand the primary over from `from` (to `to`
/// preferably), and waits until they confirm. The switch is journaled
/// with the outcome, from the Sentinels' fresh reports.
pub async fn failover(
    valkey: &ValkeyClient,
    target: Target<'_>,
    from: &str,
    to: Option<&str>,
) -> Result<Done, ActError> {
    let name = sentinel_master_name(&target.meta.name);
    // Where the Sentinels know it: its external endpoint when exposed.
    let (from_ip, from_port) = peer_address(target.state, from)
        .ok_or_else(|| ActError::Refused(format!("primary {from} has no known address")))?;
    let asked = sentinel_to_ask(target.state, from)
        .ok_or_else(|| ActError::NotYet(format!("no answering Sentinel names {from} primary")))?;
    let addr = sentinel_addr(target.state, &asked)?;
    // `SENTINEL FAILOVER` names no primary: it fails over whichever the
    // Sentinel names now. The decision rests on its last report, which a
    // switch the Sentinels made since (while this operator was down, or
    // between its probe and now) makes stale; asked anyway, it would fail
    // the new primary over too. So the Sentinel is asked first whom it
    // names, and a switch found is journaled (its fresh report) instead.
    match valkey.sentinel_master(addr, &name).await {
        Ok(Some(m)) if m.ip == from_ip && m.port == from_port && m.failover_state.is_none() => {}
        Ok(now) => {
            let names = now.map_or_else(
                || "monitors no primary".to_owned(),
                |m| match m.failover_state {
                    Some(stage) => format!("is failing {} over ({stage})", m.ip),
                    None => format!("names {} primary", m.ip),
                },
            );
            return Err(ActError::NotYet(format!(
                "not asking {asked} to fail {from} ({from_ip}) over: it {names} now"
            ))
            .with_facts(reprobe(valkey, target, &asked).await));
        }
        Err(err) => {
            return Err(valkey_err(format!("asking {asked} whom it names primary"))(
                err,
            ));
        }
    }
    if let Some(to) = to {
        prefer(valkey, target, addr, &name, to).await?;
    }
    // Coordinated (the primary pauses writes until the chosen replica has
    // caught up) when the primary answers as primary; a fenced or dead one
    // takes no writes, and can only be failed over by force.
    let coordinated = target.state.pods.get(from).is_some_and(|p| {
        p.role == Some(logbook_journal::Role::Primary)
            && p.reachability == Some(Reachability::Reachable)
    });
    let started = Instant::now();
    if let Err(err) = valkey.sentinel_failover(addr, &name, coordinated).await {
        // A failover already running, or no replica the Sentinel deems
        // good yet (it rediscovers replicas every 10 s): ask again later.
        return Err(match crate::valkey::SentinelRefusal::of(&err) {
            Some(
                crate::valkey::SentinelRefusal::FailoverInProgress
                | crate::valkey::SentinelRefusal::NoGoodReplica,
            ) => ActError::NotYet(format!("{asked} cannot fail {from} over yet: {err}")),
            _ => valkey_err(format!("asking {asked} to fail {from} over"))(err),
        });
    }
    let timeout = target.spec.effective_sentinel().map_or(60_000, |s| {
        u64::try_from(s.failover_timeout_milliseconds).unwrap_or(60_000)
    });
    let deadline = started + Duration::from_millis(timeout);
    let new_ip = loop {
        match valkey.sentinel_master(addr, &name).await {
            Ok(Some(m)) if m.ip != from_ip || m.port != from_port => break m.ip,
            Ok(_) | Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Ok(_) | Err(_) => {
                return Err(ActError::NotYet(format!(
                    "{asked} did not confirm a switch away from {from} within {timeout} ms"
                )));
            }
        }
    };
    if let Some(to_addr) = to.and_then(|to| target.addr(to).ok()) {
        // Back to the default preference; a failure leaves the new
        // primary preferred next time, which is harmless.
        let _ = valkey
            .config_set(to_addr, "replica-priority", DEFAULT_PRIORITY)
            .await;
    }
    // The Sentinels' fresh reports; the switch itself is journaled by the
    // next probe round, after what they published on the way (the votes,
    // the election) is.
    let mut events = Vec::new();
    for pod in target.state.sentinel.pods.keys() {
        events.extend(reprobe(valkey, target, pod).await);
    }
    Ok(Done {
        detail: format!(
            "{asked} switched the primary from {from} to {new_ip} in {} ms",
            started.elapsed().as_millis()
        ),
        events,
        password: None,
    })
}

/// The answering Sentinel to ask to fail over the primary `from`: of
/// those that name it, one that knows the most replicas it could
/// promote (the first of them). A Sentinel just reset relearns the
/// replicas only from the primary's INFO, which a dead primary never
/// gives: asked first, it would answer NOGOODSLAVE until the others
/// failed over on their own, seconds later.
fn sentinel_to_ask(state: &logbook_journal::ClusterState, from: &str) -> Option<String> {
    state
        .sentinel
        .pods
        .iter()
        .filter(|(_, v)| v.reachability == Some(Reachability::Reachable))
        .filter_map(|(pod, v)| {
            let m = v.report.as_ref()?.monitoring.as_ref()?;
            (m.primary_pod.as_deref() == Some(from)).then(|| (pod, promotable(m)))
        })
        // `min_by_key` keeps the first of equals, `max_by_key` the last.
        .min_by_key(|(_, known)| std::cmp::Reverse(*known))
        .map(|(pod, _)| pod.clone())
}

/// The replicas a Sentinel knows that are data pods it does not see down
/// or disconnected: those it could promote.
fn promotable(m: &logbook_journal::SentinelMonitorReport) -> usize {
    m.replicas
        .iter()
        .filter(|r| {
            r.pod.is_some()
                && !r
                    .flags
                    .iter()
                    .any(|f| matches!(f.as_str(), "s_down" | "o_down" | "disconnected"))
        })
        .count()
}

/// Lowers `to`'s `replica-priority` (lower is preferred) and waits until
/// the asked Sentinel has seen it.
async fn prefer(
    valkey: &ValkeyClient,
    target: Target<'_>,
    sentinel: SocketAddr,
    name: &str,
    to: &str,
) -> Result<(), ActError> {
    let to_addr = target.addr(to)?;
    // Where the Sentinels know it: its external endpoint when exposed.
    let (to_ip, to_port) = peer_address(target.state, to)
        .ok_or_else(|| ActError::Refused(format!("replica {to} has no known address")))?;
    valkey
        .config_set(to_addr, "replica-priority", "1")
        .await
        .map_err(valkey_err(format!("preferring {to}")))?;
    let deadline = Instant::now() + PRIORITY_SEEN_WITHIN;
    loop {
        let seen = valkey
            .sentinel_replicas(sentinel, name)
            .await
            .map_err(valkey_err(format!(
                "reading the replicas Sentinel knows for {to}"
            )))?
            .iter()
            .any(|r| r.ip == to_ip && r.port == to_port && r.replica_priority == Some(1));
        if seen {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = valkey
                .config_set(to_addr, "replica-priority", DEFAULT_PRIORITY)
                .await;
            return Err(ActError::NotYet(format!(
                "Sentinel did not see {to}'s preference within {} s",
                PRIORITY_SEEN_WITHIN.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use logbook_journal::projection::sentinel::SentinelPodView;
    use logbook_journal::{
        ClusterState, Reachability, SentinelKnown, SentinelMonitorReport, SentinelReport,
        SentinelSettings,
    };

    use super::sentinel_to_ask;

    fn known(pod: &str, flags: &[&str]) -> SentinelKnown {
        SentinelKnown {
            ip: format!("ip-{pod}"),
            port: 6379,
            pod: Some(pod.to_owned()),
            run_id: None,
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    fn sentinel(state: &mut ClusterState, name: &str, names: &str, replicas: Vec<SentinelKnown>) {
        state.sentinel.pods.insert(
            name.to_owned(),
            SentinelPodView {
                reachability: Some(Reachability::Reachable),
                report: Some(SentinelReport {
                    myid: name.to_owned(),
                    monitoring: Some(SentinelMonitorReport {
                        primary_ip: format!("ip-{names}"),
                        primary_port: 6379,
                        primary_pod: Some(names.to_owned()),
                        config_epoch: 0,
                        flags: Vec::new(),
                        failover_state: None,
                        settings: SentinelSettings {
                            quorum: 2,
                            down_after_ms: 5000,
                            failover_timeout_ms: 60_000,
                            parallel_syncs: 1,
                        },
                        replicas,
                        sentinels: Vec::new(),
                    }),
                }),
                ..SentinelPodView::default()
            },
        );
    }

    /// A Sentinel just reset (it knows no replica yet) or seeing a replica
    /// down is not asked while another naming the primary knows more; of
    /// equals the first; one naming another primary never.
    #[test]
    fn the_sentinel_asked_knows_the_most_replicas_it_could_promote() {
        let mut state = ClusterState::default();
        sentinel(&mut state, "s-0", "demo-0", Vec::new());
        sentinel(
            &mut state,
            "s-1",
            "demo-0",
            vec![known("demo-1", &[]), known("demo-2", &["s_down"])],
        );
        sentinel(
            &mut state,
            "s-2",
            "demo-0",
            vec![known("demo-1", &[]), known("demo-2", &[])],
        );
        sentinel(
            &mut state,
            "s-3",
            "demo-9",
            vec![
                known("demo-1", &[]),
                known("demo-2", &[]),
                known("demo-3", &[]),
            ],
        );
        assert_eq!(sentinel_to_ask(&state, "demo-0").as_deref(), Some("s-2"));
        sentinel(
            &mut state,
            "s-1",
            "demo-0",
            vec![known("demo-1", &[]), known("demo-2", &[])],
        );
        assert_eq!(sentinel_to_ask(&state, "demo-0").as_deref(), Some("s-1"));
        assert_eq!(sentinel_to_ask(&state, "demo-5"), None);
    }
}
