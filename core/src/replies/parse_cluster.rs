//! Parsing of the Valkey Cluster replies: `CLUSTER NODES` and `CLUSTER
//! INFO` text, and the `CLUSTER SHARDS` and `CLUSTER GETSLOTMIGRATIONS`
//! arrays of maps.
//!
//! Pure functions over replies already received; no I/O happens here, so
//! every shape a server prints is tested from captured fixtures. Unknown
//! fields and flags are ignored (servers add them between versions: Valkey
//! 9 added a shard `id` to `CLUSTER SHARDS` and `cluster_nodes_pfail` to
//! `CLUSTER INFO`); a field the operator relies on that is missing or
//! malformed is an error naming it, never a silent default, because a slot
//! read wrong would be assigned twice or not at all.

use std::collections::BTreeMap;

use super::Reply;
use logbook_journal::cluster::SLOTS;
use logbook_journal::{MigrationPhase, MigrationSide, SlotMigrationJob, SlotRange};

use super::parse::{ParseError, Role};

/// A slot being moved, as the moving node's own `CLUSTER NODES` line shows
/// it (`[slot->-id]` or `[slot-<-id]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMigration {
    /// The slot.
    pub slot: u16,
    /// The other end: the node it goes to (migrating) or comes from
    /// (importing).
    pub node_id: String,
}

/// One line of `CLUSTER NODES`: one node as the answering node sees it.
///
/// The flags are kept as separate booleans, one per flag Valkey prints
/// (`noflags` sets none; flags this client does not know are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNodeLine {
    /// The node id (40 lowercase hex digits). While `handshake` is set it
    /// is a random placeholder: the node's real id is learned when the
    /// hand-shake completes, and the line is replaced.
    pub id: String,
    /// Its address; `None` when unknown (`:port@cport`, `:0@0`) — a node
    /// alone in its cluster does not know its own address yet.
    pub ip: Option<String>,
    /// Its client port.
    pub port: u16,
    /// Its cluster bus port.
    pub cport: u16,
    /// Its announced hostname (`ip:port@cport,hostname`), if any.
    pub hostname: Option<String>,
    /// `myself`: the line of the node answering.
    pub myself: bool,
    /// `master`: a primary (with or without slots).
    pub primary: bool,
    /// `slave`: a replica.
    pub replica: bool,
    /// `fail?`: the answering node cannot reach it (PFAIL), not yet agreed.
    pub suspected: bool,
    /// `fail`: a majority of primaries agreed it failed.
    pub failed: bool,
    /// `handshake`: being met; not yet a member.
    pub handshake: bool,
    /// `noaddr`: its address is unknown.
    pub noaddr: bool,
    /// `nofailover`: a replica that never starts a failover of its own
    /// (`cluster-replica-no-failover yes`).
    pub nofailover: bool,
    /// For a replica: its primary's node id (`-` when none).
    pub primary_id: Option<String>,
    /// When the answering node sent the ping still unanswered (Unix ms; 0
    /// when none is pending).
    pub ping_sent: u64,
    /// When the answering node last received a pong (Unix ms; 0 on its own
    /// line).
    pub pong_recv: u64,
    /// Its config epoch (a replica shows its primary's).
    pub config_epoch: u64,
    /// Whether the answering node's bus link to it is up (always on the
    /// `myself` line).
    pub connected: bool,
    /// Slots it owns, in the order listed. Import and migration markers are
    /// not ownership and are not here.
    pub slots: Vec<SlotRange>,
    /// Slots it is moving out (`[slot->-id]`; only on the `myself` line).
    pub migrating: Vec<SlotMigration>,
    /// Slots it is taking in (`[slot-<-id]`; only on the `myself` line).
    pub importing: Vec<SlotMigration>,
}

impl ClusterNodeLine {
    /// `master` → primary, `slave` → replica; `None` for neither (a node in
    /// hand-shake shows no role).
    pub fn role(&self) -> Option<Role> {
        if self.primary {
            Some(Role::Primary)
        } else if self.replica {
            Some(Role::Replica)
        } else {
            None
        }
    }

    /// How many slots it owns.
    pub fn slot_count(&self) -> u32 {
        self.slots
            .iter()
            .map(|r| u32::from(r.end.saturating_sub(r.start)).saturating_add(1))
            .sum()
    }
}

/// What `CLUSTER INFO` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterInfo {
    /// `cluster_state:ok`: every slot is served by a node not marked
    /// failed, as this node sees it.
    pub state_ok: bool,
    /// `cluster_slots_assigned`: slots some node owns.
    pub slots_assigned: u32,
    /// `cluster_slots_ok`: assigned slots whose owner is neither `fail` nor
    /// `fail?`.
    pub slots_ok: u32,
    /// `cluster_slots_pfail`: assigned slots whose owner is `fail?`.
    pub slots_pfail: u32,
    /// `cluster_slots_fail`: assigned slots whose owner is `fail`.
    pub slots_fail: u32,
    /// `cluster_known_nodes`, itself and nodes in hand-shake included.
    pub known_nodes: u32,
    /// `cluster_size`: primaries owning at least one slot.
    pub size: u32,
    /// `cluster_current_epoch`.
    pub current_epoch: u64,
    /// `cluster_my_epoch`: its config epoch (a replica shows its
    /// primary's).
    pub my_epoch: u64,
}

/// How a node of a shard is doing (`health` in `CLUSTER SHARDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardNodeHealth {
    /// `online`.
    Online,
    /// `fail`: agreed failed (a node only suspected, `fail?`, is still
    /// online here).
    Failed,
    /// `loading`: a replica whose replication offset is 0 — not synced
    /// yet, whether or not it is actually loading.
    Loading,
}

/// One node of a `CLUSTER SHARDS` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardNode {
    /// The node id (40 lowercase hex digits).
    pub id: String,
    /// Its address; `None` when unknown (empty).
    pub ip: Option<String>,
    /// Its preferred endpoint for clients (address or hostname); `None`
    /// when empty or `?`.
    pub endpoint: Option<String>,
    /// Its announced hostname, if any.
    pub hostname: Option<String>,
    /// Its plain-TCP client port; `None` when it serves TLS only.
    pub port: Option<u16>,
    /// Its TLS client port, if it has one.
    pub tls_port: Option<u16>,
    /// Primary or replica.
    pub role: Role,
    /// Its replication offset as the answering node knows it.
    pub replication_offset: u64,
    /// Its health.
    pub health: ShardNodeHealth,
}

/// One entry of `CLUSTER SHARDS`: a primary and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterShard {
    /// The shard id (Valkey 8 and later), if the server reports one.
    pub id: Option<String>,
    /// Slots the shard owns (empty for a primary without slots).
    pub slots: Vec<SlotRange>,
    /// Its nodes, primary and replicas in the server's order.
    pub nodes: Vec<ShardNode>,
}

fn missing(field: &str) -> ParseError {
    ParseError::Missing {
        field: field.to_owned(),
    }
}

fn malformed(field: &str, value: &str) -> ParseError {
    ParseError::Malformed {
        field: field.to_owned(),
        value: value.to_owned(),
    }
}

/// Puts `context` (the line, the shard) in front of the field an error
/// names.
fn within(context: &str, err: ParseError) -> ParseError {
    match err {
        ParseError::Missing { field } => ParseError::Missing {
            field: format!("{context}: {field}"),
        },
        ParseError::Malformed { field, value } => ParseError::Malformed {
            field: format!("{context}: {field}"),
            value,
        },
    }
}

fn number<T: std::str::FromStr>(field: &str, value: &str) -> Result<T, ParseError> {
    value.parse().map_err(|_| malformed(field, value))
}

fn slot(field: &str, value: &str) -> Result<u16, ParseError> {
    let slot: u16 = number(field, value)?;
    if u32::from(slot) >= SLOTS {
        return Err(malformed(field, value));
    }
    Ok(slot)
}

fn slot_range(field: &str, start: u16, end: u16) -> Result<SlotRange, ParseError> {
    if end < start {
        return Err(malformed(field, &format!("{start}-{end}")));
    }
    Ok(SlotRange { start, end })
}

fn node_id(field: &str, value: &str) -> Result<String, ParseError> {
    if value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(malformed(field, value))
    }
}

/// Parses one line of `CLUSTER NODES`:
/// `id ip:port@cport[,hostname] flags primary ping-sent pong-recv
/// config-epoch link-state [slot | start-end | [slot->-id] | [slot-<-id]]...`.
///
/// # Errors
///
/// [`ParseError`] naming the field (`id`, `address`, `master`,
/// `ping-sent`, `pong-recv`, `config-epoch`, `link-state`, `slot`) that is
/// missing or malformed.
pub fn parse_cluster_node_line(line: &str) -> Result<ClusterNodeLine, ParseError> {
    let mut fields = line.split_ascii_whitespace();
    let mut next = |name: &str| fields.next().ok_or_else(|| missing(name));
    let id = node_id("id", next("id")?)?;
    let address = next("address")?;
    let flags = next("flags")?;
    let primary_id = match next("master")? {
        "-" => None,
        id => Some(node_id("master", id)?),
    };
    let ping_sent = number("ping-sent", next("ping-sent")?)?;
    let pong_recv = number("pong-recv", next("pong-recv")?)?;
    let config_epoch = number("config-epoch", next("config-epoch")?)?;
    let connected = match next("link-state")? {
        "connected" => true,
        "disconnected" => false,
        other => return Err(malformed("link-state", other)),
    };
    let (ip, port, cport, hostname) = parse_address(address)?;

    let mut line = ClusterNodeLine {
        id,
        ip,
        port,
        cport,
        hostname,
        myself: false,
        primary: false,
        replica: false,
        suspected: false,
        failed: false,
        handshake: false,
        noaddr: false,
        nofailover: false,
        primary_id,
        ping_sent,
        pong_recv,
        config_epoch,
        connected,
        slots: Vec::new(),
        migrating: Vec::new(),
        importing: Vec::new(),
    };
    for flag in flags.split(',') {
        match flag {
            "myself" => line.myself = true,
            "master" | "primary" => line.primary = true,
            "slave" | "replica" => line.replica = true,
            "fail?" => line.suspected = true,
            "fail" => line.failed = true,
            "handshake" => line.handshake = true,
            "noaddr" => line.noaddr = true,
            "nofailover" => line.nofailover = true,
            // `noflags`, and flags added after this client was written.
            _ => {}
        }
    }
    for item in fields {
        if let Some(marker) = item.strip_prefix('[') {
            let inner = marker
                .strip_suffix(']')
                .ok_or_else(|| malformed("slot", item))?;
            if let Some((s, other)) = inner.split_once("->-") {
                line.migrating.push(SlotMigration {
                    slot: slot("slot", s)?,
                    node_id: node_id("slot", other)?,
                });
            } else if let Some((s, other)) = inner.split_once("-<-") {
                line.importing.push(SlotMigration {
                    slot: slot("slot", s)?,
                    node_id: node_id("slot", other)?,
                });
            } else {
                return Err(malformed("slot", item));
            }
            continue;
        }
        let range = match item.split_once('-') {
            Some((start, end)) => slot_range("slot", slot("slot", start)?, slot("slot", end)?)?,
            None => {
                let s = slot("slot", item)?;
                SlotRange { start: s, end: s }
            }
        };
        line.slots.push(range);
    }
    Ok(line)
}

/// `ip:port@cport[,hostname]`. The ip may be empty (unknown) or an IPv6
/// address, printed without brackets, so the port is after the last colon.
fn parse_address(address: &str) -> Result<(Option<String>, u16, u16, Option<String>), ParseError> {
    let (endpoint, hostname) = match address.split_once(',') {
        Some((endpoint, hostname)) => (endpoint, Some(hostname)),
        None => (address, None),
    };
    let (ip_port, cport) = endpoint
        .split_once('@')
        .ok_or_else(|| malformed("address", address))?;
    let (ip, port) = ip_port
        .rsplit_once(':')
        .ok_or_else(|| malformed("address", address))?;
    let port = number("address", port).map_err(|_| malformed("address", address))?;
    let cport = number("address", cport).map_err(|_| malformed("address", address))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Ok((
        (!ip.is_empty()).then(|| ip.to_owned()),
        port,
        cport,
        hostname.filter(|h| !h.is_empty()).map(str::to_owned),
    ))
}

/// Parses the whole `CLUSTER NODES` reply, one node per non-empty line.
///
/// # Errors
///
/// The first malformed line's [`ParseError`], its field prefixed with the
/// line number (`line 2: slot`).
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<ClusterNodeLine>, ParseError> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n.saturating_add(1), line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| parse_cluster_node_line(line).map_err(|e| within(&format!("line {n}"), e)))
        .collect()
}

/// Parses `CLUSTER INFO`.
///
/// # Errors
///
/// [`ParseError`] when `cluster_state`, a slot count, `cluster_known_nodes`,
/// `cluster_size` or an epoch is missing or malformed.
pub fn parse_cluster_info(text: &str) -> Result<ClusterInfo, ParseError> {
    let fields: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.trim_end_matches('\r').split_once(':'))
        .collect();
    let get = |field: &str| fields.get(field).copied().ok_or_else(|| missing(field));
    let num = |field: &str| get(field).and_then(|value| number::<u32>(field, value));
    let epoch = |field: &str| get(field).and_then(|value| number::<u64>(field, value));
    let state_ok = match get("cluster_state")? {
        "ok" => true,
        "fail" => false,
        other => return Err(malformed("cluster_state", other)),
    };
    Ok(ClusterInfo {
        state_ok,
        slots_assigned: num("cluster_slots_assigned")?,
        slots_ok: num("cluster_slots_ok")?,
        slots_pfail: num("cluster_slots_pfail")?,
        slots_fail: num("cluster_slots_fail")?,
        known_nodes: num("cluster_known_nodes")?,
        size: num("cluster_size")?,
        current_epoch: epoch("cluster_current_epoch")?,
        my_epoch: epoch("cluster_my_epoch")?,
    })
}

/// Parses the reply to `CLUSTER SHARDS`: an array of shards, each a map
/// (a flat key/value array in RESP2, a map in RESP3) of `slots` (a flat
/// array of start, end pairs) and `nodes` (an array of maps).
///
/// # Errors
///
/// [`ParseError`] naming the path of the field at fault, e.g.
/// `shards[1].nodes[0].health`.
pub fn parse_cluster_shards(reply: &Reply) -> Result<Vec<ClusterShard>, ParseError> {
    let Reply::Array(shards) = reply else {
        return Err(malformed("shards", &format!("{reply:?}")));
    };
    shards
        .iter()
        .enumerate()
        .map(|(i, shard)| parse_shard(&format!("shards[{i}]"), shard))
        .collect()
}

fn parse_shard(path: &str, value: &Reply) -> Result<ClusterShard, ParseError> {
    let mut id = None;
    let mut slots = None;
    let mut nodes = None;
    for (key, value) in map_entries(path, value)? {
        match key.as_str() {
            "id" => id = Some(node_id(&format!("{path}.id"), &string(path, "id", value)?)?),
            "slots" => slots = Some(parse_shard_slots(&format!("{path}.slots"), value)?),
            "nodes" => {
                let field = format!("{path}.nodes");
                let Reply::Array(items) = value else {
                    return Err(malformed(&field, &format!("{value:?}")));
                };
                nodes = Some(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, node)| parse_shard_node(&format!("{field}[{i}]"), node))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            _ => {}
        }
    }
    Ok(ClusterShard {
        id,
        slots: slots.ok_or_else(|| missing(&format!("{path}.slots")))?,
        nodes: nodes.ok_or_else(|| missing(&format!("{path}.nodes")))?,
    })
}

fn parse_shard_slots(field: &str, value: &Reply) -> Result<Vec<SlotRange>, ParseError> {
    let Reply::Array(items) = value else {
        return Err(malformed(field, &format!("{value:?}")));
    };
    let mut bounds = items.iter();
    let mut ranges = Vec::new();
    while let Some(start) = bounds.next() {
        let end = bounds
            .next()
            .ok_or_else(|| malformed(field, "an odd number of slot bounds"))?;
        let start = slot(field, &scalar(field, start)?)?;
        let end = slot(field, &scalar(field, end)?)?;
        ranges.push(slot_range(field, start, end)?);
    }
    Ok(ranges)
}

fn parse_shard_node(path: &str, value: &Reply) -> Result<ShardNode, ParseError> {
    let fields: BTreeMap<String, &Reply> = map_entries(path, value)?.into_iter().collect();
    let field = |key: &str| format!("{path}.{key}");
    let get = |key: &str| fields.get(key).copied();
    let text = |key: &str| match get(key) {
        Some(value) => string(path, key, value).map(Some),
        None => Ok(None),
    };
    let required = |key: &str| text(key)?.ok_or_else(|| missing(&field(key)));
    let port = |key: &str| -> Result<Option<u16>, ParseError> {
        text(key)?.map(|p| number(&field(key), &p)).transpose()
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty() && s != "?");

    let (port, tls_port) = (port("port")?, port("tls-port")?);
    if port.is_none() && tls_port.is_none() {
        return Err(missing(&field("port")));
    }
    let role = match required("role")?.as_str() {
        "master" | "primary" => Role::Primary,
        "replica" | "slave" => Role::Replica,
        other => return Err(malformed(&field("role"), other)),
    };
    let health = match required("health")?.as_str() {
        "online" => ShardNodeHealth::Online,
        "fail" | "failed" => ShardNodeHealth::Failed,
        "loading" => ShardNodeHealth::Loading,
        other => return Err(malformed(&field("health"), other)),
    };
    let offset = required("replication-offset")?;
    Ok(ShardNode {
        id: node_id(&field("id"), &required("id")?)?,
        ip: non_empty(text("ip")?),
        endpoint: non_empty(text("endpoint")?),
        hostname: non_empty(text("hostname")?),
        port,
        tls_port,
        role,
        replication_offset: number(&field("replication-offset"), &offset)?,
        health,
    })
}

/// Parses the reply to `CLUSTER GETSLOTMIGRATIONS` (Valkey 9): an array of
/// jobs, each a map (a flat field/value array in RESP2, a map in RESP3)
/// with `name`, `operation` (`EXPORT`/`IMPORT`), `slot_ranges`
/// (`"0-999 2000-2099"`), `source_node`, `target_node` (absent from a
/// replica's list: empty), `state`, `message` and `remaining_repl_size`. The times (`create_time`,
/// `last_update_time`, `last_ack_time`: Unix seconds) and `cow_size` are
/// not kept, and fields added by later servers are ignored.
///
/// # Errors
///
/// [`ParseError`] naming the path of the field at fault, e.g.
/// `migrations[1].slot_ranges`.
pub fn parse_slot_migrations(reply: &Reply) -> Result<Vec<SlotMigrationJob>, ParseError> {
    let Reply::Array(jobs) = reply else {
        return Err(malformed("migrations", &format!("{reply:?}")));
    };
    jobs.iter()
        .enumerate()
        .map(|(i, job)| parse_slot_migration(&format!("migrations[{i}]"), job))
        .collect()
}

fn parse_slot_migration(path: &str, value: &Reply) -> Result<SlotMigrationJob, ParseError> {
    let fields: BTreeMap<String, &Reply> = map_entries(path, value)?.into_iter().collect();
    let field = |key: &str| format!("{path}.{key}");
    let required = |key: &str| match fields.get(key) {
        Some(value) => string(path, key, value),
        None => Err(missing(&field(key))),
    };
    let side = match required("operation")?.as_str() {
        "EXPORT" | "export" => MigrationSide::Export,
        "IMPORT" | "import" => MigrationSide::Import,
        other => return Err(malformed(&field("operation"), other)),
    };
    // A replica lists the import jobs its primary ran without their two
    // ends (Valkey 9.1): empty, never a reason to refuse the whole list.
    let optional_node = |key: &str| match fields.get(key) {
        Some(value) => node_id(&field(key), &string(path, key, value)?),
        None => Ok(String::new()),
    };
    let state = required("state")?;
    if state.is_empty() {
        return Err(malformed(&field("state"), &state));
    }
    Ok(SlotMigrationJob {
        name: node_id(&field("name"), &required("name")?)?,
        side,
        source: optional_node("source_node")?,
        target: optional_node("target_node")?,
        slots: parse_slot_ranges(&field("slot_ranges"), &required("slot_ranges")?)?,
        phase: MigrationPhase::from_valkey(&state),
        message: required("message")?,
        remaining_repl_size: number(
            &field("remaining_repl_size"),
            &required("remaining_repl_size")?,
        )?,
    })
}

/// `"0-99 200-299 3300"`: ranges separated by spaces, a lone slot allowed.
fn parse_slot_ranges(field: &str, text: &str) -> Result<Vec<SlotRange>, ParseError> {
    let ranges = text
        .split_ascii_whitespace()
        .map(|item| match item.split_once('-') {
            Some((start, end)) => slot_range(field, slot(field, start)?, slot(field, end)?),
            None => slot(field, item).map(|s| SlotRange { start: s, end: s }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ranges.is_empty() {
        return Err(malformed(field, text));
    }
    Ok(ranges)
}

/// The key/value pairs of a map, whichever protocol version sent it.
fn map_entries<'v>(path: &str, value: &'v Reply) -> Result<Vec<(String, &'v Reply)>, ParseError> {
    value
        .pairs()
        .ok_or_else(|| malformed(path, &format!("{value:?}")))?
        .map(|(key, value)| Ok((scalar(path, key)?, value)))
        .collect()
}

fn string(path: &str, key: &str, value: &Reply) -> Result<String, ParseError> {
    scalar(&format!("{path}.{key}"), value)
}

/// A string or an integer as text: RESP2 servers may send numbers as bulk
/// strings, so both shapes are accepted wherever a number is expected.
fn scalar(field: &str, value: &Reply) -> Result<String, ParseError> {
    match value {
        Reply::BulkString(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| malformed(field, &String::from_utf8_lossy(bytes))),
        Reply::SimpleString(s) => Ok(s.clone()),
        Reply::VerbatimString { text, .. } => Ok(text.clone()),
        Reply::Int(n) => Ok(n.to_string()),
        other => Err(malformed(field, &format!("{other:?}"))),
    }
}

#[cfg(test)]
#[path = "parse_cluster_tests.rs"]
mod tests;
