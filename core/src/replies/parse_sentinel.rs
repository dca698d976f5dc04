//! Parsing of the Sentinel replies (`SENTINEL MASTER`, `REPLICAS`,
//! `SENTINELS`: flat field/value lists, one per instance), of its refusals
//! (`INPROG`, `NOGOODSLAVE`, ...) and of the text payloads of the events a
//! Sentinel publishes.
//!
//! Pure functions over replies already received; no I/O happens here, so
//! every shape is tested from captured fixtures. Unknown fields are ignored
//! (each release adds some: Valkey 9 added the `coordinated_failover` and
//! `force_failover` flags). A field the operator relies on that is missing
//! or malformed is an error naming it, never a silent default, because a
//! primary's address read wrong would send clients to the wrong server.
//!
//! Sentinel keeps the old words in its replies even on Valkey 9 (`master`,
//! `slave`, `num-slaves`, `master-link-status`); the `primary`/`replica`
//! spellings are accepted too wherever a future server may switch.
//!
//! Event payloads are parsed into `Option`s: an event is a hint to probe
//! sooner, never the truth of the topology, so one that does not parse is
//! dropped rather than failing the subscription.

use super::Reply;

use super::parse::ParseError;

/// A monitored primary as one Sentinel sees it (`SENTINEL MASTER <name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelPrimary {
    /// The name it is monitored under.
    pub name: String,
    /// The address Sentinel believes is the primary now.
    pub ip: String,
    /// Its port.
    pub port: u16,
    /// Its run id; `None` until Sentinel has read its `INFO`.
    pub run_id: Option<String>,
    /// `master`, `s_down`, `o_down`, `disconnected`,
    /// `failover_in_progress`, `force_failover`, `coordinated_failover`,
    /// ... in the server's order.
    pub flags: Vec<String>,
    /// The stage of a failover this Sentinel leads (`wait_start`,
    /// `select_slave`, `wait_promotion`, ...); `None` when there is none.
    pub failover_state: Option<String>,
    /// The epoch of the configuration that named this primary.
    pub config_epoch: u64,
    /// Replicas Sentinel knows of (reachable or not).
    pub num_slaves: u32,
    /// Other Sentinels monitoring the same name.
    pub num_other_sentinels: u32,
    /// Sentinels that must agree it is down before a failover.
    pub quorum: u32,
    /// `down-after-milliseconds`.
    pub down_after_ms: u64,
    /// `failover-timeout`, in milliseconds.
    pub failover_timeout_ms: u64,
    /// Replicas reconfigured at once after a failover.
    pub parallel_syncs: u32,
}

impl SentinelPrimary {
    /// Whether `flag` is among its flags.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// A replica of a monitored primary (one element of `SENTINEL REPLICAS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelReplica {
    /// Its address.
    pub ip: String,
    /// Its port.
    pub port: u16,
    /// Its run id; `None` until Sentinel has read its `INFO`.
    pub run_id: Option<String>,
    /// `slave`, `s_down`, `disconnected`, `promoted`, ...
    pub flags: Vec<String>,
    /// The primary it reports following; `None` when it reports none
    /// (Sentinel prints `?`).
    pub master_host: Option<String>,
    /// `master-link-status ok`: its replication link is up.
    pub master_link_ok: bool,
    /// `slave-priority` (or `replica-priority`): 0 never to be promoted.
    pub replica_priority: Option<u32>,
    /// `slave-repl-offset`: its replication offset at Sentinel's last
    /// `INFO`, refreshed every 10 s (every second during a failover).
    pub repl_offset: Option<u64>,
}

impl SentinelReplica {
    /// Whether `flag` is among its flags.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// Another Sentinel monitoring the same primary (one element of `SENTINEL
/// SENTINELS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelPeer {
    /// Its address.
    pub ip: String,
    /// Its port.
    pub port: u16,
    /// Its id (what `SENTINEL MYID` answers there).
    pub run_id: String,
    /// `sentinel`, `s_down`, `disconnected`, ...
    pub flags: Vec<String>,
}

/// One message a Sentinel published, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelEvent {
    /// The event's name (`+switch-master`, `+sdown`, ...).
    pub channel: String,
    /// Its text.
    pub payload: String,
}

/// The instance an event is about:
/// `<kind> <name> <ip> <port> [@ <master-name> <master-ip> <master-port>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceDetails {
    /// `master`, `slave` or `sentinel`.
    pub kind: String,
    /// The master's name, `ip:port` for a replica, the run id for a
    /// Sentinel.
    pub name: String,
    /// Its address.
    pub ip: String,
    /// Its port.
    pub port: u16,
    /// For a replica or a Sentinel: the master's name, ip and port.
    pub master: Option<(String, String, u16)>,
}

/// `+switch-master <master> <old-ip> <old-port> <new-ip> <new-port>`: a
/// Sentinel adopted a new primary for `master`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchMaster {
    /// The monitored name.
    pub master: String,
    /// The previous primary's address.
    pub old_ip: String,
    /// The previous primary's port.
    pub old_port: u16,
    /// The new primary's address.
    pub new_ip: String,
    /// The new primary's port.
    pub new_port: u16,
}

/// `+vote-for-leader <runid> <epoch>`: the publishing Sentinel voted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteForLeader {
    /// The Sentinel voted for.
    pub run_id: String,
    /// The epoch of the vote.
    pub epoch: u64,
}

/// What an event says, for the events the operator reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentinelNotice {
    /// `+switch-master`.
    SwitchMaster(SwitchMaster),
    /// `+vote-for-leader`.
    VoteForLeader(VoteForLeader),
    /// `+new-epoch`.
    NewEpoch(u64),
    /// Any other `+`/`-` event whose payload names an instance (`+sdown`,
    /// `+odown`, `+promoted-slave`, `-role-change`, ...); the channel says
    /// which.
    Instance(InstanceDetails),
}

/// Parses the reply to `SENTINEL MASTER <name>`.
///
/// # Errors
///
/// [`ParseError`] when the reply is not a field/value list or a field this
/// type holds (except `runid` and `failover-state`) is missing or
/// malformed.
pub fn parse_sentinel_master(reply: &Reply) -> Result<SentinelPrimary, ParseError> {
    let f = Fields::of("master", reply)?;
    let run_id = f.get(&["runid"]).filter(|id| !id.is_empty());
    Ok(SentinelPrimary {
        name: f.required(&["name"])?.to_owned(),
        ip: f.required(&["ip"])?.to_owned(),
        port: f.number(&["port"])?,
        run_id: run_id.map(str::to_owned),
        flags: flags(f.required(&["flags"])?),
        failover_state: f
            .get(&["failover-state"])
            .filter(|state| !state.is_empty() && *state != "none")
            .map(str::to_owned),
        config_epoch: f.number(&["config-epoch"])?,
        num_slaves: f.number(&["num-slaves", "num-replicas"])?,
        num_other_sentinels: f.number(&["num-other-sentinels"])?,
        quorum: f.number(&["quorum"])?,
        down_after_ms: f.number(&["down-after-milliseconds"])?,
        failover_timeout_ms: f.number(&["failover-timeout"])?,
        parallel_syncs: f.number(&["parallel-syncs"])?,
    })
}

/// Parses the reply to `SENTINEL REPLICAS <name>`.
///
/// # Errors
///
/// [`ParseError`] naming the element and field at fault (`[1].port`).
pub fn parse_sentinel_replicas(reply: &Reply) -> Result<Vec<SentinelReplica>, ParseError> {
    elements("replicas", reply)?
        .iter()
        .enumerate()
        .map(|(i, element)| parse_replica(&format!("[{i}]"), element))
        .collect()
}

/// Parses the reply to `SENTINEL SENTINELS <name>`.
///
/// # Errors
///
/// [`ParseError`] naming the element and field at fault (`[0].runid`).
pub fn parse_sentinel_sentinels(reply: &Reply) -> Result<Vec<SentinelPeer>, ParseError> {
    elements("sentinels", reply)?
        .iter()
        .enumerate()
        .map(|(i, element)| {
            let f = Fields::of(&format!("[{i}]"), element)?;
            Ok(SentinelPeer {
                ip: f.required(&["ip"])?.to_owned(),
                port: f.number(&["port"])?,
                run_id: f.required(&["runid"])?.to_owned(),
                flags: flags(f.required(&["flags"])?),
            })
        })
        .collect()
}

fn parse_replica(context: &str, element: &Reply) -> Result<SentinelReplica, ParseError> {
    let f = Fields::of(context, element)?;
    let (status_field, status) =
        f.required_named(&["master-link-status", "primary-link-status"])?;
    let master_link_ok = match status {
        "ok" => true,
        "err" => false,
        other => return Err(f.malformed(status_field, other)),
    };
    Ok(SentinelReplica {
        ip: f.required(&["ip"])?.to_owned(),
        port: f.number(&["port"])?,
        run_id: f
            .get(&["runid"])
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
        flags: flags(f.required(&["flags"])?),
        master_host: f
            .get(&["master-host", "primary-host"])
            .filter(|host| !host.is_empty() && *host != "?")
            .map(str::to_owned),
        master_link_ok,
        replica_priority: f.optional_number(&["slave-priority", "replica-priority"])?,
        repl_offset: f.optional_number(&["slave-repl-offset", "replica-repl-offset"])?,
    })
}

/// Splits `<kind> <name> <ip> <port> [@ <master-name> <master-ip>
/// <master-port>]`; words after that (`new reported role is master`,
/// `#quorum 1/1`) are ignored. `None` when the shape does not match.
pub fn parse_instance_details(payload: &str) -> Option<InstanceDetails> {
    let mut words = payload.split_whitespace();
    let kind = words.next()?;
    if !matches!(
        kind,
        "master" | "slave" | "sentinel" | "primary" | "replica"
    ) {
        return None;
    }
    let name = words.next()?;
    let ip = words.next()?;
    let port = words.next()?.parse().ok()?;
    let master = match words.next() {
        Some("@") => {
            let master_name = words.next()?;
            let master_ip = words.next()?;
            let master_port = words.next()?.parse().ok()?;
            Some((master_name.to_owned(), master_ip.to_owned(), master_port))
        }
        _ => None,
    };
    Some(InstanceDetails {
        kind: kind.to_owned(),
        name: name.to_owned(),
        ip: ip.to_owned(),
        port,
        master,
    })
}

/// Splits the payload of `+switch-master`.
pub fn parse_switch_master(payload: &str) -> Option<SwitchMaster> {
    let mut words = payload.split_whitespace();
    Some(SwitchMaster {
        master: words.next()?.to_owned(),
        old_ip: words.next()?.to_owned(),
        old_port: words.next()?.parse().ok()?,
        new_ip: words.next()?.to_owned(),
        new_port: words.next()?.parse().ok()?,
    })
}

/// Splits the payload of `+vote-for-leader`.
pub fn parse_vote_for_leader(payload: &str) -> Option<VoteForLeader> {
    let mut words = payload.split_whitespace();
    Some(VoteForLeader {
        run_id: words.next()?.to_owned(),
        epoch: words.next()?.parse().ok()?,
    })
}

/// The epoch in the payload of `+new-epoch`.
pub fn parse_new_epoch(payload: &str) -> Option<u64> {
    payload.split_whitespace().next()?.parse().ok()
}

/// What `event` says; `None` for events the operator does not read
/// (`+tilt`, Sentinel's hello messages) or whose payload does not parse.
pub fn parse_sentinel_event(event: &SentinelEvent) -> Option<SentinelNotice> {
    let payload = event.payload.as_str();
    match event.channel.as_str() {
        "+switch-master" => parse_switch_master(payload).map(SentinelNotice::SwitchMaster),
        "+vote-for-leader" => parse_vote_for_leader(payload).map(SentinelNotice::VoteForLeader),
        "+new-epoch" => parse_new_epoch(payload).map(SentinelNotice::NewEpoch),
        channel if channel.starts_with('+') || channel.starts_with('-') => {
            parse_instance_details(payload).map(SentinelNotice::Instance)
        }
        _ => None,
    }
}

fn flags(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|flag| !flag.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The instances of a `REPLICAS`/`SENTINELS` reply.
/// The timing parameter `parameter` (`info-period`, in any case) in milliseconds from
/// the reply to `SENTINEL DEBUG`; `None` when the reply leaves it out.
///
/// # Errors
///
/// [`ParseError`] when the reply is not a field/value list or the value
/// is not a number.
pub fn parse_sentinel_debug(reply: &Reply, parameter: &str) -> Result<Option<u64>, ParseError> {
    // The server names them in capitals (`INFO-PERIOD`) and sets them in
    // any case.
    let fields = Fields::of("debug", reply)?;
    fields
        .entries
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(parameter))
        .map(|(key, value)| value.parse().map_err(|_| fields.malformed(key, value)))
        .transpose()
}

fn elements<'v>(what: &str, reply: &'v Reply) -> Result<&'v [Reply], ParseError> {
    match reply {
        Reply::Array(items) | Reply::Set(items) => Ok(items),
        other => Err(ParseError::Malformed {
            field: what.to_owned(),
            value: format!("{other:?}"),
        }),
    }
}

/// One instance's fields, in the server's order. A list of a few dozen
/// pairs: a linear search is cheaper than building a map.
struct Fields {
    context: String,
    entries: Vec<(String, String)>,
}

impl Fields {
    /// The pairs of a RESP2 flat array or a RESP3 map.
    fn of(context: &str, value: &Reply) -> Result<Fields, ParseError> {
        let shape_error = || ParseError::Malformed {
            field: context.to_owned(),
            value: format!("{value:?}"),
        };
        let pairs = value.pairs().ok_or_else(shape_error)?;
        let mut entries = Vec::new();
        for (key, value) in pairs {
            let key = scalar(context, key)?;
            let value = scalar(&format!("{context}.{key}"), value)?;
            entries.push((key, value));
        }
        Ok(Fields {
            context: context.to_owned(),
            entries,
        })
    }

    /// The first of `names` present, with the name it was found under.
    fn get_named<'s, 'n>(&'s self, names: &[&'n str]) -> Option<(&'n str, &'s str)> {
        names.iter().find_map(|name| {
            self.entries
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| (*name, value.as_str()))
        })
    }

    fn get(&self, names: &[&str]) -> Option<&str> {
        self.get_named(names).map(|(_, value)| value)
    }

    fn required_named<'s, 'n>(
        &'s self,
        names: &[&'n str],
    ) -> Result<(&'n str, &'s str), ParseError> {
        self.get_named(names).ok_or_else(|| ParseError::Missing {
            field: self.field(names.first().copied().unwrap_or_default()),
        })
    }

    fn required(&self, names: &[&str]) -> Result<&str, ParseError> {
        self.required_named(names).map(|(_, value)| value)
    }

    fn number<T: std::str::FromStr>(&self, names: &[&str]) -> Result<T, ParseError> {
        let (name, value) = self.required_named(names)?;
        value.parse().map_err(|_| self.malformed(name, value))
    }

    fn optional_number<T: std::str::FromStr>(
        &self,
        names: &[&str],
    ) -> Result<Option<T>, ParseError> {
        self.get_named(names)
            .map(|(name, value)| value.parse().map_err(|_| self.malformed(name, value)))
            .transpose()
    }

    fn malformed(&self, name: &str, value: &str) -> ParseError {
        ParseError::Malformed {
            field: self.field(name),
            value: value.to_owned(),
        }
    }

    /// `port` for `SENTINEL MASTER`, `[1].port` for the second replica.
    fn field(&self, name: &str) -> String {
        if self.context.starts_with('[') {
            format!("{}.{name}", self.context)
        } else {
            name.to_owned()
        }
    }
}

/// A string or an integer as text (RESP3 servers may send numbers as
/// integers where RESP2 sends bulk strings).
fn scalar(field: &str, value: &Reply) -> Result<String, ParseError> {
    match value {
        Reply::BulkString(bytes) => {
            String::from_utf8(bytes.clone()).map_err(|_| ParseError::Malformed {
                field: field.to_owned(),
                value: String::from_utf8_lossy(bytes).into_owned(),
            })
        }
        Reply::SimpleString(s) => Ok(s.clone()),
        Reply::VerbatimString { text, .. } => Ok(text.clone()),
        Reply::Int(n) => Ok(n.to_string()),
        other => Err(ParseError::Malformed {
            field: field.to_owned(),
            value: format!("{other:?}"),
        }),
    }
}

#[cfg(test)]
#[path = "parse_sentinel_tests.rs"]
mod tests;
