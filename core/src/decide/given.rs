//! Test support shared by every topology's `decide` tests: a projection
//! built by folding real envelopes (given), then `decide` (when), then
//! the exact intents (then).

use logbook_crds::ValkeyClusterSpec;
use logbook_journal::writer::{NewEvent, encode_batch};
use logbook_journal::{
    ClusterState, Event, Head, Intent, LinkStatus, PodPhase, Policy, Reachability, ReasonCode,
    ReplId, Role, SpecFingerprint, StreamId, Timestamp,
};
use uuid::Uuid;

use super::{Decision, decide};

/// A projection built by folding real envelopes, as the operator does.
pub struct Given {
    pub state: ClusterState,
    pub head: Head,
    pub n: u128,
    /// Time of the next event, and the step between events (1 s unless set).
    pub clock_us: i64,
    pub step_us: i64,
    pub policy: Policy,
}

impl Given {
    pub fn new() -> Self {
        Given {
            state: ClusterState::new(),
            head: Head::EMPTY,
            n: 0,
            clock_us: 0,
            step_us: 1_000_000,
            policy: Policy::default(),
        }
    }

    pub fn event(&mut self, body: Event) -> &mut Self {
        self.n += 1;
        let stream = StreamId::new("test").unwrap();
        let (envelopes, _) = encode_batch(
            &stream,
            self.head,
            1,
            vec![NewEvent {
                id: Uuid::from_u128(self.n),
                at: {
                    self.clock_us += self.step_us;
                    Timestamp(self.clock_us)
                },
                cause: None,
                body,
            }],
        )
        .unwrap();
        for e in &envelopes {
            self.state.apply(e);
            self.head = Head {
                seq: e.seq,
                hash: e.hash,
            };
        }
        self
    }

    pub fn spec(&mut self, spec: &ValkeyClusterSpec) -> &mut Self {
        self.spec_at(1, spec)
    }

    /// `spec` as generation `generation` of the object.
    pub fn spec_at(&mut self, generation: i64, spec: &ValkeyClusterSpec) -> &mut Self {
        let spec_json = serde_json::to_string(spec).unwrap();
        self.event(Event::SpecChanged {
            generation,
            spec_json,
            fingerprint: SpecFingerprint([0; 32]),
        })
    }

    pub fn applied(&mut self, generation: i64) -> &mut Self {
        self.succeed(Intent::ApplyResources { generation })
    }

    /// Decides and succeeds `intent`, as an executor would report it.
    pub fn succeed(&mut self, intent: Intent) -> &mut Self {
        let id = self.decided(intent);
        self.event(Event::IntentSucceeded {
            intent_id: id,
            detail: String::new(),
        })
    }

    /// Decides `intent`, then journals `facts` and its success, as an
    /// executor reports an outcome that carries facts.
    pub fn succeed_with(&mut self, intent: Intent, facts: Vec<Event>) -> &mut Self {
        let id = self.decided(intent);
        for fact in facts {
            self.event(fact);
        }
        self.event(Event::IntentSucceeded {
            intent_id: id,
            detail: String::new(),
        })
    }

    /// `intent` decided (reason `Requested`); its id.
    fn decided(&mut self, intent: Intent) -> Uuid {
        self.n += 1;
        let id = Uuid::from_u128(1_000_000 + self.n);
        self.event(Event::Decided {
            intents: vec![logbook_journal::PlannedIntent {
                intent_id: id,
                intent,
                reason: logbook_journal::Reason {
                    code: ReasonCode::Requested,
                    detail: String::new(),
                },
            }],
        });
        id
    }

    /// `intent` decided, then failed with `error`; the intent id's number.
    pub fn decide_and_fail(&mut self, intent: Intent, error: &str, retryable: bool) -> u128 {
        let id = self.decided(intent);
        self.event(Event::IntentFailed {
            intent_id: id,
            error: error.to_owned(),
            retryable,
        });
        id.as_u128()
    }

    pub fn pod(&mut self, i: u32, revision: &str) -> &mut Self {
        self.event(Event::PodObserved {
            pod: format!("demo-{i}"),
            uid: format!("uid-{i}-{revision}"),
            ip: Some(format!("10.0.0.{i}")),
            phase: PodPhase::Running,
            ready: true,
            node: None,
            revision: Some(revision.into()),
        })
    }

    pub fn reach(&mut self, i: u32, r: Reachability) -> &mut Self {
        self.event(Event::PodReachabilityObserved {
            pod: format!("demo-{i}"),
            reachability: r,
        })
    }

    pub fn role(&mut self, i: u32, role: Role, primary: Option<u32>) -> &mut Self {
        self.event(Event::NodeRoleObserved {
            pod: format!("demo-{i}"),
            role,
            primary: primary.map(|p| format!("demo-{p}")),
        })
    }

    pub fn repl(&mut self, i: u32, link: LinkStatus, offset: u64, replid: u8) -> &mut Self {
        self.event(Event::ReplicationObserved {
            pod: format!("demo-{i}"),
            link,
            offset,
            replid: ReplId([replid; 20]),
        })
    }

    pub fn label(&mut self, i: u32, label: Role) -> &mut Self {
        self.event(Event::RoleLabelObserved {
            pod: format!("demo-{i}"),
            label: Some(label),
        })
    }

    /// Events from now on come `ms` apart.
    pub fn every_ms(&mut self, ms: i64) -> &mut Self {
        self.step_us = ms * 1000;
        self
    }

    /// Decides at the time of the last event, as the runtime does.
    pub fn decide(&self) -> Vec<Decision> {
        decide(&self.state, self.state.last_at, &self.policy)
    }

    pub fn intents(&self) -> Vec<Intent> {
        self.decide().into_iter().map(|d| d.intent).collect()
    }

    /// The status the runtime would write for the cluster `default/demo`.
    pub fn status(&self) -> logbook_crds::ValkeyClusterStatus {
        super::status::render_status(
            &self.state,
            &super::status::StatusContext {
                name: "demo",
                namespace: "default",
                backend: "memory",
            },
        )
    }
}
