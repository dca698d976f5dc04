//! The data of a reshard run: N keys loaded before it, pipelined straight
//! to each slot's primary, and the read-back after it — every loaded key
//! and every acknowledged write, each `GET` from the primary that owns its
//! slot once the reshard is done.
//!
//! Loading and reading are grouped by owner and pipelined in batches of
//! [`BATCH`], all owners at once: a million keys take seconds, not the
//! minutes one round trip per key would. A key whose pipelined reply is
//! not its value (a redirection, a stale map) is read once more through
//! the cluster client, which follows `MOVED` and `ASK`, before it counts
//! as lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use logbook::valkey::Password;
use redis::Value;

use crate::BenchError;
use crate::cluster_client::{ClusterClient, slot_map};
use crate::conn::{connect, query};
use crate::slots::{SlotMap, key_slot};

/// Commands per pipelined batch.
const BATCH: usize = 1000;

/// Deadline of one batch.
const BATCH_LIMIT: Duration = Duration::from_secs(60);

/// Deadline of the replicas catching up after the load.
const WAIT_REPLICAS_MS: u64 = 60_000;

/// The name of loaded key `i`.
pub(crate) fn loaded_key(i: u64) -> String {
    format!("bench:reshard:{i}")
}

/// The value of loaded key `i`: its number, padded with dots to `bytes`
/// (longer when the number is).
pub(crate) fn loaded_value(i: u64, bytes: usize) -> String {
    format!("{i:.<bytes$}")
}

/// Key number `i` (a `usize` index always fits).
fn index(i: usize) -> u64 {
    u64::try_from(i).unwrap_or(u64::MAX)
}

/// Indices `0..n` grouped by the primary `map` says owns `key_of(i)`.
fn by_owner(
    map: &SlotMap,
    n: usize,
    key_of: &(dyn Fn(usize) -> String + Sync),
) -> Result<HashMap<Arc<str>, Vec<usize>>, BenchError> {
    let mut groups: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let key = key_of(i);
        let slot = key_slot(key.as_bytes());
        let owner = map.owner(slot).ok_or_else(|| BenchError::Protocol {
            addr: "the slot map".to_owned(),
            command: "CLUSTER SLOTS",
            detail: format!("slot {slot} of {key} has no owner"),
        })?;
        groups.entry(Arc::clone(owner)).or_default().push(i);
    }
    Ok(groups)
}

/// Loads keys `0..keys` (`SET` [`loaded_key`] [`loaded_value`]), then,
/// with `replicas`, waits until each primary's replicas have them all.
///
/// # Errors
/// [`BenchError`] when a primary cannot be reached, refuses a write, or
/// its replicas do not catch up within a minute.
pub(crate) async fn load_keys(
    seeds: &[String],
    password: Option<&Password>,
    keys: u64,
    value_bytes: usize,
    replicas: usize,
) -> Result<(), BenchError> {
    let map = slot_map(seeds, password).await?;
    let n = usize::try_from(keys).unwrap_or(usize::MAX);
    let key_of = |i: usize| loaded_key(index(i));
    let groups = by_owner(&map, n, &key_of)?;
    try_join_all(groups.iter().map(|(owner, indices)| async move {
        let mut connection = connect(owner, password, BATCH_LIMIT).await?;
        for chunk in indices.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for i in chunk {
                let i = index(*i);
                pipe.cmd("SET")
                    .arg(loaded_key(i))
                    .arg(loaded_value(i, value_bytes))
                    .ignore();
            }
            tokio::time::timeout(BATCH_LIMIT, pipe.query_async::<()>(&mut connection))
                .await
                .map_err(|_| BenchError::TimedOut {
                    what: format!("a batch of SET on {owner}"),
                    after_ms: BATCH_LIMIT.as_millis(),
                    detail: String::new(),
                })?
                .map_err(|source| BenchError::Valkey {
                    addr: owner.to_string(),
                    command: "SET",
                    source,
                })?;
        }
        if replicas > 0 {
            let mut wait = redis::cmd("WAIT");
            wait.arg(replicas).arg(WAIT_REPLICAS_MS);
            let limit = Duration::from_millis(WAIT_REPLICAS_MS).saturating_add(BATCH_LIMIT);
            let got: i64 = query(&mut connection, &wait, owner, "WAIT", limit).await?;
            if usize::try_from(got).unwrap_or(0) < replicas {
                return Err(BenchError::Protocol {
                    addr: owner.to_string(),
                    command: "WAIT",
                    detail: format!("{got} of {replicas} replicas have the loaded keys"),
                });
            }
        }
        Ok::<(), BenchError>(())
    }))
    .await?;
    Ok(())
}

/// How many of the `n` keys `key_of(i)` do not hold `value_of(i)`, each
/// read from the primary that owns its slot now.
///
/// # Errors
/// [`BenchError`] when a primary cannot be read (a key it holds wrong is
/// a count, not an error).
pub(crate) async fn count_missing(
    seeds: &[String],
    password: Option<&Password>,
    n: usize,
    key_of: &(dyn Fn(usize) -> String + Sync),
    value_of: &(dyn Fn(usize) -> String + Sync),
) -> Result<usize, BenchError> {
    let map = slot_map(seeds, password).await?;
    let groups = by_owner(&map, n, key_of)?;
    let suspects = try_join_all(groups.iter().map(|(owner, indices)| async move {
        let mut connection = connect(owner, password, BATCH_LIMIT).await?;
        let mut suspects = Vec::new();
        for chunk in indices.chunks(BATCH) {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for i in chunk {
                pipe.cmd("GET").arg(key_of(*i));
            }
            let replies: Vec<Value> =
                tokio::time::timeout(BATCH_LIMIT, pipe.query_async(&mut connection))
                    .await
                    .map_err(|_| BenchError::TimedOut {
                        what: format!("a batch of GET on {owner}"),
                        after_ms: BATCH_LIMIT.as_millis(),
                        detail: String::new(),
                    })?
                    .map_err(|source| BenchError::Valkey {
                        addr: owner.to_string(),
                        command: "GET",
                        source,
                    })?;
            if replies.len() != chunk.len() {
                return Err(BenchError::Protocol {
                    addr: owner.to_string(),
                    command: "GET",
                    detail: format!("{} replies to {} reads", replies.len(), chunk.len()),
                });
            }
            for (i, reply) in chunk.iter().zip(&replies) {
                if !holds(reply, &value_of(*i)) {
                    suspects.push(*i);
                }
            }
        }
        Ok::<Vec<usize>, BenchError>(suspects)
    }))
    .await?;
    let mut client = ClusterClient::new(
        seeds.to_vec(),
        password.cloned(),
        Duration::from_secs(2),
        Duration::from_secs(2),
    );
    let mut missing = 0usize;
    for i in suspects.into_iter().flatten() {
        let key = key_of(i);
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let mut found = false;
        let mut read = String::from("no answer");
        for _ in 0..3 {
            match client.route(key.as_bytes(), &get).await {
                (_, Ok(reply)) => {
                    found = holds(&reply, &value_of(i));
                    read = format!("{reply:?}");
                    break;
                }
                (_, Err(err)) => {
                    read = format!("{err:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        if !found {
            tracing::warn!(
                key = %key,
                slot = crate::slots::key_slot(key.as_bytes()),
                read = %read,
                "lost: not read back with its value"
            );
            missing = missing.saturating_add(1);
        }
    }
    Ok(missing)
}

fn holds(reply: &Value, want: &str) -> bool {
    match reply {
        Value::BulkString(bytes) => bytes.as_slice() == want.as_bytes(),
        Value::SimpleString(s) => s == want,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_number_padded() {
        assert_eq!(loaded_value(42, 6), "42....");
        assert_eq!(loaded_value(123_456, 3), "123456");
        assert_eq!(loaded_key(7), "bench:reshard:7");
        assert!(holds(&Value::BulkString(b"42....".to_vec()), "42...."));
        assert!(!holds(&Value::Nil, "42"));
    }
}
