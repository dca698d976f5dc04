//! Reading acknowledged writes back from a server, to count the ones a
//! failover lost. Read-only: it never writes or deletes a key.

use std::time::Duration;

use logbook::valkey::Password;

use super::BenchError;
use super::conn::{connect, query};

/// Keys read back per `MGET`: large enough to be quick, small enough that
/// one reply stays far below the server's output buffer limits.
const MGET_CHUNK: usize = 500;

/// The `acked` keys of prefix `prefix` that `addr` does not hold with their
/// own number as value, read back with `MGET` in chunks.
///
/// # Errors
///
/// [`BenchError`] when `addr` cannot be reached or a read fails.
pub async fn missing_keys(
    addr: &str,
    password: Option<&Password>,
    prefix: &str,
    acked: &[u64],
) -> Result<Vec<u64>, BenchError> {
    let limit = Duration::from_secs(5);
    let mut connection = connect(addr, password, limit).await?;
    let mut missing = Vec::new();
    for chunk in acked.chunks(MGET_CHUNK) {
        let mut mget = redis::cmd("MGET");
        for key in chunk {
            mget.arg(format!("{prefix}:{key}"));
        }
        let values: Vec<Option<String>> =
            query(&mut connection, &mget, addr, "MGET", limit).await?;
        if values.len() != chunk.len() {
            return Err(BenchError::Protocol {
                addr: addr.to_owned(),
                command: "MGET",
                detail: format!("{} values for {} keys", values.len(), chunk.len()),
            });
        }
        for (key, value) in chunk.iter().zip(values) {
            if value.as_deref() != Some(key.to_string().as_str()) {
                missing.push(*key);
            }
        }
    }
    Ok(missing)
}
