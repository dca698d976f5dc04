//! A standby's source as read now, to `StandbyObserved`: journaled only
//! when something a decision or a person reads changed (its address, its
//! history, whether it answered, whether the standby is past its bound,
//! whether its lag is known), never for a lag that moves within its side
//! of the bound.

use logbook_journal::{ClusterState, Event, ReplId};

/// One read of a standby's source and of its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRead {
    /// The source's address, `None` when it could not be resolved.
    pub host: Option<String>,
    /// Its port.
    pub port: u16,
    /// `namespace/name` of the Secret holding its passwords.
    pub secret: String,
    /// The standby's leader's offset and replication id, when it answered.
    pub leader: Option<(u64, String)>,
    /// The source's offset and replication id, or why they are unknown.
    pub source: Result<(u64, String), String>,
}

/// The lag `read` shows, when both offsets are on one history.
pub fn lag_of(read: &SourceRead) -> Option<u64> {
    match (&read.leader, &read.source) {
        (Some((offset, replid)), Ok((source, source_replid))) if replid == source_replid => {
            Some(source.saturating_sub(*offset))
        }
        _ => None,
    }
}

/// `StandbyObserved` for `read` against a lag bound of `bound` bytes,
/// when it says something the journal does not.
pub fn observe_standby(state: &ClusterState, read: &SourceRead, bound: u64) -> Option<Event> {
    let lag = lag_of(read);
    let behind = lag.is_some_and(|l| l > bound);
    let (source_offset, source_replid, error) = match &read.source {
        Ok((offset, replid)) => (Some(*offset), ReplId::from_hex(replid).ok(), None),
        Err(e) => (None, None, Some(e.clone())),
    };
    let known = state.standby.as_ref();
    let same = known.is_some_and(|k| {
        k.observed.is_some()
            && k.address == read.host.clone().map(|h| (h, read.port))
            && k.secret == read.secret
            && k.behind == behind
            && k.lag.is_some() == lag.is_some()
            && k.error == error
            && (source_replid.is_none() || k.source_replid == source_replid)
    });
    (!same).then(|| Event::StandbyObserved {
        host: read.host.clone(),
        port: read.port,
        secret: read.secret.clone(),
        offset: read.leader.as_ref().map(|(o, _)| *o),
        source_offset,
        source_replid,
        lag,
        behind,
        error,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::decide::given::Given;

    const R1: &str = "1111111111111111111111111111111111111111";
    const R2: &str = "2222222222222222222222222222222222222222";

    fn read(leader: u64, source: Result<(u64, &str), &str>) -> SourceRead {
        SourceRead {
            host: Some("127.16.200.1".to_owned()),
            port: 6379,
            secret: "prod/shop-internal".to_owned(),
            leader: Some((leader, R1.to_owned())),
            source: source
                .map(|(o, r)| (o, r.to_owned()))
                .map_err(str::to_owned),
        }
    }

    #[test]
    fn journaled_first_then_only_when_it_crosses_the_bound_or_the_source_changes() {
        let mut g = Given::new();
        let first = observe_standby(&g.state, &read(100, Ok((150, R1))), 1000).unwrap();
        assert!(matches!(
            first,
            Event::StandbyObserved {
                lag: Some(50),
                behind: false,
                ..
            }
        ));
        g.event(first);
        // The lag moves within the bound: nothing.
        assert_eq!(
            observe_standby(&g.state, &read(100, Ok((900, R1))), 1000),
            None
        );
        // Past it: journaled.
        let behind = observe_standby(&g.state, &read(100, Ok((5000, R1))), 1000).unwrap();
        assert!(matches!(
            behind,
            Event::StandbyObserved {
                lag: Some(4900),
                behind: true,
                ..
            }
        ));
        g.event(behind);
        assert_eq!(
            observe_standby(&g.state, &read(100, Ok((6000, R1))), 1000),
            None
        );
        // The source fails over (a new history): journaled, lag unknown
        // until the leader follows it onto that history.
        let moved = observe_standby(&g.state, &read(100, Ok((6000, R2))), 1000).unwrap();
        assert!(matches!(
            moved,
            Event::StandbyObserved {
                lag: None,
                behind: false,
                ..
            }
        ));
        g.event(moved);
        // The source unreadable: journaled once.
        let gone = observe_standby(&g.state, &read(100, Err("refused")), 1000).unwrap();
        g.event(gone);
        assert_eq!(
            observe_standby(&g.state, &read(100, Err("refused")), 1000),
            None
        );
        assert_eq!(
            g.state
                .standby
                .as_ref()
                .and_then(|s| s.error.clone())
                .as_deref(),
            Some("refused")
        );
    }

    /// `replicateFrom.maxLagBytes` is the bound the operator reads each
    /// source against (`lag_bound`): one byte past it is journaled as
    /// behind (the status's `Behind`); unset, the bound is 1 MiB.
    #[test]
    fn the_specs_max_lag_bytes_is_the_bound_past_which_the_standby_is_behind() {
        let g = Given::new();
        let behind = |from: &logbook_crds::v1alpha1::ReplicateFrom, lag: u64| {
            let read = read(100, Ok((100 + lag, R1)));
            let seen = observe_standby(&g.state, &read, from.lag_bound());
            assert!(seen.is_some(), "a first read is always journaled");
            matches!(seen, Some(Event::StandbyObserved { behind: true, .. }))
        };
        let mut from = logbook_crds::v1alpha1::ReplicateFrom {
            max_lag_bytes: Some(4096),
            ..Default::default()
        };
        assert!(!behind(&from, 4096));
        assert!(behind(&from, 4097));
        from.max_lag_bytes = None;
        assert!(!behind(&from, 4097));
        assert!(!behind(&from, 1_048_576));
        assert!(behind(&from, 1_048_577));
    }
}
