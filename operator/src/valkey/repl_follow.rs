//! A replica that stays: the continuous archive follows a shard's
//! replication stream as a sub-replica of one of its servers and hands
//! out every command with its offset and the time it arrived.
//!
//! The handshake is a real replica's (`replication.c`, `replconfCommand`
//! and `syncCommand`), without `rdb-only`: `AUTH`; `REPLCONF ip-address
//! logbook-archive` (Valkey keeps any string under `NET_HOST_STR_LEN`,
//! so `INFO replication` shows `slaveN:ip=logbook-archive,port=0,...`
//! and the operator can tell the archiver from a real replica);
//! `REPLCONF capa eof capa psync2`; `REPLCONF version`; then
//! `PSYNC <replid> <offset + 1>` to continue a position, or `PSYNC ? -1`
//! for a fresh start. `+FULLRESYNC` is followed by an RDB in either of
//! `rdb_stream`'s framings, then the stream; `+CONTINUE [<new replid>]`
//! by the stream at once.
//!
//! Positions are counts of stream bytes, as Valkey's `master_repl_offset`:
//! after `+FULLRESYNC <id> <n>` the stream's first byte is at offset `n`,
//! and a replica that holds everything up to `n` asks `PSYNC <id> n+1`.
//!
//! The source drops a replica that sends no `REPLCONF ACK` for
//! `repl-timeout`, and after a diskless transfer it starts the stream only
//! on the replica's first ACK: the follower acknowledges once the payload
//! is in, then every second, and answers `REPLCONF GETACK` at once. Its
//! ACK says what it received, not what the bucket holds: a `WAIT` on the
//! source counts it as a replica.
//!
//! This module owns the connection and the framing; it must not decide
//! where the records go, log anything, or format the password.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::client::Timeouts;
use super::rdb_stream::{
    Conn, Fill, Payload, RdbAuth, RdbFraming, SyncLine, authenticate, len_u64, parse_sync_line,
    refusal, show,
};
use super::tls::TlsSettings;
use crate::backup::segment::{MAX_RECORD, Record, command_len, command_name};
use logbook_core::replies::ProbeError;

/// How long the stream may stay silent before it counts as broken. The
/// source pings its replicas every `repl-ping-replica-period` (Logbook
/// sets 1 s), so several missed pings mean the link is gone.
pub const FOLLOW_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the follower announces as its address (see the module's comment);
/// the parsers of `INFO replication` and `ROLE` leave it out of a
/// server's replicas.
pub use logbook_core::replies::ARCHIVER_ADDRESS;

/// How often the follower acknowledges its offset.
const ACK_EVERY: Duration = Duration::from_secs(1);

/// The version announced with `REPLCONF version` (as `rdb_stream`: the
/// server then sends its own RDB format).
const ANY_VERSION: &[u8] = b"255.255.255";

/// A position in one replication history: every byte before `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplPosition {
    /// The history's replication id.
    pub replid: String,
    /// The offset of the next byte wanted.
    pub offset: u64,
}

/// How the source answered `PSYNC`.
#[derive(Debug)]
pub enum Opened {
    /// `+FULLRESYNC`: the RDB comes first (the position asked for, if
    /// any, was lost).
    Full {
        /// The history's id.
        replid: String,
        /// The RDB holds every write before this offset.
        offset: u64,
        /// The RDB, then the stream.
        payload: FullPayload,
    },
    /// `+CONTINUE`: the stream goes on from the position asked for.
    Continue {
        /// The history's id from here on: the one announced with
        /// `+CONTINUE`, or the one asked for when none was.
        replid: String,
        /// The stream.
        stream: ReplStream,
    },
}

/// Connects to `addr` as a replica and asks to continue `from`, or for a
/// full resynchronisation when `from` is `None`.
///
/// # Errors
/// [`ProbeError::Refused`] when nothing listens; [`ProbeError::TimedOut`]
/// when connecting or a handshake step exceeds `timeouts`;
/// [`ProbeError::AuthFailed`] for refused credentials or permissions;
/// [`ProbeError::Rejected`] when the server refuses a step (a replica
/// whose own link is down answers `PSYNC` with `NOMASTERLINK`);
/// [`ProbeError::Protocol`] for a reply that is not the protocol;
/// [`ProbeError::Io`] for a dropped connection or silence for `idle`.
pub async fn open_follower(
    addr: SocketAddr,
    auth: RdbAuth<'_>,
    tls: Option<&TlsSettings>,
    timeouts: Timeouts,
    from: Option<&ReplPosition>,
    idle: Duration,
) -> Result<Opened, ProbeError> {
    let mut conn = Conn::open(addr, tls, timeouts.connect).await?;
    authenticate(&mut conn, auth, timeouts.command).await?;
    let announce: [&[u8]; 3] = [b"REPLCONF", b"ip-address", ARCHIVER_ADDRESS.as_bytes()];
    let steps: [&[&[u8]]; 3] = [
        &announce,
        &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
        &[b"REPLCONF", b"version", ANY_VERSION],
    ];
    for step in steps {
        match conn.call(step, "REPLCONF", timeouts.command).await? {
            Ok(()) => {}
            // Servers before Valkey 8 do not know `version`.
            Err(text) if text.contains("Unrecognized REPLCONF option") => {}
            Err(text) => return Err(refusal(addr, "REPLCONF", text)),
        }
    }
    let offset_arg = from.map(|p| p.offset.saturating_add(1).to_string());
    let psync: Vec<&[u8]> = match (from, &offset_arg) {
        (Some(p), Some(offset)) => vec![b"PSYNC", p.replid.as_bytes(), offset.as_bytes()],
        _ => vec![b"PSYNC", b"?", b"-1"],
    };
    conn.send(&psync, "PSYNC").await?;
    let line = conn.line(idle, "waiting for the reply to PSYNC").await?;
    if let Some(rest) = line.strip_prefix(b"+CONTINUE") {
        let announced = String::from_utf8_lossy(rest).trim().to_owned();
        let (replid, offset) = match from {
            Some(p) => (p.replid.clone(), p.offset),
            None => {
                return Err(ProbeError::Protocol {
                    addr,
                    detail: "PSYNC ? -1 answered +CONTINUE".to_owned(),
                });
            }
        };
        let replid = if announced.is_empty() {
            replid
        } else {
            announced
        };
        let stream = ReplStream::new(conn, replid.clone(), offset, idle);
        return Ok(Opened::Continue { replid, stream });
    }
    let resync = match parse_sync_line(&line) {
        SyncLine::FullResync(resync) => resync,
        SyncLine::Error(text) => return Err(refusal(addr, "PSYNC", text)),
        other => return Err(other.unexpected(addr, "+FULLRESYNC or +CONTINUE")),
    };
    let waiting = "waiting for the RDB to begin (did the server's snapshot fail? see its log)";
    let (framing, payload) = match parse_sync_line(&conn.line(idle, waiting).await?) {
        SyncLine::Length(len) => (RdbFraming::Length(len), Payload::Length { remaining: len }),
        SyncLine::EofMark(mark) => (RdbFraming::EofMark, Payload::Mark { mark }),
        SyncLine::Error(text) => return Err(refusal(addr, "PSYNC", text)),
        other => return Err(other.unexpected(addr, "the RDB's $<length> or $EOF:<mark>")),
    };
    Ok(Opened::Full {
        replid: resync.replid.clone(),
        offset: resync.offset,
        payload: FullPayload {
            conn,
            replid: resync.replid,
            offset: resync.offset,
            framing,
            payload,
            idle,
            received: 0,
            finished: false,
        },
    })
}

/// The RDB of a full resynchronisation, before the stream.
pub struct FullPayload {
    conn: Conn,
    replid: String,
    offset: u64,
    framing: RdbFraming,
    payload: Payload,
    idle: Duration,
    received: u64,
    finished: bool,
}

impl std::fmt::Debug for FullPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FullPayload")
            .field("addr", &self.conn.addr)
            .field("replid", &self.replid)
            .field("offset", &self.offset)
            .field("framing", &self.framing)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl FullPayload {
    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.conn.addr
    }

    /// How the server framed the RDB.
    pub fn framing(&self) -> RdbFraming {
        self.framing
    }

    /// The next piece of the RDB, `None` after its last byte.
    ///
    /// # Errors
    /// [`ProbeError::Io`] when the connection closes before the RDB's
    /// end, drops, or stays silent for the idle timeout.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ProbeError> {
        loop {
            if self.finished {
                return Ok(None);
            }
            let taken = self.payload.take(&mut self.conn.buf);
            self.finished = taken.done;
            if let Some(bytes) = taken.bytes.filter(|b| !b.is_empty()) {
                self.received = self.received.saturating_add(len_u64(bytes.len()));
                return Ok(Some(bytes));
            }
            if self.finished {
                return Ok(None);
            }
            let step = format!("receiving the RDB after {} bytes", self.received);
            match self.conn.fill(self.idle).await? {
                Fill::Data => {}
                Fill::Closed => return Err(io(self.conn.addr, format!("{step}: closed"))),
                Fill::Idle => {
                    return Err(io(
                        self.conn.addr,
                        format!("{step}: nothing for {:?}", self.idle),
                    ));
                }
            }
        }
    }

    /// The stream after the RDB, acknowledged at once (the source starts
    /// it on the first ACK after a diskless transfer).
    ///
    /// # Errors
    /// [`ProbeError::Protocol`] when the RDB was not read to its end;
    /// [`ProbeError::Io`] when the ACK cannot be sent.
    pub async fn into_stream(self) -> Result<ReplStream, ProbeError> {
        if !self.finished {
            return Err(ProbeError::Protocol {
                addr: self.conn.addr,
                detail: format!(
                    "the stream was asked for after {} bytes of the RDB, before its end",
                    self.received
                ),
            });
        }
        let mut stream = ReplStream::new(self.conn, self.replid, self.offset, self.idle);
        stream.ack(stream.offset).await?;
        Ok(stream)
    }
}

/// The replication stream, cut into whole commands.
pub struct ReplStream {
    conn: Conn,
    replid: String,
    /// The offset of the next byte not yet handed out as a record.
    offset: u64,
    idle: Duration,
    last_ack: Instant,
    last_data: Instant,
}

impl std::fmt::Debug for ReplStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplStream")
            .field("addr", &self.conn.addr)
            .field("replid", &self.replid)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl ReplStream {
    fn new(conn: Conn, replid: String, offset: u64, idle: Duration) -> Self {
        let now = Instant::now();
        ReplStream {
            conn,
            replid,
            offset,
            idle,
            last_ack: now,
            last_data: now,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.conn.addr
    }

    /// How long the stream may stay silent from now on (the handshake
    /// and the RDB may be given longer).
    pub fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
    }

    /// The position after the last record handed out.
    pub fn position(&self) -> ReplPosition {
        ReplPosition {
            replid: self.replid.clone(),
            offset: self.offset,
        }
    }

    /// The next whole commands with their offsets and the wall-clock time
    /// their last bytes arrived: at least one, or none when nothing whole
    /// arrived by `until` (so that the caller can act on time while the
    /// source is quiet; it pings only every `repl-ping-replica-period`).
    /// Sends `REPLCONF ACK` every second meanwhile and answers `REPLCONF
    /// GETACK`.
    ///
    /// # Errors
    /// [`ProbeError::Io`] when the connection closes or drops, or nothing
    /// (not even the source's `PING`) arrives for the idle timeout;
    /// [`ProbeError::Protocol`] for bytes that are not commands.
    pub async fn next_records(&mut self, until: Instant) -> Result<Vec<Record>, ProbeError> {
        loop {
            let records = self.take_records(wall_ms())?;
            if !records.is_empty() {
                self.answer(&records).await?;
                return Ok(records);
            }
            if self.last_ack.elapsed() >= ACK_EVERY {
                self.ack(self.offset).await?;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            let wait = ACK_EVERY.saturating_sub(self.last_ack.elapsed()).min(left);
            let step = format!("following the stream at offset {}", self.offset);
            match self.conn.fill(wait.max(Duration::from_millis(10))).await? {
                Fill::Data => self.last_data = Instant::now(),
                Fill::Closed => return Err(io(self.conn.addr, format!("{step}: closed"))),
                Fill::Idle if self.last_data.elapsed() >= self.idle => {
                    return Err(io(
                        self.conn.addr,
                        format!("{step}: nothing for {:?}", self.idle),
                    ));
                }
                Fill::Idle => {}
            }
        }
    }

    /// Cuts the whole commands off the buffer.
    fn take_records(&mut self, now_ms: i64) -> Result<Vec<Record>, ProbeError> {
        let mut out = Vec::new();
        while let Some(len) = command_len(&self.conn.buf) {
            let bytes = self.conn.buf.split_to(len).to_vec();
            let offset = self.offset;
            self.offset = offset.saturating_add(len_u64(len));
            out.push(Record {
                offset,
                received_ms: now_ms,
                bytes,
            });
        }
        let buffered = &self.conn.buf;
        if buffered.first().is_some_and(|b| *b != b'*') || buffered.len() > MAX_RECORD {
            return Err(ProbeError::Protocol {
                addr: self.conn.addr,
                detail: format!(
                    "the stream at offset {} is not a command: {}",
                    self.offset,
                    show(buffered.get(..buffered.len().min(80)).unwrap_or_default())
                ),
            });
        }
        Ok(out)
    }

    /// Answers each `REPLCONF GETACK` among `records` with the offset
    /// before it (as Valkey's replica, which acknowledges what it had
    /// processed when the request came), and acknowledges when due.
    async fn answer(&mut self, records: &[Record]) -> Result<(), ProbeError> {
        for r in records {
            if command_name(&r.bytes).as_deref() == Some("replconf")
                && r.bytes
                    .windows(6)
                    .any(|w| w.eq_ignore_ascii_case(b"GETACK"))
            {
                self.ack(r.offset).await?;
            }
        }
        if self.last_ack.elapsed() >= ACK_EVERY {
            self.ack(self.offset).await?;
        }
        Ok(())
    }

    async fn ack(&mut self, offset: u64) -> Result<(), ProbeError> {
        let offset = offset.to_string();
        let cmd = super::rdb_stream::encode_command(&[b"REPLCONF", b"ACK", offset.as_bytes()]);
        let addr = self.conn.addr;
        let fail = |err: std::io::Error| io(addr, format!("sending REPLCONF ACK {offset}: {err}"));
        self.conn.io.write_all(&cmd).await.map_err(fail)?;
        self.conn.io.flush().await.map_err(fail)?;
        self.last_ack = Instant::now();
        Ok(())
    }
}

/// Milliseconds since the epoch (0 before it).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn io(addr: SocketAddr, detail: String) -> ProbeError {
    ProbeError::Io { addr, detail }
}
