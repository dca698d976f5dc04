//! Mutations of a spec: Acto's per-type ones for every field of the
//! schema, and semantic ones for ValkeyCluster written from its real field
//! names. Each says what the API server should do with it
//! ([`Expectation`]), decided by [`super::validate`] against the spec it
//! is applied to.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde_json::{Value, json};

use super::chain::{sample, string_sample};
use super::schema::{self, CrdSchema, Field, FieldType, Segment, Verdict, escape};

/// What a mutation does at its path.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Set the value (creating intermediate objects).
    Set(Value),
    /// Remove the field (or array item).
    Delete,
}

/// Which generator made a mutation: Acto's per-type ones, then the
/// semantic ValkeyCluster ones ([`MutationKind::is_semantic`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MutationKind {
    /// A number set to its `minimum`.
    NumberToMin,
    /// A number set to its `maximum`.
    NumberToMax,
    /// A number set to `minimum - 1` (refused by the schema).
    NumberBelowMin,
    /// A number set to `maximum + 1` (refused by the schema).
    NumberAboveMax,
    /// A number plus one.
    NumberIncrement,
    /// A number minus one.
    NumberDecrement,
    /// A number set to zero.
    NumberZero,
    /// A number with no maximum set very large (`i32::MAX` for int32).
    NumberLarge,
    /// A boolean toggled.
    BooleanToggle,
    /// An enum set to another of its values.
    EnumValue,
    /// An enum set to a value it does not list.
    EnumInvalid,
    /// A string set to another valid-looking value.
    StringChange,
    /// A string emptied.
    StringEmpty,
    /// A string made very long (one past `maxLength` when there is one).
    StringLong,
    /// A value of the wrong JSON type (a string for a number, ...).
    WrongType,
    /// An int-or-string switched from one form to the other.
    IntOrStringSwap,
    /// An item appended to a list.
    ListGrow,
    /// A list emptied.
    ListEmpty,
    /// A list's last item removed.
    ListShrink,
    /// A list given one item more than `maxItems`.
    ListOverMax,
    /// A key added to a map.
    MapAddKey,
    /// A key removed from a map.
    MapRemoveKey,
    /// A field deleted.
    FieldDelete,
    /// An absent field added (its default, or a small valid value).
    FieldAdd,
    /// Semantic: CPU and memory no Valkey fits in.
    ResourcesTooSmall,
    /// Semantic: a memory request above the memory limit.
    MemoryRequestAboveLimit,
    /// Semantic: a node selector no node satisfies.
    UnsatisfiableNodeSelector,
    /// Semantic: a required node affinity no node satisfies.
    UnsatisfiableAffinity,
    /// Semantic: the volumes grown.
    StorageGrow,
    /// Semantic: the volumes shrunk (the CRD refuses it).
    StorageShrink,
    /// Semantic: another persistence mode.
    PersistenceChange,
    /// Semantic: TLS turned on.
    TlsOn,
    /// Semantic: TLS turned off.
    TlsOff,
    /// Semantic: both an issuer and a Secret for TLS (the CRD refuses it).
    TlsTwoSources,
    /// Semantic: an older Valkey image.
    ImageOlder,
    /// Semantic: a newer Valkey image.
    ImageNewer,
    /// Semantic: an image tag that does not exist.
    ImageMissingTag,
    /// Semantic: a valid `valkey.conf` directive.
    ConfigValid,
    /// Semantic: a known directive with a value Valkey refuses.
    ConfigInvalidValue,
    /// Semantic: a directive Valkey does not know.
    ConfigUnknownDirective,
    /// Semantic: a directive the operator owns (`port`, `replicaof`, ...).
    ConfigOwnedDirective,
    /// Semantic: more or fewer data pods.
    ReplicasChange,
    /// Semantic: more or fewer shards, or replicas per shard.
    ShardsChange,
    /// Semantic: another topology (the CRD makes it immutable).
    TopologySwitch,
    /// Semantic: a Sentinel quorum above the Sentinels' count.
    SentinelQuorumTooHigh,
    /// Semantic: an even number of Sentinels.
    SentinelEvenCount,
    /// Semantic: a ServiceMonitor without metrics.
    ServiceMonitorWithoutMetrics,
    /// Semantic: `restoreFrom` added to a running cluster.
    RestoreFromAdded,
}

impl MutationKind {
    /// Whether it is one of the hand-written ValkeyCluster mutations rather
    /// than a per-type one.
    pub fn is_semantic(self) -> bool {
        self >= MutationKind::ResourcesTooSmall
    }
}

impl fmt::Display for MutationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What the API server (and then the operator) should do with a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expectation {
    /// The schema accepts it and nothing else is known to object: the
    /// operator should bring the cluster to it.
    Accept,
    /// The API server's validation refuses it (type, enum, bounds, length,
    /// pattern, required field or an `x-kubernetes-validations` rule): the
    /// object must not change.
    RefuseBySchema,
    /// The schema accepts it (or this module cannot evaluate a rule or
    /// pattern), but the operator, Kubernetes or Valkey may refuse it; the
    /// oracle decides from the status.
    Unknown,
}

/// One change to a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The CRD kind whose spec it changes.
    pub crd_kind: String,
    /// A JSON pointer below `spec` (`/storage/size`, `/config/port`).
    pub path: String,
    /// What it does there.
    pub op: Op,
    /// Which generator made it.
    pub kind: MutationKind,
    /// What should happen to it.
    pub expect: Expectation,
    /// Why that is expected: the validator's refusal, or what else checks it.
    pub reason: String,
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Op::Set(v) => write!(f, "set {} = {}", self.path, short(v))?,
            Op::Delete => write!(f, "delete {}", self.path)?,
        }
        write!(f, "  ({}; expect {:?}", self.kind, self.expect)?;
        match self.expect {
            Expectation::Accept => write!(f, ")"),
            _ => write!(f, ": {})", self.reason),
        }
    }
}

/// A value for people: compact JSON, a long one cut short.
pub(crate) fn short(v: &Value) -> String {
    let s = v.to_string();
    let n = s.chars().count();
    if n <= 160 {
        return s;
    }
    let head: String = s.chars().take(60).collect();
    format!("{head}… ({n} characters)")
}

/// A JSON pointer from its keys (escaped).
pub fn pointer_of(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("/{}", escape(k))).collect()
}

/// A mutation before it is judged: `hint` is why it is `Unknown` should
/// the schema accept it (`None`: it is then `Accept`).
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) path: String,
    pub(crate) op: Op,
    pub(crate) kind: MutationKind,
    pub(crate) hint: Option<String>,
}

impl Candidate {
    fn new(path: &str, op: Op, kind: MutationKind) -> Self {
        let (path, hint) = (path.to_owned(), None);
        Candidate {
            path,
            op,
            kind,
            hint,
        }
    }

    fn set(path: &str, value: Value, kind: MutationKind) -> Self {
        Candidate::new(path, Op::Set(value), kind)
    }

    fn hint(mut self, why: Option<&str>) -> Self {
        self.hint = why.map(str::to_owned);
        self
    }
}

/// Every candidate mutation relevant to `current` (any spec of
/// `schema`'s kind), with what [`super::validate`] says about each as an
/// update of `current`. Mutations that would not change `current` are
/// left out, and so are duplicates (same path and op: the first
/// generator's, semantic ones first, is kept).
pub fn mutations_for(schema: &CrdSchema, current: &Value) -> Vec<Mutation> {
    candidates(schema, &Known::of(schema), current)
        .iter()
        .filter_map(|c| judge(schema, current, c))
        .map(|(m, _)| m)
        .collect()
}

/// The mutation `c` makes of `current`, judged, and the spec it gives;
/// `None` when it cannot be applied or changes nothing.
pub(crate) fn judge(
    schema: &CrdSchema,
    current: &Value,
    c: &Candidate,
) -> Option<(Mutation, Value)> {
    let after = super::chain::apply_op(current, &c.path, &c.op).ok()?;
    if schema::json_eq(&after, current) {
        return None;
    }
    let (expect, reason) = match schema::validate(schema, Some(current), &after) {
        Verdict::Invalid(why) => (Expectation::RefuseBySchema, why),
        Verdict::Undecided(why) => (Expectation::Unknown, why),
        Verdict::Valid => match &c.hint {
            Some(why) => (Expectation::Unknown, why.clone()),
            None => (Expectation::Accept, "valid by the schema".to_owned()),
        },
    };
    let m = Mutation {
        crd_kind: schema.kind.clone(),
        path: c.path.clone(),
        op: c.op.clone(),
        kind: c.kind,
        expect,
        reason,
    };
    Some((m, after))
}

/// The candidates for `current`, unjudged: semantic ones first, then the
/// per-type ones of every field, deduplicated.
pub(crate) fn candidates(schema: &CrdSchema, known: &Known, current: &Value) -> Vec<Candidate> {
    let mut out = Vec::new();
    semantic(schema, known, current, &mut out);
    for field in &schema.fields {
        let mut found = Vec::new();
        expand(&field.path, current, String::new(), &mut found);
        for (ptr, value) in found {
            let start = out.len();
            per_type(field, &ptr, value, &mut out);
            for c in out.iter_mut().skip(start) {
                c.hint = c.hint.take().or_else(|| checked_elsewhere(&schema.kind, c));
            }
        }
    }
    let mut seen: HashMap<&str, Vec<&Op>> = HashMap::new();
    let fresh: Vec<bool> = out
        .iter()
        .map(|c| {
            let ops = seen.entry(c.path.as_str()).or_default();
            let fresh = !ops.contains(&&c.op);
            ops.push(&c.op);
            fresh
        })
        .collect();
    let mut keep = fresh.into_iter();
    out.retain(|_| keep.next().unwrap_or(false));
    out.retain(|c| {
        !NOT_GENERATED
            .iter()
            .any(|(k, p, _)| *k == schema.kind && c.path.starts_with(p))
    });
    out
}

/// Fields no chain changes, and why. `paused: true` leaves a cluster
/// Paused, never Ready, by design, so no step after it could converge
/// (pausing is tested on its own, `tests/operator_lifecycle.rs`). It was
/// drawn once the schema no longer wrote `paused: false` into every
/// object (the defaults layers, crds/src/crdgen.rs).
const NOT_GENERATED: &[(&str, &str, &str)] = &[(
    "ValkeyCluster",
    "/paused",
    "a paused cluster is never Ready: no later step could converge",
)];

/// The fields of `kind` no chain changes ([`NOT_GENERATED`]).
pub fn not_generated(kind: &str) -> Vec<&'static str> {
    NOT_GENERATED
        .iter()
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, p, _)| *p)
        .collect()
}

/// Where the schema is not the only judge: Kubernetes validates the pod
/// fields the spec embeds when the operator creates pods, the operator
/// checks `config` and names, and some values must name things that exist.
/// A schema-valid Set there (or Delete below the prefix) is `Unknown`.
#[rustfmt::skip]
const CHECKED_ELSEWHERE: &[(&str, &str, &str)] = &[
    ("ValkeyCluster", "/affinity", "Kubernetes validates pod affinity"),
    ("ValkeyCluster", "/tolerations", "Kubernetes validates tolerations"),
    ("ValkeyCluster", "/topologySpreadConstraints", "Kubernetes validates spread constraints"),
    ("ValkeyCluster", "/podSecurityContext", "Kubernetes validates the pod security context"),
    ("ValkeyCluster", "/securityContext", "Kubernetes validates the container security context"),
    ("ValkeyCluster", "/resources", "Kubernetes validates quantities and requests against limits"),
    ("ValkeyCluster", "/imagePullSecrets", "the pull Secrets must exist"),
    ("ValkeyCluster", "/networkPolicy/allowFrom", "Kubernetes and the operator validate peers"),
    ("ValkeyCluster", "/labels", "label syntax is validated; the operator refuses its own keys"),
    ("ValkeyCluster", "/annotations", "annotation keys are validated"),
    ("ValkeyCluster", "/nodeSelector", "label values are validated and some node must match"),
    ("ValkeyCluster", "/config", "the operator refuses owned directives; Valkey checks the rest"),
    ("ValkeyCluster", "/image", "the image must exist and run a Valkey the operator supports"),
    ("ValkeyCluster", "/priorityClassName", "the PriorityClass must exist"),
    ("ValkeyCluster", "/storage/storageClassName", "the StorageClass must exist"),
    ("ValkeyCluster", "/storage/size", "growing a claim needs a StorageClass that allows it"),
    ("ValkeyCluster", "/tls/issuerRef", "the cert-manager issuer must exist"),
    ("ValkeyCluster", "/tls/secretName", "the TLS Secret must exist and name the cluster"),
    ("ValkeyCluster", "/auth/passwordSecret", "the password Secret must exist"),
    ("ValkeyCluster", "/connectionSecret", "the operator checks the Secret name"),
    ("ValkeyCluster", "/backup", "the operator checks the schedule, bucket and credentials"),
    ("ValkeyCluster", "/restoreFrom", "the backup must exist"),
    ("ValkeyUser", "/passwordSecret", "the password Secret must exist"),
    ("ValkeyUser", "/commands", "Valkey parses ACL command rules"),
    ("ValkeyUser", "/username", "immutable and not `default`/`logbook-*`: the operator checks"),
    ("ValkeyBackup", "/destination", "the bucket and its credentials must exist"),
];

/// The paths under which something besides the schema checks a `kind`'s
/// spec (Kubernetes's validation of the pod fields the spec embeds, the
/// operator's of `config` and names, objects that must exist): a
/// schema-valid Set there, or a Delete below one, is `Unknown`, never
/// `Accept`. Each names a real field (a test checks).
pub fn checked_elsewhere_prefixes(kind: &str) -> Vec<&'static str> {
    CHECKED_ELSEWHERE
        .iter()
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, p, _)| *p)
        .collect()
}

fn checked_elsewhere(kind: &str, c: &Candidate) -> Option<String> {
    CHECKED_ELSEWHERE.iter().find_map(|(k, prefix, why)| {
        let below = c.path.strip_prefix(prefix)?;
        let hit = *k == kind
            && (below.starts_with('/') || (below.is_empty() && matches!(c.op, Op::Set(_))));
        hit.then(|| (*why).to_owned())
    })
}

/// The instances of a field's path in `v`: `(pointer, Some(value))` where
/// it is present, `(pointer, None)` where it is absent but its parent
/// object is there.
fn expand<'a>(
    path: &[Segment],
    v: &'a Value,
    ptr: String,
    out: &mut Vec<(String, Option<&'a Value>)>,
) {
    let Some((first, rest)) = path.split_first() else {
        out.push((ptr, Some(v)));
        return;
    };
    match (first, v) {
        (Segment::Key(k), Value::Object(map)) => {
            let ptr = || format!("{ptr}/{}", escape(k));
            match map.get(k).filter(|c| !c.is_null()) {
                Some(child) => expand(rest, child, ptr(), out),
                None if rest.is_empty() => out.push((ptr(), None)),
                None => {}
            }
        }
        (Segment::Items, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                expand(rest, item, format!("{ptr}/{i}"), out);
            }
        }
        (Segment::Values, Value::Object(map)) => {
            for (k, item) in map {
                expand(rest, item, format!("{ptr}/{}", escape(k)), out);
            }
        }
        _ => {}
    }
}

/// Acto's per-type mutations of one instance of `field`.
fn per_type(field: &Field, ptr: &str, value: Option<&Value>, out: &mut Vec<Candidate>) {
    use MutationKind as K;
    let Some(v) = value else {
        out.push(Candidate::set(ptr, added(field), K::FieldAdd));
        return;
    };
    let node = &field.schema;
    let mut set = |value: Value, kind| out.push(Candidate::set(ptr, value, kind));
    match &field.ty {
        FieldType::Integer | FieldType::Number => numbers(field, ptr, v, out),
        FieldType::Boolean => {
            set(Value::Bool(!v.as_bool().unwrap_or(false)), K::BooleanToggle);
            set(json!("true"), K::WrongType);
        }
        FieldType::String if !field.enum_values.is_empty() => {
            for e in field.enum_values.iter().filter(|e| *e != v) {
                set(e.clone(), K::EnumValue);
            }
            set(json!("NotAnEnumValue"), K::EnumInvalid);
        }
        FieldType::String => {
            let cur = v.as_str().unwrap_or("");
            let other = string_sample(node, Some(cur));
            set(
                json!(other.unwrap_or_else(|| format!("{cur}-changed"))),
                K::StringChange,
            );
            set(json!(""), K::StringEmpty);
            let long = field.max_length.map_or(1024, |m| m.saturating_add(1));
            let long = usize::try_from(long.min(100_000)).unwrap_or(1024);
            set(json!("x".repeat(long)), K::StringLong);
            set(json!(42), K::WrongType);
        }
        FieldType::IntOrString => {
            let swapped = match v {
                Value::String(s) => json!(s.parse::<i64>().unwrap_or(1)),
                other => json!(other.to_string()),
            };
            set(swapped, K::IntOrStringSwap);
            set(Value::Bool(true), K::WrongType);
        }
        FieldType::Array(_) => lists(field, ptr, v, out),
        FieldType::Map(_) => {
            let map = v.as_object();
            let free = |k: &String| map.is_none_or(|m| !m.contains_key(k));
            let names = (0..).map(|i| format!("logbook-added-{i}"));
            let key = names.take(1000).find(free).unwrap_or_default();
            let item = node.get("additionalProperties").map_or(Value::Null, sample);
            let at = |k: &str| format!("{ptr}/{}", escape(k));
            out.push(Candidate::set(&at(&key), item, K::MapAddKey));
            for k in map.into_iter().flat_map(|m| m.keys()).take(2) {
                out.push(Candidate::new(&at(k), Op::Delete, K::MapRemoveKey));
            }
        }
        FieldType::Object | FieldType::Opaque => {}
    }
    if matches!(field.path.last(), Some(Segment::Key(_))) {
        out.push(Candidate::new(ptr, Op::Delete, K::FieldDelete));
    }
}

/// The value a FieldAdd gives an absent field: its default, else a small
/// valid value (a list or map with one entry rather than none).
fn added(field: &Field) -> Value {
    let node = &field.schema;
    let of = |k: &str| node.get(k).map_or(Value::Null, sample);
    match field.ty {
        _ if field.default.is_some() => sample(node),
        FieldType::Array(_) => json!([of("items")]),
        FieldType::Map(_) => json!({ "logbook-added-0": of("additionalProperties") }),
        _ => sample(node),
    }
}

fn numbers(field: &Field, ptr: &str, v: &Value, out: &mut Vec<Candidate>) {
    use MutationKind as K;
    let cur = v.as_f64().unwrap_or(0.0);
    let int32 = field.format.as_deref() == Some("int32");
    let large = if int32 { f64::from(i32::MAX) } else { 1e12 };
    let (min, max) = (field.minimum, field.maximum);
    let mut tried: Vec<f64> = vec![cur];
    let steps = [
        (K::NumberToMin, min),
        (K::NumberBelowMin, min.map(|m| m - 1.0)),
        (K::NumberToMax, max),
        (K::NumberAboveMax, max.map(|m| m + 1.0)),
        (K::NumberIncrement, Some(cur + 1.0)),
        (K::NumberDecrement, Some(cur - 1.0)),
        (K::NumberZero, Some(0.0)),
        (K::NumberLarge, max.is_none().then_some(large)),
    ];
    for (kind, x) in steps {
        let Some(x) = x.filter(|x| !tried.contains(x)) else {
            continue;
        };
        tried.push(x);
        let value = match field.ty {
            FieldType::Integer => json!(x as i64),
            _ => json!(x),
        };
        let beyond = int32 && !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&x);
        let why =
            beyond.then_some("beyond int32: the schema allows it, the operator cannot read it");
        out.push(Candidate::set(ptr, value, kind).hint(why));
    }
    out.push(Candidate::set(ptr, json!("1"), K::WrongType));
}

fn lists(field: &Field, ptr: &str, v: &Value, out: &mut Vec<Candidate>) {
    use MutationKind as K;
    let len = v.as_array().map_or(0, Vec::len);
    let item = field.schema.get("items").map_or(Value::Null, sample);
    out.push(Candidate::set(
        &format!("{ptr}/{len}"),
        item.clone(),
        K::ListGrow,
    ));
    if len > 0 {
        out.push(Candidate::set(ptr, json!([]), K::ListEmpty));
    }
    if len >= 2 {
        let last = format!("{ptr}/{}", len - 1);
        out.push(Candidate::new(&last, Op::Delete, K::ListShrink));
    }
    if let Some(max) = field.max_items.and_then(|m| usize::try_from(m).ok()) {
        let too_many = Value::Array(vec![item; max.saturating_add(1).min(10_000)]);
        out.push(Candidate::set(ptr, too_many, K::ListOverMax));
    }
}

/// The fixed semantic mutations of a ValkeyCluster: a field the schema
/// must have, the path, the value (JSON), the kind, and why it is
/// `Unknown` should the schema accept it (none: `Accept`).
#[rustfmt::skip]
const FIXED: &[(&str, &str, &str, MutationKind, Option<&str>)] = {
    use MutationKind as K;
    &[
        ("/resources/limits/*", "/resources", r#"{"limits": {"memory": "4Mi", "cpu": "10m"}, "requests": {"memory": "4Mi", "cpu": "10m"}}"#,
            K::ResourcesTooSmall, Some("no Valkey fits in 4Mi: OOM kills or a refusal")),
        ("/resources/requests/*", "/resources", r#"{"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}"#,
            K::MemoryRequestAboveLimit, Some("Kubernetes refuses a memory request above the limit")),
        ("/nodeSelector/*", "/nodeSelector/logbook.dev~1no-such-label", r#""nowhere""#,
            K::UnsatisfiableNodeSelector, Some("no node has this label: pods stay Pending")),
        ("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms", "/affinity",
            r#"{"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "logbook.dev/no-such-label", "operator": "In", "values": ["nowhere"]}]}]}}}"#,
            K::UnsatisfiableAffinity, Some("no node satisfies it: pods stay Pending")),
        ("/storage/size", "/storage/size", r#""0""#, K::StorageShrink, None),
        ("/tls/secretName", "/tls", r#"{"enabled": true, "issuerRef": {"name": "ca-issuer"}, "secretName": "valkey-tls"}"#,
            K::TlsTwoSources, None),
        ("/image", "/image", r#""valkey/valkey:8.0""#, K::ImageOlder, Some("a downgrade: the operator may refuse it, the data may not load")),
        ("/image", "/image", r#""valkey/valkey:9.2""#, K::ImageNewer, Some("an upgrade the operator may not support yet")),
        ("/image", "/image", r#""valkey/valkey:0.0.0-logbook-no-such-tag""#, K::ImageMissingTag, Some("no such tag: pods cannot pull it")),
        ("/config/*", "/config/maxmemory-policy", r#""allkeys-lru""#, K::ConfigValid, None),
        ("/config/*", "/config/timeout", r#""300""#, K::ConfigValid, None),
        ("/config/*", "/config/maxmemory-policy", r#""nonsense""#, K::ConfigInvalidValue, Some("Valkey refuses the value")),
        ("/config/*", "/config/logbook-no-such-directive", r#""yes""#, K::ConfigUnknownDirective, Some("Valkey refuses unknown directives")),
        ("/config/*", "/config/port", r#""6380""#, K::ConfigOwnedDirective, Some("the operator owns `port`")),
        ("/config/*", "/config/replicaof", r#""10.0.0.1 6379""#, K::ConfigOwnedDirective, Some("the operator owns `replicaof`")),
        ("/config/*", "/config/appendonly", r#""yes""#, K::ConfigOwnedDirective, Some("the operator sets `appendonly` from storage.persistence")),
        ("/metrics/serviceMonitor", "/metrics", r#"{"enabled": false, "serviceMonitor": true}"#, K::ServiceMonitorWithoutMetrics, None),
    ]
};

/// The fields the semantic mutations read besides [`FIXED`]'s.
#[rustfmt::skip]
const SEMANTIC_FIELDS: &[&str] = &[
    "/storage/size", "/storage/persistence", "/topology", "/tls/enabled", "/replicas", "/shards",
    "/replicasPerShard", "/sentinel/quorum", "/sentinel/replicas", "/restoreFrom/backup",
];

/// What the semantic mutations need of a schema, looked up once rather
/// than at every step: which of their fields exist, with their enums.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known(HashMap<&'static str, Vec<Value>>);

impl Known {
    /// The facts of `schema` (none but for ValkeyCluster).
    pub(crate) fn of(schema: &CrdSchema) -> Known {
        if schema.kind != "ValkeyCluster" {
            return Known::default();
        }
        let wanted = FIXED
            .iter()
            .map(|f| f.0)
            .chain(SEMANTIC_FIELDS.iter().copied());
        let found = wanted.filter_map(|p| Some((p, schema.field(p)?.enum_values.clone())));
        Known(found.collect())
    }

    fn has(&self, pointer: &str) -> bool {
        self.0.contains_key(pointer)
    }

    fn enum_of(&self, pointer: &str) -> Vec<Value> {
        self.0.get(pointer).cloned().unwrap_or_default()
    }
}

/// The values of [`FIXED`], parsed once.
static FIXED_VALUES: LazyLock<Vec<Option<Value>>> = LazyLock::new(|| {
    FIXED
        .iter()
        .map(|f| serde_json::from_str(f.2).ok())
        .collect()
});

/// The semantic mutations of a ValkeyCluster: what a person testing the
/// operator would try, from the CRD's real fields: [`FIXED`] and those
/// that depend on the current spec. Each is generated only when its field
/// exists in the schema; [`super::validate`] still judges it (a topology
/// switch or a storage shrink is refused by the CRD's rules).
fn semantic(schema: &CrdSchema, known: &Known, current: &Value, out: &mut Vec<Candidate>) {
    use MutationKind as K;
    if known.0.is_empty() {
        return;
    }
    let has = |p: &str| known.has(p);
    for ((field, path, _, kind, hint), value) in FIXED.iter().zip(FIXED_VALUES.iter()) {
        if let (true, Some(v)) = (has(field), value) {
            out.push(Candidate::set(path, v.clone(), *kind).hint(*hint));
        }
    }
    let eff = schema::with_defaults(&schema.spec_schema, current);
    let at = |p: &str| eff.pointer(p).filter(|v| !v.is_null());
    let int = |p: &str| at(p).and_then(Value::as_i64);
    let mut add = |p: &str, v: Value, kind| {
        if has(p) {
            out.push(Candidate::set(p, v, kind));
        }
    };
    let enum_of = |p: &str| known.enum_of(p);
    for mode in enum_of("/storage/persistence") {
        if Some(&mode) != at("/storage/persistence") {
            add("/storage/persistence", mode, K::PersistenceChange);
        }
    }
    for t in enum_of("/topology") {
        if Some(&t) != at("/topology") {
            add("/topology", t, K::TopologySwitch);
        }
    }
    // Neither issuerRef nor secretName: the operator's own CA issues it.
    match at("/tls/enabled") {
        Some(Value::Bool(true)) => add("/tls/enabled", json!(false), K::TlsOff),
        _ => add("/tls/enabled", json!(true), K::TlsOn),
    }
    let r = int("/replicas").unwrap_or(3);
    for n in [1, r + 2, r - 1].into_iter().filter(|n| *n >= 1 && *n != r) {
        add("/replicas", json!(n), K::ReplicasChange);
    }
    for (p, fallback, low) in [("/shards", 3, 1), ("/replicasPerShard", 1, 0)] {
        let n = int(p).unwrap_or(fallback);
        for m in [n + 1, n - 1, low]
            .into_iter()
            .filter(|m| *m >= low && *m != n)
        {
            add(p, json!(m), K::ShardsChange);
        }
    }
    let sentinels = int("/sentinel/replicas").unwrap_or(3);
    add(
        "/sentinel/quorum",
        json!(sentinels + 1),
        K::SentinelQuorumTooHigh,
    );
    add(
        "/sentinel/replicas",
        json!(sentinels + 1 - (sentinels + 1) % 2),
        K::SentinelEvenCount,
    );
    let size = at("/storage/size").and_then(Value::as_str);
    if let (true, Some(bytes)) = (has("/storage/size"), size.and_then(super::cel::quantity)) {
        let mib = |x: f64| json!(format!("{}Mi", x.max(1.0)));
        let half = mib((bytes / 2_097_152.0).floor());
        out.push(Candidate::set("/storage/size", half, K::StorageShrink));
        let twice = mib((bytes / 524_288.0).ceil());
        let why = Some(
            "the operator refuses a new size on a running cluster; growing a claim needs a StorageClass that allows it",
        );
        out.push(Candidate::set("/storage/size", twice, K::StorageGrow).hint(why));
    }
    if at("/restoreFrom").is_none() && has("/restoreFrom/backup") {
        let restore = Candidate::set(
            "/restoreFrom",
            json!({"backup": "nightly"}),
            K::RestoreFromAdded,
        );
        out.push(restore.hint(Some("the backup must exist")));
    }
}
