//! Parsing of `CLUSTER NODES` and `CLUSTER INFO`: text in, data out, no
//! I/O. Every malformed line is an error naming the field, never a panic.

use logbook_journal::SlotRange;

use super::parse::ParseError;

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNodeLine {
    /// The node id (40 hex characters).
    pub id: String,
    /// Its address (`None` when the line shows none: `:0@0`).
    pub ip: Option<String>,
    /// Its client port.
    pub port: u16,
    /// `myself`: the line of the node answering.
    pub myself: bool,
    /// `master`.
    pub primary: bool,
    /// `fail?`: suspected by the answering node.
    pub suspected: bool,
    /// `fail`: agreed failed.
    pub failed: bool,
    /// `handshake`: being met.
    pub handshake: bool,
    /// `noaddr`: address unknown.
    pub noaddr: bool,
    /// For a replica: its primary's node id.
    pub primary_id: Option<String>,
    /// Its config epoch.
    pub config_epoch: u64,
    /// Whether the answering node's link to it is connected.
    pub connected: bool,
    /// Slots it serves, in the order listed (importing and migrating
    /// markers are not ownership and are left out).
    pub slots: Vec<SlotRange>,
    /// Slots being migrated out of or into it (`[slot->-id]`, `[slot-<-id]`).
    pub migrating: Vec<u16>,
}

/// What `CLUSTER INFO` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterInfo {
    /// `cluster_state:ok`.
    pub state_ok: bool,
    /// `cluster_slots_assigned`.
    pub slots_assigned: u32,
    /// `cluster_known_nodes`.
    pub known_nodes: u32,
    /// `cluster_size`: primaries serving at least one slot.
    pub size: u32,
    /// `cluster_current_epoch`.
    pub current_epoch: u64,
    /// `cluster_my_epoch`.
    pub my_epoch: u64,
}

fn malformed(field: &str, value: &str) -> ParseError {
    ParseError::Malformed {
        field: field.to_owned(),
        value: value.to_owned(),
    }
}

fn number<T: std::str::FromStr>(field: &str, value: &str) -> Result<T, ParseError> {
    value.parse().map_err(|_| malformed(field, value))
}

fn slot(field: &str, value: &str) -> Result<u16, ParseError> {
    let slot: u16 = number(field, value)?;
    if u32::from(slot) >= logbook_journal::cluster::SLOTS {
        return Err(malformed(field, value));
    }
    Ok(slot)
}

fn node_id(field: &str, value: &str) -> Result<String, ParseError> {
    if value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(malformed(field, value))
    }
}

/// Parses one `CLUSTER NODES` line.
///
/// # Errors
/// [`ParseError`] naming the field that is missing or malformed.
pub fn parse_cluster_node_line(line: &str) -> Result<ClusterNodeLine, ParseError> {
    let mut fields = line.split_ascii_whitespace();
    let mut next = |name: &str| {
        fields.next().ok_or_else(|| ParseError::Missing {
            field: name.to_owned(),
        })
    };
    let id = node_id("id", next("id")?)?;
    let address = next("address")?;
    let flags = next("flags")?;
    let primary = next("master")?;
    let _ping_sent = next("ping-sent")?;
    let _pong_recv = next("pong-recv")?;
    let config_epoch: u64 = number("config-epoch", next("config-epoch")?)?;
    let link = next("link-state")?;
    // `ip:port@cport[,hostname]`; the ip may be an IPv6 address with colons.
    let endpoint = address.split(['@', ',']).next().unwrap_or_default();
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| malformed("address", address))?;
    let port: u16 = number("address", port)?;
    let ip = (!host.is_empty()).then(|| host.trim_matches(['[', ']']).to_owned());
    let flag = |f: &str| flags.split(',').any(|x| x == f);
    let primary_id = match primary {
        "-" => None,
        id => Some(node_id("master", id)?),
    };
    let mut slots = Vec::new();
    let mut migrating = Vec::new();
    for item in fields {
        if let Some(inner) = item.strip_prefix('[') {
            let number_part = inner.split(['-', '>', '<']).next().unwrap_or_default();
            migrating.push(slot("slot", number_part)?);
            continue;
        }
        let range = match item.split_once('-') {
            Some((a, b)) => SlotRange {
                start: slot("slot", a)?,
                end: slot("slot", b)?,
            },
            None => {
                let s = slot("slot", item)?;
                SlotRange { start: s, end: s }
            }
        };
        if range.end < range.start {
            return Err(malformed("slot", item));
        }
        slots.push(range);
    }
    Ok(ClusterNodeLine {
        id,
        ip,
        port,
        myself: flag("myself"),
        primary: flag("master"),
        suspected: flag("fail?"),
        failed: flag("fail"),
        handshake: flag("handshake"),
        noaddr: flag("noaddr"),
        primary_id,
        config_epoch,
        connected: link == "connected",
        slots,
        migrating,
    })
}

/// Parses the whole `CLUSTER NODES` reply.
///
/// # Errors
/// The first malformed line's [`ParseError`].
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<ClusterNodeLine>, ParseError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(parse_cluster_node_line)
        .collect()
}

/// Parses `CLUSTER INFO`.
///
/// # Errors
/// [`ParseError`] when `cluster_state` is missing or a number is malformed.
pub fn parse_cluster_info(text: &str) -> Result<ClusterInfo, ParseError> {
    let mut info = ClusterInfo {
        state_ok: false,
        slots_assigned: 0,
        known_nodes: 0,
        size: 0,
        current_epoch: 0,
        my_epoch: 0,
    };
    let mut state = None;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        match key {
            "cluster_state" => state = Some(value == "ok"),
            "cluster_slots_assigned" => info.slots_assigned = number(key, value)?,
            "cluster_known_nodes" => info.known_nodes = number(key, value)?,
            "cluster_size" => info.size = number(key, value)?,
            "cluster_current_epoch" => info.current_epoch = number(key, value)?,
            "cluster_my_epoch" => info.my_epoch = number(key, value)?,
            _ => {}
        }
    }
    info.state_ok = state.ok_or_else(|| ParseError::Missing {
        field: "cluster_state".to_owned(),
    })?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    const A: &str = "07c37dfeb235213a872192d90877d0cd55635b91";
    const B: &str = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1";

    #[test]
    fn a_primary_line_with_slots_and_markers() {
        let line = format!(
            "{A} 10.0.0.1:6379@16379 myself,master - 0 1426238317239 4 connected 0-5460 5462 [5461->-{B}] [93-<-{B}]"
        );
        let n = parse_cluster_node_line(&line).unwrap();
        assert_eq!(n.id, A);
        assert_eq!(n.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(n.port, 6379);
        assert!(n.myself && n.primary && !n.failed && !n.suspected);
        assert_eq!(n.primary_id, None);
        assert_eq!(n.config_epoch, 4);
        assert!(n.connected);
        assert_eq!(
            n.slots,
            vec![
                SlotRange {
                    start: 0,
                    end: 5460
                },
                SlotRange {
                    start: 5462,
                    end: 5462
                }
            ]
        );
        assert_eq!(n.migrating, vec![5461, 93]);
    }

    #[test]
    fn replicas_failures_handshakes_and_empty_addresses() {
        let text = format!(
            "{B} 10.0.0.2:6379@16379,pod-1.svc slave,fail {A} 1 2 3 disconnected\n\
             {A} :0@0 master,fail?,noaddr - 0 0 0 disconnected\n\
             {B} [fd00::1]:6379@16379 handshake - 0 0 0 connected\n"
        );
        let lines = parse_cluster_nodes(&text).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].primary_id.as_deref(), Some(A));
        assert!(lines[0].failed && !lines[0].primary && !lines[0].connected);
        assert_eq!(lines[0].ip.as_deref(), Some("10.0.0.2"));
        assert_eq!(lines[1].ip, None);
        assert!(lines[1].suspected && lines[1].noaddr && !lines[1].failed);
        assert!(lines[2].handshake);
        assert_eq!(lines[2].ip.as_deref(), Some("fd00::1"));
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_field() {
        for (line, field) in [
            ("nothex 10.0.0.1:6379@16379 master - 0 0 1 connected", "id"),
            (
                &format!("{A} 10.0.0.1:6379@16379 master - 0 0 x connected") as &str,
                "config-epoch",
            ),
            (
                &format!("{A} 10.0.0.1:6379@16379 master - 0 0 1 connected 16384"),
                "slot",
            ),
            (
                &format!("{A} 10.0.0.1:6379@16379 master - 0 0 1 connected 9-3"),
                "slot",
            ),
            (
                &format!("{A} 10.0.0.1@16379 master - 0 0 1 connected"),
                "address",
            ),
        ] {
            match parse_cluster_node_line(line) {
                Err(ParseError::Malformed { field: f, .. }) => assert_eq!(f, field, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_cluster_node_line(A),
            Err(ParseError::Missing { .. })
        ));
    }

    #[test]
    fn cluster_info() {
        let info = parse_cluster_info(
            "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:6\r\ncluster_size:3\r\ncluster_current_epoch:6\r\ncluster_my_epoch:2\r\n",
        )
        .unwrap();
        assert!(info.state_ok);
        assert_eq!(
            (info.slots_assigned, info.known_nodes, info.size),
            (16_384, 6, 3)
        );
        assert_eq!((info.current_epoch, info.my_epoch), (6, 2));
        assert!(!parse_cluster_info("cluster_state:fail\n").unwrap().state_ok);
        assert!(parse_cluster_info("cluster_known_nodes:1\n").is_err());
    }
}
