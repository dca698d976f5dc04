//! Parsing of Valkey's replication replies: `INFO replication` text and the
//! `ROLE` array.
//!
//! Pure functions over bytes already received; no I/O happens here, so every
//! shape a server can print is tested from captured fixtures without a
//! server. Unknown lines are ignored (servers add fields between versions);
//! a field we rely on that is missing or malformed is an error naming it,
//! never a silent default, because a wrong offset would pick the wrong
//! replica to promote.

use std::collections::BTreeMap;

use super::Reply;

/// A failure to understand a reply, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A field the observers rely on is absent from the reply.
    #[error("field `{field}` is missing")]
    Missing {
        /// The field's name as the server prints it.
        field: String,
    },
    /// A field is present but its value has the wrong shape.
    #[error("field `{field}` has malformed value {value:?}")]
    Malformed {
        /// The field's name as the server prints it.
        field: String,
        /// The value as received (replication fields carry no secrets).
        value: String,
    },
}

/// Whether a server accepts writes or follows another server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A primary (`role:master`): accepts writes, may feed replicas.
    Primary,
    /// A replica (`role:slave`): follows a primary.
    Replica,
}

/// A replica's view of its link to its primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryLink {
    /// The primary's host as configured by `REPLICAOF`.
    pub host: String,
    /// The primary's port.
    pub port: u16,
    /// `master_link_status:up`.
    pub link_up: bool,
    /// Seconds since the last byte from the primary; `None` when never.
    pub last_io_seconds_ago: Option<u64>,
    /// A full synchronisation is running.
    pub sync_in_progress: bool,
    /// How far this replica has applied the primary's stream
    /// (`slave_repl_offset`).
    pub replica_offset: u64,
}

/// A replica as its primary lists it (`slave0:ip=...,port=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedReplica {
    /// The replica's announced address.
    pub ip: String,
    /// The replica's announced port.
    pub port: u16,
    /// Sync state: `online`, `wait_bgsave`, `send_bulk`, ...
    pub state: String,
    /// Offset the replica acknowledged.
    pub offset: u64,
    /// Seconds since the replica's last acknowledgement. The server
    /// prints `time(NULL)` (the kernel's coarse clock) less the time it
    /// stamped the ACK with (from its precise one), which is `-1` for a
    /// moment after a second begins: a negative lag is read as 0.
    pub lag: u64,
}

/// What `INFO replication` says about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationInfo {
    /// The server's current role.
    pub role: Role,
    /// The replication id of the history this server holds (`master_replid`,
    /// 40 hex digits).
    pub replid: String,
    /// The previous replication id kept after a promotion (`master_replid2`;
    /// all zeros when none).
    pub replid2: String,
    /// The server's position in its replication stream.
    pub master_repl_offset: u64,
    /// Present when the server is a replica.
    pub primary: Option<PrimaryLink>,
    /// Replicas connected to this server (usually only on a primary).
    pub replicas: Vec<ConnectedReplica>,
}

/// A replica as a primary's `ROLE` reply lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleReplica {
    /// The replica's announced address.
    pub ip: String,
    /// The replica's announced port.
    pub port: u16,
    /// Offset the replica acknowledged.
    pub offset: u64,
}

/// The `ROLE` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleReply {
    /// `["master", offset, [[ip, port, offset], ...]]`.
    Primary {
        /// The primary's replication offset.
        offset: u64,
        /// Its replicas with their acknowledged offsets.
        replicas: Vec<RoleReplica>,
    },
    /// `["slave", host, port, state, offset]`.
    Replica {
        /// The primary's host.
        host: String,
        /// The primary's port.
        port: u16,
        /// Link state: `connect`, `connecting`, `sync`, `connected`, ...
        state: String,
        /// Offset received so far; `None` before the first sync (`-1`).
        offset: Option<u64>,
    },
}

impl RoleReply {
    /// The role this reply reports.
    pub fn role(&self) -> Role {
        match self {
            RoleReply::Primary { .. } => Role::Primary,
            RoleReply::Replica { .. } => Role::Replica,
        }
    }
}

/// The address the operator's archive follower announces
/// (`REPLCONF ip-address`): a connection a server lists as a replica with
/// it is the archive's, not a replica's.
pub const ARCHIVER_ADDRESS: &str = "logbook-archive";

/// Parses the text of `INFO replication`.
///
/// # Errors
///
/// [`ParseError`] when `role`, `master_replid`, `master_repl_offset` or, on a
/// replica, the link fields are missing or malformed.
pub fn parse_info_replication(text: &str) -> Result<ReplicationInfo, ParseError> {
    let mut fields = BTreeMap::new();
    let mut replicas = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if is_replica_line(key) {
            let replica = parse_replica_line(key, value)?;
            // The operator's own archive follower is no replica: nothing
            // may count it as one (it holds no data a failover can use).
            if replica.ip != ARCHIVER_ADDRESS {
                replicas.push(replica);
            }
        } else {
            fields.insert(key, value);
        }
    }
    let f = Fields(fields);

    let role = match f.required(&["role"])?.1 {
        "master" | "primary" => Role::Primary,
        "slave" | "replica" => Role::Replica,
        other => return Err(malformed("role", other)),
    };
    let primary = match role {
        Role::Primary => None,
        Role::Replica => Some(parse_link(&f)?),
    };
    Ok(ReplicationInfo {
        role,
        replid: f.replid(&["master_replid", "primary_replid"])?,
        replid2: f.replid(&["master_replid2", "primary_replid2"])?,
        master_repl_offset: f.number(&["master_repl_offset", "primary_repl_offset"])?,
        primary,
        replicas,
    })
}

fn parse_link(f: &Fields<'_>) -> Result<PrimaryLink, ParseError> {
    let (field, status) = f.required(&["master_link_status", "primary_link_status"])?;
    let link_up = match status {
        "up" => true,
        "down" => false,
        other => return Err(malformed(field, other)),
    };
    Ok(PrimaryLink {
        host: f.required(&["master_host", "primary_host"])?.1.to_owned(),
        port: f.number(&["master_port", "primary_port"])?,
        link_up,
        last_io_seconds_ago: f
            .seconds_or_never(&["master_last_io_seconds_ago", "primary_last_io_seconds_ago"])?,
        sync_in_progress: f
            .number::<u8>(&["master_sync_in_progress", "primary_sync_in_progress"])?
            != 0,
        replica_offset: f.number(&["slave_repl_offset", "replica_repl_offset"])?,
    })
}

/// `slave0`, `slave12`, `replica3` — but not `slave_repl_offset` nor
/// `replicas_waiting_psync`, which share the prefix.
fn is_replica_line(key: &str) -> bool {
    ["slave", "replica"].iter().any(|prefix| {
        key.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn parse_replica_line(key: &str, value: &str) -> Result<ConnectedReplica, ParseError> {
    let pairs: BTreeMap<&str, &str> = value
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let get = |name: &str| {
        pairs.get(name).copied().ok_or_else(|| ParseError::Missing {
            field: format!("{key}.{name}"),
        })
    };
    Ok(ConnectedReplica {
        ip: get("ip")?.to_owned(),
        port: replica_number(key, "port", get("port")?)?,
        state: get("state")?.to_owned(),
        offset: replica_number(key, "offset", get("offset")?)?,
        lag: u64::try_from(replica_number::<i64>(key, "lag", get("lag")?)?).unwrap_or(0),
    })
}

/// The field `name` of the replica line `key`, read as a number.
fn replica_number<T: std::str::FromStr>(
    key: &str,
    name: &str,
    value: &str,
) -> Result<T, ParseError> {
    value
        .parse()
        .map_err(|_| malformed(&format!("{key}.{name}"), value))
}

/// The `key:value` lines of one INFO section, looked up by any of the names
/// a field has had (Valkey may rename `master_*` to `primary_*`).
struct Fields<'a>(BTreeMap<&'a str, &'a str>);

impl<'a> Fields<'a> {
    fn required(&self, names: &[&'a str]) -> Result<(&'a str, &'a str), ParseError> {
        names
            .iter()
            .find_map(|name| self.0.get(name).map(|value| (*name, *value)))
            .ok_or_else(|| ParseError::Missing {
                field: names.first().copied().unwrap_or_default().to_owned(),
            })
    }

    fn number<T: std::str::FromStr>(&self, names: &[&'a str]) -> Result<T, ParseError> {
        let (field, value) = self.required(names)?;
        value.parse().map_err(|_| malformed(field, value))
    }

    /// Valkey prints `-1` for "never"; any other negative is malformed.
    fn seconds_or_never(&self, names: &[&'a str]) -> Result<Option<u64>, ParseError> {
        let (field, value) = self.required(names)?;
        match value.parse::<i64>() {
            Ok(-1) => Ok(None),
            Ok(n) => u64::try_from(n)
                .map(Some)
                .map_err(|_| malformed(field, value)),
            Err(_) => Err(malformed(field, value)),
        }
    }

    fn replid(&self, names: &[&'a str]) -> Result<String, ParseError> {
        let (field, value) = self.required(names)?;
        if value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(value.to_owned())
        } else {
            Err(malformed(field, value))
        }
    }
}

fn malformed(field: &str, value: &str) -> ParseError {
    ParseError::Malformed {
        field: field.to_owned(),
        value: value.to_owned(),
    }
}

/// Parses the reply to `ROLE`.
///
/// # Errors
///
/// [`ParseError`] when the reply is not an array of the documented shape, or
/// names a role this client does not handle (`sentinel`).
pub fn parse_role(reply: &Reply) -> Result<RoleReply, ParseError> {
    let items = as_array(reply, "role")?;
    let mut items = items.iter();
    let role = text(items.next(), "role")?;
    match role.as_str() {
        "master" | "primary" => {
            let offset = non_negative(items.next(), "role.offset")?;
            let listed = match items.next() {
                None => &[][..],
                Some(value) => as_array(value, "role.replicas")?,
            };
            let replicas: Vec<RoleReplica> = listed
                .iter()
                .map(|entry| {
                    let fields = as_array(entry, "role.replicas")?;
                    let mut fields = fields.iter();
                    Ok(RoleReplica {
                        ip: text(fields.next(), "role.replica.ip")?,
                        port: port(fields.next(), "role.replica.port")?,
                        offset: non_negative(fields.next(), "role.replica.offset")?,
                    })
                })
                .collect::<Result<Vec<_>, ParseError>>()?
                .into_iter()
                .filter(|r| r.ip != ARCHIVER_ADDRESS)
                .collect();
            Ok(RoleReply::Primary { offset, replicas })
        }
        "slave" | "replica" => {
            let host = text(items.next(), "role.host")?;
            let port = port(items.next(), "role.port")?;
            let state = text(items.next(), "role.state")?;
            let offset = integer(items.next(), "role.offset")?;
            Ok(RoleReply::Replica {
                host,
                port,
                state,
                // -1 before the first byte of the stream arrived.
                offset: u64::try_from(offset).ok(),
            })
        }
        _ => Err(malformed("role", &role)),
    }
}

fn as_array<'v>(value: &'v Reply, field: &str) -> Result<&'v [Reply], ParseError> {
    match value {
        Reply::Array(items) => Ok(items),
        other => Err(malformed(field, &format!("{other:?}"))),
    }
}

/// RESP2 servers send numbers inside the replica list as bulk strings, so
/// both shapes are accepted wherever a number is expected.
fn text(value: Option<&Reply>, field: &str) -> Result<String, ParseError> {
    match value {
        Some(Reply::BulkString(bytes)) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Some(Reply::SimpleString(s)) => Ok(s.clone()),
        Some(Reply::Int(n)) => Ok(n.to_string()),
        Some(other) => Err(malformed(field, &format!("{other:?}"))),
        None => Err(ParseError::Missing {
            field: field.to_owned(),
        }),
    }
}

fn integer(value: Option<&Reply>, field: &str) -> Result<i64, ParseError> {
    let s = text(value, field)?;
    s.parse().map_err(|_| malformed(field, &s))
}

fn non_negative(value: Option<&Reply>, field: &str) -> Result<u64, ParseError> {
    let s = text(value, field)?;
    s.parse().map_err(|_| malformed(field, &s))
}

fn port(value: Option<&Reply>, field: &str) -> Result<u16, ParseError> {
    let s = text(value, field)?;
    s.parse().map_err(|_| malformed(field, &s))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
