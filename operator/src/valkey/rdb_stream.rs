//! An RDB snapshot of a live server taken over the replication protocol,
//! as `valkey-cli --rdb` takes it but streamed, and the check of RDB bytes
//! (magic, trailing CRC-64) that backups and restores run on any stream.
//!
//! The handshake is a replica's, reduced to what a snapshot needs
//! (`replication.c`, `replconfCommand` and `syncCommand`): `AUTH`;
//! `REPLCONF rdb-only 1` (the server keeps no replication buffer for us
//! and closes the connection once the RDB is sent); `REPLCONF capa eof
//! capa psync2` (we understand the diskless framing); `REPLCONF version`
//! (the server's own RDB format, see `ANY_VERSION`); then `PSYNC ? -1`,
//! which forces a full resynchronisation and is answered `+FULLRESYNC
//! <replid> <offset>`, or `SYNC` when `PSYNC` is refused (it announces
//! neither).
//!
//! The payload comes in one of two framings: `$EOF:<40-byte
//! mark>\r\n<rdb><mark>` when the server streams the fork's output
//! straight to the socket (`repl-diskless-sync yes`, the default: nothing
//! touches its disk), or `$<len>\r\n<rdb>` when it saved the RDB to its
//! disk first (`repl-diskless-sync no`: the snapshot is then also its
//! `dump.rdb`). Until the fork starts (`repl-diskless-sync-delay` seconds
//! on a diskless server, or while another fork runs) the server sends a
//! bare `\n` every second; those keepalives are skipped.
//!
//! This module owns the connection and the framing. It must not decide
//! where the bytes go, log anything, or format the password: errors name
//! the address and what went wrong, never the `AUTH` arguments.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::client::Timeouts;
use super::crc64::Crc64;
use super::socket::{Duplex, connect_within};
use super::tls::{Connector, TlsSettings};
use crate::credentials::Password;
use logbook_core::replies::{Phase, ProbeError};

/// How long the stream may stay silent (no payload byte and no keepalive)
/// before it counts as stalled. Generous: a large fork takes time to
/// start, and a busy server may pause the transfer.
pub const RDB_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The length of the diskless transfer's end mark (`RDB_EOF_MARK_SIZE`).
pub(super) const EOF_MARK_LEN: usize = 40;

/// The longest protocol line accepted before the payload (the longest real
/// one, `+FULLRESYNC <40> <offset>`, is under 80 bytes).
const MAX_LINE: usize = 4096;

/// The version announced with `REPLCONF version`: above any release (it is
/// what an unreleased Valkey calls itself), so the server picks its newest
/// RDB format.
const ANY_VERSION: &[u8] = b"255.255.255";

/// How much one read asks of the socket.
pub(super) const READ_SIZE: usize = 64 * 1024;

/// Who to authenticate as: `AUTH user password`, or `AUTH password` (the
/// `default` user) when the user is `None`. `None` sends no `AUTH`.
pub type RdbAuth<'a> = Option<(Option<&'a str>, &'a Password)>;

/// The replication position a snapshot was taken at, from
/// `+FULLRESYNC <replid> <offset>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullResync {
    /// The server's replication id (for a replica, its primary's).
    pub replid: String,
    /// The replication offset the RDB corresponds to.
    pub offset: u64,
}

/// How the server framed the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdbFraming {
    /// `$<len>`: the server saved the RDB on its own disk, then sent the
    /// file (`repl-diskless-sync no`).
    Length(u64),
    /// `$EOF:<mark>`: streamed from the fork to the socket, ended by the
    /// mark; the server's disk was not touched.
    EofMark,
}

/// What the server announced before the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbSnapshot {
    /// The position, or `None` after a plain `SYNC` (which announces none).
    pub resync: Option<FullResync>,
    /// The payload's framing.
    pub framing: RdbFraming,
}

/// An RDB being received from one server, after the handshake.
///
/// [`next_chunk`](Self::next_chunk) yields exactly the RDB file's bytes:
/// no protocol framing, the end mark stripped.
pub struct RdbStream {
    conn: Conn,
    snapshot: RdbSnapshot,
    payload: Payload,
    idle: Duration,
    /// Payload bytes handed out so far.
    received: u64,
    /// The payload ended where its framing says.
    finished: bool,
}

impl std::fmt::Debug for RdbStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbStream")
            .field("addr", &self.conn.addr)
            .field("snapshot", &self.snapshot)
            .field("received", &self.received)
            .field("finished", &self.finished)
            .finish()
    }
}

/// Connects to `addr` and asks for an RDB snapshot (see the module's
/// comment), with [`RDB_IDLE_TIMEOUT`].
///
/// # Errors
/// [`ProbeError::Refused`] when nothing listens; [`ProbeError::TimedOut`]
/// when connecting, `AUTH` or `REPLCONF` exceed `timeouts`;
/// [`ProbeError::AuthFailed`] when the credentials or the user's
/// permissions are refused; [`ProbeError::Rejected`] when the server
/// refuses the synchronisation (`NOMASTERLINK` on a replica whose link is
/// down); [`ProbeError::Protocol`] for a reply that is not the replication
/// protocol; [`ProbeError::Io`] for an unusable TLS setting, a dropped
/// connection or a server silent for [`RDB_IDLE_TIMEOUT`].
pub async fn open_rdb_stream(
    addr: SocketAddr,
    auth: RdbAuth<'_>,
    tls: Option<&TlsSettings>,
    timeouts: Timeouts,
) -> Result<RdbStream, ProbeError> {
    open_rdb_stream_with_idle(addr, auth, tls, timeouts, RDB_IDLE_TIMEOUT).await
}

/// [`open_rdb_stream`] with another idle timeout.
///
/// # Errors
/// As [`open_rdb_stream`].
pub async fn open_rdb_stream_with_idle(
    addr: SocketAddr,
    auth: RdbAuth<'_>,
    tls: Option<&TlsSettings>,
    timeouts: Timeouts,
    idle: Duration,
) -> Result<RdbStream, ProbeError> {
    let mut conn = Conn::open(addr, tls, timeouts.connect).await?;
    authenticate(&mut conn, auth, timeouts.command).await?;
    // Without rdb-only (servers before 7.0) the server would go on with the
    // command stream after the RDB; we close after it all the same.
    match conn
        .call(
            &[b"REPLCONF", b"rdb-only", b"1"],
            "REPLCONF",
            timeouts.command,
        )
        .await?
    {
        Err(text) if !text.contains("Unrecognized REPLCONF option") => {
            return Err(refusal(addr, "REPLCONF", text));
        }
        Ok(()) | Err(_) => {}
    }
    if let Err(text) = conn
        .call(
            &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
            "REPLCONF",
            timeouts.command,
        )
        .await?
    {
        return Err(refusal(addr, "REPLCONF", text));
    }
    // A replica that does not say its version gets RDB 11 from Valkey 9,
    // which cannot hold what only RDB 80 encodes (hash fields with a TTL):
    // the fork fails and so would the backup. Ours reads every version,
    // so it announces the highest one and gets the server's own format,
    // the one its BGSAVE writes. Servers before Valkey 8 do not know the
    // option and write their only format.
    match conn
        .call(
            &[b"REPLCONF", b"version", ANY_VERSION],
            "REPLCONF",
            timeouts.command,
        )
        .await?
    {
        Err(text) if !text.contains("Unrecognized REPLCONF option") => {
            return Err(refusal(addr, "REPLCONF", text));
        }
        Ok(()) | Err(_) => {}
    }
    conn.send(&[b"PSYNC", b"?", b"-1"], "PSYNC").await?;
    let resync = match parse_sync_line(&conn.line(idle, "waiting for the reply to PSYNC").await?) {
        SyncLine::FullResync(resync) => Some(resync),
        SyncLine::Error(text) if falls_back_to_sync(&text) => {
            conn.send(&[b"SYNC"], "SYNC").await?;
            None
        }
        SyncLine::Error(text) => return Err(refusal(addr, "PSYNC", text)),
        other => return Err(other.unexpected(addr, "+FULLRESYNC")),
    };
    let command = if resync.is_some() { "PSYNC" } else { "SYNC" };
    // A server whose snapshot fork fails closes the connection here.
    let waiting = "waiting for the RDB to begin (did the server's snapshot fail? see its log)";
    let (framing, payload) = match parse_sync_line(&conn.line(idle, waiting).await?) {
        SyncLine::Length(len) => (RdbFraming::Length(len), Payload::Length { remaining: len }),
        SyncLine::EofMark(mark) => (RdbFraming::EofMark, Payload::Mark { mark }),
        SyncLine::Error(text) => return Err(refusal(addr, command, text)),
        other => return Err(other.unexpected(addr, "the RDB's $<length> or $EOF:<mark>")),
    };
    Ok(RdbStream {
        conn,
        snapshot: RdbSnapshot { resync, framing },
        payload,
        idle,
        received: 0,
        finished: false,
    })
}

impl RdbStream {
    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.conn.addr
    }

    /// What the server announced.
    pub fn snapshot(&self) -> &RdbSnapshot {
        &self.snapshot
    }

    /// RDB bytes handed out so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The RDB's total length, once [`next_chunk`](Self::next_chunk) has
    /// returned `None`.
    pub fn total(&self) -> Option<u64> {
        self.finished.then_some(self.received)
    }

    /// The next piece of the RDB, `None` after its last byte.
    ///
    /// # Errors
    /// [`ProbeError::Io`] when the connection closes before the announced
    /// length or the end mark (a truncated RDB), drops, or stays silent
    /// for the idle timeout.
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
            match self.conn.fill(self.idle).await? {
                Fill::Data => {}
                Fill::Closed => return Err(self.closed_early()),
                Fill::Idle => {
                    return Err(ProbeError::Io {
                        addr: self.conn.addr,
                        detail: format!(
                            "RDB transfer stalled: nothing received for {:?} after {} bytes",
                            self.idle, self.received
                        ),
                    });
                }
            }
        }
    }

    fn closed_early(&self) -> ProbeError {
        let detail = match self.snapshot.framing {
            RdbFraming::Length(len) => format!(
                "connection closed after {} of the announced {len} bytes of the RDB",
                self.received
            ),
            RdbFraming::EofMark => format!(
                "connection closed after {} bytes of the RDB, before its end mark",
                self.received.saturating_add(len_u64(self.conn.buf.len()))
            ),
        };
        ProbeError::Io {
            addr: self.conn.addr,
            detail,
        }
    }
}

/// The connection during and after the handshake: the socket and what
/// has been read from it but not consumed.
pub(super) struct Conn {
    pub(super) addr: SocketAddr,
    pub(super) io: Box<dyn Duplex>,
    pub(super) buf: BytesMut,
}

/// What one read brought.
pub(super) enum Fill {
    Data,
    Closed,
    Idle,
}

impl Conn {
    pub(super) async fn open(
        addr: SocketAddr,
        tls: Option<&TlsSettings>,
        limit: Duration,
    ) -> Result<Conn, ProbeError> {
        let connector = tls
            .map(Connector::new)
            .transpose()
            .map_err(|err| ProbeError::Io {
                addr,
                detail: format!("TLS settings cannot be used: {err}"),
            })?;
        let io = connect_within(addr, connector.as_ref(), limit).await?;
        Ok(Conn {
            addr,
            io,
            buf: BytesMut::with_capacity(READ_SIZE),
        })
    }

    /// Sends one command. `name` is what errors call it: never its
    /// arguments, which may hold the password.
    pub(super) async fn send(&mut self, args: &[&[u8]], name: &str) -> Result<(), ProbeError> {
        let addr = self.addr;
        let io_error = |err: std::io::Error| ProbeError::Io {
            addr,
            detail: format!("sending {name}: {err}"),
        };
        self.io
            .write_all(&encode_command(args))
            .await
            .map_err(io_error)?;
        self.io.flush().await.map_err(io_error)
    }

    /// Sends one command and reads its one-line reply: `Ok` for `+...`,
    /// the error's text for `-...`.
    pub(super) async fn call(
        &mut self,
        args: &[&[u8]],
        name: &'static str,
        limit: Duration,
    ) -> Result<Result<(), String>, ProbeError> {
        self.send(args, name).await?;
        let line = match timeout(
            limit,
            self.line(limit, &format!("waiting for the reply to {name}")),
        )
        .await
        {
            Ok(line) => line?,
            Err(_) => {
                return Err(ProbeError::TimedOut {
                    addr: self.addr,
                    phase: Phase::Command,
                    after_ms: limit.as_millis(),
                });
            }
        };
        match line.split_first() {
            Some((b'+', _)) => Ok(Ok(())),
            Some((b'-', text)) => Ok(Err(String::from_utf8_lossy(text).into_owned())),
            _ => Err(ProbeError::Protocol {
                addr: self.addr,
                detail: format!("{name}: expected +OK or an error, got {}", show(&line)),
            }),
        }
    }

    /// The next non-empty line (without its line ending); bare newlines,
    /// the server's keepalives, are skipped. Each read may wait `idle`.
    pub(super) async fn line(
        &mut self,
        idle: Duration,
        waiting: &str,
    ) -> Result<Vec<u8>, ProbeError> {
        loop {
            while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let raw = self.buf.split_to(end.saturating_add(1));
                let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    return Ok(line.to_vec());
                }
            }
            if self.buf.len() > MAX_LINE {
                return Err(ProbeError::Protocol {
                    addr: self.addr,
                    detail: format!(
                        "{waiting}: no line end in the first {MAX_LINE} bytes of the reply"
                    ),
                });
            }
            match self.fill(idle).await? {
                Fill::Data => {}
                Fill::Closed => {
                    return Err(ProbeError::Io {
                        addr: self.addr,
                        detail: format!("connection closed while {waiting}"),
                    });
                }
                Fill::Idle => {
                    return Err(ProbeError::TimedOut {
                        addr: self.addr,
                        phase: Phase::Command,
                        after_ms: idle.as_millis(),
                    });
                }
            }
        }
    }

    /// Reads what the socket has, waiting at most `idle`.
    pub(super) async fn fill(&mut self, idle: Duration) -> Result<Fill, ProbeError> {
        self.buf.reserve(READ_SIZE);
        match timeout(idle, self.io.read_buf(&mut self.buf)).await {
            Err(_) => Ok(Fill::Idle),
            Ok(Ok(0)) => Ok(Fill::Closed),
            Ok(Ok(_)) => Ok(Fill::Data),
            Ok(Err(err)) => Err(ProbeError::Io {
                addr: self.addr,
                detail: format!("reading the replication stream: {err}"),
            }),
        }
    }
}

/// Sends `AUTH` when `auth` asks for it.
///
/// # Errors
/// [`ProbeError::AuthFailed`] with the server's code only: nothing of the
/// `AUTH` exchange is formatted.
pub(super) async fn authenticate(
    conn: &mut Conn,
    auth: RdbAuth<'_>,
    limit: Duration,
) -> Result<(), ProbeError> {
    let Some((user, password)) = auth else {
        return Ok(());
    };
    let mut args: Vec<&[u8]> = vec![b"AUTH"];
    if let Some(user) = user {
        args.push(user.as_bytes());
    }
    args.push(password.expose().as_bytes());
    match conn.call(&args, "AUTH", limit).await? {
        Ok(()) => Ok(()),
        Err(text) => Err(ProbeError::AuthFailed {
            addr: conn.addr,
            code: first_word(&text),
        }),
    }
}

/// A command in RESP, as a client sends it.
pub(super) fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One line of the server's answer to `PSYNC` / `SYNC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SyncLine {
    /// `+FULLRESYNC <replid> <offset>`.
    FullResync(FullResync),
    /// `$<len>`.
    Length(u64),
    /// `$EOF:<mark>`.
    EofMark([u8; EOF_MARK_LEN]),
    /// `-<text>`.
    Error(String),
    /// Anything else, e.g. `+CONTINUE` (a partial resynchronisation, which
    /// `PSYNC ? -1` never asks for).
    Other(String),
}

impl SyncLine {
    pub(super) fn unexpected(self, addr: SocketAddr, expected: &str) -> ProbeError {
        let got = match self {
            SyncLine::FullResync(r) => format!("+FULLRESYNC {} {}", r.replid, r.offset),
            SyncLine::Length(len) => format!("${len}"),
            SyncLine::EofMark(_) => "$EOF:<mark>".to_owned(),
            SyncLine::Error(text) => format!("-{text}"),
            SyncLine::Other(text) => text,
        };
        ProbeError::Protocol {
            addr,
            detail: format!("expected {expected}, got {got}"),
        }
    }
}

pub(super) fn parse_sync_line(line: &[u8]) -> SyncLine {
    let other = || SyncLine::Other(show(line));
    if let Some(rest) = line.strip_prefix(b"+FULLRESYNC ") {
        let text = String::from_utf8_lossy(rest);
        let mut words = text.split_whitespace();
        return match (
            words.next(),
            words.next().map(str::parse::<u64>),
            words.next(),
        ) {
            (Some(replid), Some(Ok(offset)), None) if !replid.is_empty() => {
                SyncLine::FullResync(FullResync {
                    replid: replid.to_owned(),
                    offset,
                })
            }
            _ => other(),
        };
    }
    if let Some(rest) = line.strip_prefix(b"$EOF:") {
        return match rest.get(..EOF_MARK_LEN).map(<[u8; EOF_MARK_LEN]>::try_from) {
            Some(Ok(mark)) => SyncLine::EofMark(mark),
            _ => other(),
        };
    }
    if let Some(rest) = line.strip_prefix(b"$") {
        return match std::str::from_utf8(rest).map(str::parse::<u64>) {
            Ok(Ok(len)) => SyncLine::Length(len),
            _ => other(),
        };
    }
    if let Some(rest) = line.strip_prefix(b"-") {
        return SyncLine::Error(String::from_utf8_lossy(rest).into_owned());
    }
    other()
}

/// `PSYNC` refused as a command (an ACL user allowed `SYNC` only, a server
/// without it), not for the state of replication: `SYNC` may then work.
fn falls_back_to_sync(text: &str) -> bool {
    text.starts_with("NOPERM") || text.starts_with("ERR unknown command")
}

/// A server's error reply as [`ProbeError`]: a permission refusal is an
/// authentication failure, anything else a rejection of `command`.
pub(super) fn refusal(addr: SocketAddr, command: &'static str, text: String) -> ProbeError {
    let code = first_word(&text);
    if matches!(code.as_str(), "NOAUTH" | "NOPERM" | "WRONGPASS") {
        ProbeError::AuthFailed { addr, code }
    } else {
        ProbeError::Rejected {
            addr,
            command,
            message: text,
        }
    }
}

pub(super) fn first_word(text: &str) -> String {
    text.split_whitespace().next().unwrap_or("ERR").to_owned()
}

/// A protocol line for an error message: printable, bounded.
pub(super) fn show(line: &[u8]) -> String {
    let shown: String = line
        .iter()
        .take(80)
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    if line.len() > 80 {
        format!("{shown}...")
    } else {
        shown
    }
}

pub(super) fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Where the payload ends: after a count of bytes, or before the mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Payload {
    Length { remaining: u64 },
    Mark { mark: [u8; EOF_MARK_LEN] },
    Done,
}

/// What [`Payload::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Taken {
    /// RDB bytes, when any can be handed out.
    pub(super) bytes: Option<Bytes>,
    /// The payload ended with these bytes.
    pub(super) done: bool,
}

impl Payload {
    /// Takes the RDB bytes that `buf` holds, leaving what may still be the
    /// end mark (its last 40 bytes) and anything after the payload.
    pub(super) fn take(&mut self, buf: &mut BytesMut) -> Taken {
        match self {
            Payload::Done => Taken {
                bytes: None,
                done: true,
            },
            Payload::Length { remaining } => {
                let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                let bytes = buf.split_to(n).freeze();
                *remaining = remaining.saturating_sub(len_u64(n));
                let done = *remaining == 0;
                if done {
                    *self = Payload::Done;
                }
                Taken {
                    bytes: Some(bytes),
                    done,
                }
            }
            Payload::Mark { mark } => {
                if buf.ends_with(mark.as_slice()) {
                    let bytes = buf
                        .split_to(buf.len().saturating_sub(EOF_MARK_LEN))
                        .freeze();
                    buf.clear();
                    *self = Payload::Done;
                    return Taken {
                        bytes: Some(bytes),
                        done: true,
                    };
                }
                let keep = buf.len().min(EOF_MARK_LEN);
                let bytes = buf.split_to(buf.len().saturating_sub(keep)).freeze();
                Taken {
                    bytes: Some(bytes),
                    done: false,
                }
            }
        }
    }
}

/// The magic and version: `REDIS` and 4 digits up to RDB 11, `VALKEY` and
/// 3 digits from RDB 80 (Valkey 9.0, `rdbSaveRio`).
const HEADER_LEN: usize = 9;

/// The trailer checked at the end: the EOF opcode, then the CRC-64
/// (little-endian).
const TRAILER_LEN: usize = 9;

/// `RDB_OPCODE_EOF`.
const EOF_OPCODE: u8 = 0xFF;

/// The first RDB version with the trailing checksum.
const FIRST_CHECKSUMMED_VERSION: u32 = 5;

/// Whether the RDB's own checksum was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdbCrc {
    /// The stored CRC-64 matches the bytes (the value).
    Verified(u64),
    /// The stored CRC-64 is 0: the server ran with `rdbchecksum no`.
    NotChecksummed,
}

/// What [`RdbCheck::finish`] found in a whole RDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdbReport {
    /// Its length.
    pub bytes: u64,
    /// The RDB format version from its magic (11 for Valkey 8, 80 for 9).
    pub rdb_version: u32,
    /// Its checksum.
    pub crc: RdbCrc,
}

/// Why bytes are not a whole RDB.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdbCheckError {
    /// Fewer bytes than the smallest RDB (header, EOF opcode, checksum).
    #[error("truncated: {bytes} bytes, fewer than the {min} of the smallest RDB")]
    Truncated {
        /// The bytes seen.
        bytes: u64,
        /// The smallest RDB's length.
        min: u64,
    },
    /// The first 9 bytes are not an RDB magic and version.
    #[error("not an RDB: it starts with \"{found}\", not REDIS<4 digits> or VALKEY<3 digits>")]
    BadMagic {
        /// The first bytes, escaped.
        found: String,
    },
    /// An RDB version older than the trailing checksum.
    #[error("RDB version {version} predates the checksum (version 5); not supported")]
    TooOld {
        /// The version from the magic.
        version: u32,
    },
    /// The byte before the checksum is not the EOF opcode: the RDB was cut
    /// short (or is not an RDB).
    #[error("truncated: the byte before the checksum is {found:#04x}, not the EOF opcode 0xff")]
    NoEofOpcode {
        /// The byte found.
        found: u8,
    },
    /// The stored CRC-64 does not match the bytes.
    #[error("RDB checksum mismatch: the RDB says {stored:#018x}, its bytes give {computed:#018x}")]
    ChecksumMismatch {
        /// The CRC-64 in the last 8 bytes.
        stored: u64,
        /// The CRC-64 of the bytes before them.
        computed: u64,
    },
}

/// Checks an RDB fed piece by piece: its magic as soon as 9 bytes are in,
/// its EOF opcode and CRC-64 at [`finish`](Self::finish). Holds at most 18
/// bytes, whatever the RDB's size.
pub struct RdbCheck {
    bytes: u64,
    header: Vec<u8>,
    version: Option<u32>,
    /// The CRC-64 (Jones, as `crc64.c`) of the bytes before the tail.
    digest: Crc64,
    /// The last bytes seen, not yet in the digest: they may be the trailer.
    tail: Vec<u8>,
}

impl std::fmt::Debug for RdbCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbCheck")
            .field("bytes", &self.bytes)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Default for RdbCheck {
    fn default() -> Self {
        RdbCheck::new()
    }
}

impl RdbCheck {
    /// A check that has seen nothing yet.
    pub fn new() -> Self {
        RdbCheck {
            bytes: 0,
            header: Vec::with_capacity(HEADER_LEN),
            version: None,
            digest: Crc64::new(),
            tail: Vec::with_capacity(TRAILER_LEN.saturating_mul(2)),
        }
    }

    /// The bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Takes the next piece.
    ///
    /// # Errors
    /// [`RdbCheckError::BadMagic`] or [`RdbCheckError::TooOld`] as soon as
    /// the first 9 bytes are in; the same error again on every later call.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), RdbCheckError> {
        self.bytes = self.bytes.saturating_add(len_u64(chunk.len()));
        if self.header.len() < HEADER_LEN {
            let wanted = HEADER_LEN.saturating_sub(self.header.len());
            self.header
                .extend_from_slice(chunk.get(..wanted.min(chunk.len())).unwrap_or_default());
        }
        if self.header.len() == HEADER_LEN && self.version.is_none() {
            self.version = Some(parse_magic(&self.header)?);
        }
        // Everything but the last TRAILER_LEN bytes goes into the digest.
        let overflow = self
            .tail
            .len()
            .saturating_add(chunk.len())
            .saturating_sub(TRAILER_LEN);
        let from_tail = overflow.min(self.tail.len());
        self.digest
            .update(self.tail.get(..from_tail).unwrap_or_default());
        self.tail.drain(..from_tail);
        let from_chunk = overflow.saturating_sub(from_tail);
        self.digest
            .update(chunk.get(..from_chunk).unwrap_or_default());
        self.tail
            .extend_from_slice(chunk.get(from_chunk..).unwrap_or_default());
        Ok(())
    }

    /// The verdict on everything fed.
    ///
    /// # Errors
    /// Any [`RdbCheckError`]: too short, bad magic, no EOF opcode before
    /// the checksum, checksum mismatch.
    pub fn finish(mut self) -> Result<RdbReport, RdbCheckError> {
        // A wrong magic says more than a short length: check it first.
        let version = match self.version {
            Some(version) => Some(version),
            None if self.header.len() == HEADER_LEN => Some(parse_magic(&self.header)?),
            None => None,
        };
        let min = len_u64(HEADER_LEN.saturating_add(TRAILER_LEN));
        let (Some(version), true) = (version, self.bytes >= min) else {
            return Err(RdbCheckError::Truncated {
                bytes: self.bytes,
                min,
            });
        };
        let Some((&opcode, stored)) = self.tail.split_first() else {
            return Err(RdbCheckError::Truncated {
                bytes: self.bytes,
                min,
            });
        };
        if opcode != EOF_OPCODE {
            return Err(RdbCheckError::NoEofOpcode { found: opcode });
        }
        let stored = <[u8; 8]>::try_from(stored)
            .map(u64::from_le_bytes)
            .map_err(|_| RdbCheckError::Truncated {
                bytes: self.bytes,
                min,
            })?;
        self.digest.update(&[opcode]);
        let computed = self.digest.value();
        let crc = if stored == 0 {
            RdbCrc::NotChecksummed
        } else if stored == computed {
            RdbCrc::Verified(computed)
        } else {
            return Err(RdbCheckError::ChecksumMismatch { stored, computed });
        };
        Ok(RdbReport {
            bytes: self.bytes,
            rdb_version: version,
            crc,
        })
    }
}

/// The RDB version from the 9-byte magic.
fn parse_magic(header: &[u8]) -> Result<u32, RdbCheckError> {
    let digits = header
        .strip_prefix(b"REDIS")
        .or_else(|| header.strip_prefix(b"VALKEY"));
    let version = digits
        .filter(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit))
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse::<u32>().ok());
    match version {
        None => Err(RdbCheckError::BadMagic {
            found: show(header),
        }),
        Some(version) if version < FIRST_CHECKSUMMED_VERSION => {
            Err(RdbCheckError::TooOld { version })
        }
        Some(version) => Ok(version),
    }
}

#[cfg(test)]
#[path = "rdb_stream_tests.rs"]
mod tests;
