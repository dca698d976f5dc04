//! A real command that keeps a server busy for about a second: `SORT` of a
//! list of numbers, the list sized on the server it runs on. A primary
//! running it answers nothing else meanwhile, exactly as a frozen one, and
//! the failover benches check that the operator waits it out (no failover)
//! where it fails a frozen primary over. The list is replicated like any
//! data, so it is there on whichever pod is primary later.

use std::time::{Duration, Instant};

use logbook::valkey::Password;

use super::BenchError;
use super::conn::{connect, query};

/// The list `SORT` sorts (in a Cluster, one per shard: see [`list_in`]).
pub const LIST: &str = "bench:slow-sort";

/// A list name whose slot is among `ranges` (inclusive): in a Cluster the
/// list must live on the shard whose primary is to be kept busy.
pub fn list_in(ranges: &[(u16, u16)]) -> Option<String> {
    (0..100_000u32)
        .map(|n| format!("{LIST}:{{{n}}}"))
        .find(|name| {
            let slot = crate::slots::key_slot(name.as_bytes());
            ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot))
        })
}
/// How long the command should keep the server busy when it is sized:
/// 15 % over a second, since later runs of the same command went up to
/// 11 % faster than the sizing one (a list sized at 1005 ms then took 890
/// to 940 ms), and the row is meant to hold the server at least a second.
pub const TARGET: Duration = Duration::from_millis(1_150);
/// The longest list made: a server where even this sorts faster than
/// [`TARGET`] gets a shorter block, and the bench says how long.
const MAX_LEN: u64 = 16_000_000;
/// Numbers pushed per `RPUSH`.
const CHUNK: u64 = 10_000;
/// How long one command may take before the harness gives up.
const LIMIT: Duration = Duration::from_secs(30);

/// The list's length and how long its `SORT` took, as prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sized {
    /// Numbers in the list.
    pub len: u64,
    /// How long one `SORT` of it took, reply included, when it was sized.
    pub took: Duration,
}

/// Grows the list on `addr` (a primary) until one `SORT` of it takes at
/// least [`TARGET`] (or the list reaches [`MAX_LEN`]).
///
/// # Errors
/// The server refusing or not answering within 30 s.
pub async fn prepare(
    addr: &str,
    password: Option<&Password>,
    list: &str,
) -> Result<Sized, BenchError> {
    let mut connection = connect(addr, password, LIMIT).await?;
    let mut len: u64 = query(
        &mut connection,
        redis::cmd("LLEN").arg(list),
        addr,
        "LLEN",
        LIMIT,
    )
    .await?;
    let mut want = len.max(250_000);
    loop {
        // Pseudo-random numbers (a fixed LCG): a sorted input would sort
        // faster than a real one.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ len;
        while len < want {
            let n = CHUNK.min(want - len);
            let mut push = redis::cmd("RPUSH");
            push.arg(list);
            for _ in 0..n {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                push.arg(x >> 20);
            }
            len = query(&mut connection, &push, addr, "RPUSH", LIMIT).await?;
        }
        let took = sort(&mut connection, addr, list).await?;
        if took >= TARGET || len >= MAX_LEN {
            return Ok(Sized { len, took });
        }
        // Sorting is n log n: a little more than proportional, at most 4x
        // per step so a fast first measurement does not overshoot far.
        let ratio = (TARGET.as_secs_f64() / took.as_secs_f64().max(0.001)) * 1.15;
        let grown = (len as f64 * ratio.clamp(1.1, 4.0)) as u64;
        want = grown.min(MAX_LEN);
    }
}

/// `DEBUG SLEEP 1` on `addr` (a server started with
/// `enable-debug-command local`, reached from this host): the block the
/// slow command is compared with.
///
/// # Errors
/// The server refusing or not answering within 3 s.
pub async fn debug_sleep(addr: &str, password: Option<&Password>) -> Result<(), BenchError> {
    let socket = addr.parse().map_err(|_| BenchError::BadAddress {
        addr: addr.to_owned(),
    })?;
    let admin = logbook::valkey::ValkeyClient::new(
        logbook::valkey::Timeouts {
            connect: Duration::from_secs(1),
            command: Duration::from_secs(3),
        },
        password.cloned(),
    );
    admin
        .debug_sleep(socket, 1)
        .await
        .map_err(|e| BenchError::Protocol {
            addr: addr.to_owned(),
            command: "DEBUG SLEEP",
            detail: e.to_string(),
        })
}

/// One `SORT` of the list on `addr`: how long the caller waited for it.
///
/// # Errors
/// The server refusing or not answering within 30 s.
pub async fn run(
    addr: &str,
    password: Option<&Password>,
    list: &str,
) -> Result<Duration, BenchError> {
    let mut connection = connect(addr, password, LIMIT).await?;
    sort(&mut connection, addr, list).await
}

async fn sort(
    connection: &mut redis::aio::MultiplexedConnection,
    addr: &str,
    list: &str,
) -> Result<Duration, BenchError> {
    let started = Instant::now();
    let _: redis::Value = query(
        connection,
        redis::cmd("SORT").arg(list),
        addr,
        "SORT",
        LIMIT,
    )
    .await?;
    Ok(started.elapsed())
}
