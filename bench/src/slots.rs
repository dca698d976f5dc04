//! Valkey Cluster hash slots for the bench's cluster-aware client: the
//! slot of a key (CRC16/XMODEM of the key or of its `{hash tag}`, modulo
//! 16384), the slot map a client keeps (slot → `host:port` of the primary
//! serving it), and the parser of the `CLUSTER SLOTS` reply it is built
//! from. Pure: no I/O, no clock.
//!
//! The map is what a real client holds: it is refreshed from a live node
//! and corrected one slot at a time by `MOVED` redirections, and it can be
//! wrong for a while after a failover; that staleness is part of what the
//! bench measures, so nothing here second-guesses a reply.

use std::sync::Arc;

use redis::Value;

/// Hash slots in a Valkey Cluster.
pub const SLOTS: u16 = 16_384;

/// CRC16 with the XMODEM parameters (polynomial 0x1021, initial value 0,
/// no reflection): the checksum Valkey Cluster hashes keys with.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for byte in data {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc
}

/// The part of `key` that is hashed: the text between the first `{` and
/// the first `}` after it when that text is not empty, else the whole key
/// (Valkey's hash-tag rule, so `{user}:a` and `{user}:b` share a slot).
pub fn hashed_part(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|b| *b == b'{') else {
        return key;
    };
    let after = open.saturating_add(1);
    let Some(rest) = key.get(after..) else {
        return key;
    };
    match rest.iter().position(|b| *b == b'}') {
        Some(0) | None => key,
        Some(close) => rest.get(..close).unwrap_or(key),
    }
}

/// The hash slot of `key`, as `CLUSTER KEYSLOT` computes it.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hashed_part(key)) % SLOTS
}

/// An inclusive range of slots and the `host:port` of the primary that
/// serves it, as one entry of `CLUSTER SLOTS` states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotOwner {
    /// First slot.
    pub start: u16,
    /// Last slot (inclusive).
    pub end: u16,
    /// The primary's `host:port`.
    pub primary: String,
}

/// Why a `CLUSTER SLOTS` reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed CLUSTER SLOTS reply: {0}")]
pub struct SlotsReplyError(pub String);

/// Parses `CLUSTER SLOTS`: an array of `[start, end, [host, port, id, ...],
/// replicas...]`; only the primary (the first node) of each range is kept.
/// A node announced with an empty host (the node that answered, before it
/// knows its own address) is taken as `fallback_host`.
///
/// # Errors
/// [`SlotsReplyError`] when the reply is not of that shape or a slot is out
/// of range.
pub fn parse_cluster_slots(
    reply: &Value,
    fallback_host: &str,
) -> Result<Vec<SlotOwner>, SlotsReplyError> {
    let bad = |what: &str| SlotsReplyError(what.to_owned());
    let Value::Array(ranges) = reply else {
        return Err(bad("not an array"));
    };
    let mut owners = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(fields) = range else {
            return Err(bad("a range is not an array"));
        };
        let (Some(start), Some(end), Some(Value::Array(node))) =
            (fields.first(), fields.get(1), fields.get(2))
        else {
            return Err(bad("a range lacks start, end or primary"));
        };
        let slot = |v: &Value| match v {
            Value::Int(n) => u16::try_from(*n).ok().filter(|s| *s < SLOTS),
            _ => None,
        };
        let (Some(start), Some(end)) = (slot(start), slot(end)) else {
            return Err(bad("a slot is not an integer below 16384"));
        };
        if start > end {
            return Err(bad("a range ends before it starts"));
        }
        let host = match node.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => return Err(bad("a primary has no host")),
        };
        let Some(Value::Int(port)) = node.get(1) else {
            return Err(bad("a primary has no port"));
        };
        let port = u16::try_from(*port).map_err(|_| bad("a port is out of range"))?;
        let host = if host.is_empty() || host == "?" {
            fallback_host.to_owned()
        } else {
            host
        };
        owners.push(SlotOwner {
            start,
            end,
            primary: crate::conn::join_addr(&host, port),
        });
    }
    Ok(owners)
}

/// Slot → primary, as the client believes it. Slots nobody claims map to
/// nothing.
#[derive(Debug, Clone)]
pub struct SlotMap {
    /// One entry per slot; `None` when unclaimed.
    owners: Vec<Option<Arc<str>>>,
}

impl Default for SlotMap {
    fn default() -> Self {
        SlotMap {
            owners: vec![None; usize::from(SLOTS)],
        }
    }
}

impl SlotMap {
    /// The map `CLUSTER SLOTS` described.
    pub fn from_owners(owners: &[SlotOwner]) -> SlotMap {
        let mut map = SlotMap::default();
        for owner in owners {
            let addr: Arc<str> = Arc::from(owner.primary.as_str());
            for slot in owner.start..=owner.end {
                map.set(slot, Arc::clone(&addr));
            }
        }
        map
    }

    /// Whether no slot has an owner (never refreshed, or nothing served).
    pub fn is_empty(&self) -> bool {
        self.owners.iter().all(Option::is_none)
    }

    /// The primary serving `slot`, as believed.
    pub fn owner(&self, slot: u16) -> Option<&Arc<str>> {
        self.owners.get(usize::from(slot)).and_then(Option::as_ref)
    }

    /// Records that `addr` serves `slot` (a `MOVED` reply said so).
    pub fn set(&mut self, slot: u16, addr: Arc<str>) {
        if let Some(entry) = self.owners.get_mut(usize::from(slot)) {
            *entry = Some(addr);
        }
    }

    /// Every distinct primary, in slot order.
    pub fn primaries(&self) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        for addr in self.owners.iter().flatten() {
            if !out.iter().any(|known| known == addr) {
                out.push(Arc::clone(addr));
            }
        }
        out
    }

    /// The slots `addr` serves, as inclusive ranges in order.
    pub fn ranges_of(&self, addr: &str) -> Vec<(u16, u16)> {
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for slot in 0..SLOTS {
            if self.owner(slot).map(|a| &**a) != Some(addr) {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end)) if end.checked_add(1) == Some(slot) => *end = slot,
                _ => ranges.push((slot, slot)),
            }
        }
        ranges
    }
}

/// Whether `slot` is in one of `ranges` (inclusive).
pub fn in_ranges(ranges: &[(u16, u16)], slot: u16) -> bool {
    ranges
        .iter()
        .any(|(start, end)| (*start..=*end).contains(&slot))
}

/// A `MOVED <slot> <host:port>` or `ASK <slot> <host:port>` error's slot
/// and address; `None` for any other error text.
pub fn parse_redirect(detail: &str) -> Option<(u16, String)> {
    let mut words = detail.split_whitespace();
    let slot = words.next()?.parse::<u16>().ok().filter(|s| *s < SLOTS)?;
    let addr = words.next()?;
    // A node that does not know its own address says `:port`.
    crate::conn::split_addr(addr).ok()?;
    Some((slot, addr.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_reference_vectors() {
        // The check value of CRC-16/XMODEM, and Valkey's documented slots.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"bar"), 5_061);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags_pick_the_hashed_part() {
        assert_eq!(hashed_part(b"{user1000}.following"), b"user1000");
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(hashed_part(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hashed_part(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hashed_part(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hashed_part(b"no-close{"), b"no-close{");
        assert_eq!(hashed_part(b"{"), b"{");
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn range(start: i64, end: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]),
            Value::Array(vec![bulk("10.0.0.9"), Value::Int(6379), bulk("rid")]),
        ])
    }

    #[test]
    fn cluster_slots_build_the_map() {
        let reply = Value::Array(vec![
            range(0, 5460, "10.0.0.1", 6379),
            range(5461, 10922, "", 7001),
            range(10923, 16383, "10.0.0.3", 6379),
        ]);
        let owners = parse_cluster_slots(&reply, "127.0.0.1").unwrap_or_default();
        assert_eq!(owners.len(), 3);
        assert_eq!(
            owners.get(1).map(|o| o.primary.as_str()),
            Some("127.0.0.1:7001")
        );
        let mut map = SlotMap::from_owners(&owners);
        assert_eq!(map.owner(0).map(|a| &**a), Some("10.0.0.1:6379"));
        assert_eq!(map.owner(5461).map(|a| &**a), Some("127.0.0.1:7001"));
        assert_eq!(map.owner(16383).map(|a| &**a), Some("10.0.0.3:6379"));
        assert_eq!(map.owner(SLOTS), None);
        assert_eq!(map.primaries().len(), 3);
        assert_eq!(map.ranges_of("10.0.0.1:6379"), vec![(0, 5460)]);
        map.set(100, Arc::from("10.0.0.3:6379"));
        assert_eq!(map.ranges_of("10.0.0.1:6379"), vec![(0, 99), (101, 5460)]);
        assert_eq!(
            map.ranges_of("10.0.0.3:6379"),
            vec![(100, 100), (10923, 16383)]
        );
        assert!(in_ranges(&[(0, 99), (101, 5460)], 5460));
        assert!(!in_ranges(&[(0, 99), (101, 5460)], 100));
        assert!(SlotMap::default().is_empty());
        assert!(!map.is_empty());
    }

    #[test]
    fn malformed_slots_replies_are_refused() {
        assert!(parse_cluster_slots(&Value::Nil, "h").is_err());
        let out_of_range = Value::Array(vec![range(0, 16384, "h", 1)]);
        assert!(parse_cluster_slots(&out_of_range, "h").is_err());
        let backwards = Value::Array(vec![range(10, 9, "h", 1)]);
        assert!(parse_cluster_slots(&backwards, "h").is_err());
        let no_port = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(1),
            Value::Array(vec![bulk("h")]),
        ])]);
        assert!(parse_cluster_slots(&no_port, "h").is_err());
    }

    #[test]
    fn redirects_name_a_slot_and_an_address() {
        assert_eq!(
            parse_redirect("3999 127.0.0.1:6381"),
            Some((3999, "127.0.0.1:6381".to_owned()))
        );
        assert_eq!(parse_redirect("16384 127.0.0.1:6381"), None);
        assert_eq!(parse_redirect("12 nowhere"), None);
        assert_eq!(parse_redirect("Cluster is down"), None);
    }
}
