//! Specs built from the schema and from mutations: valid values for a
//! field and a spec with every field ([`example_spec`]), one mutation
//! applied ([`apply`]), and seeded chains of mutations ([`chains`]), what
//! one trial applies to a cluster step by step. A chain is a pure function
//! of the schema, the base spec, the seed, its index and the maximum
//! length, so a failing trial is reproduced from the text its [`Chain`]
//! prints.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use super::mutate::{self, Expectation, Known, Mutation, Op, short};
use super::schema::{CrdSchema, FieldType, escape, field_type, string_ok};

/// Why a mutation could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The path is not a JSON pointer.
    #[error("{pointer:?} is not a JSON pointer: it must be empty or start with '/'")]
    BadPointer {
        /// The path as given.
        pointer: String,
    },
    /// The path goes through a value that is neither an object nor an array.
    #[error("cannot go through {at:?}: it is {found}, neither an object nor an array")]
    NotAContainer {
        /// Where (a JSON pointer; empty for the spec itself).
        at: String,
        /// What is there.
        found: String,
    },
    /// An array is indexed by something that is not one of its indices.
    #[error("{at:?} is an array of {len}: {segment:?} is not an index of it")]
    BadIndex {
        /// The array (a JSON pointer).
        at: String,
        /// The segment used.
        segment: String,
        /// Its length.
        len: usize,
    },
    /// A Delete of the whole spec.
    #[error("cannot delete the whole spec")]
    DeleteRoot,
}

/// `spec` with `m` applied. A Set creates the objects missing on its way
/// (a null on the way counts as missing) and may append to an array at its
/// length (or `-`). A Delete of something already absent (a missing key, a
/// missing parent, an index past the end) is a no-op: the field is absent
/// either way. Going through a string, number or boolean is an error.
///
/// # Errors
/// [`ApplyError`] naming the pointer and what is wrong with it.
pub fn apply(spec: &Value, m: &Mutation) -> Result<Value, ApplyError> {
    apply_op(spec, &m.path, &m.op)
}

pub(crate) fn apply_op(spec: &Value, pointer: &str, op: &Op) -> Result<Value, ApplyError> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return match (pointer.is_empty(), op) {
            (true, Op::Set(v)) => Ok(v.clone()),
            (true, Op::Delete) => Err(ApplyError::DeleteRoot),
            (false, _) => Err(ApplyError::BadPointer {
                pointer: pointer.to_owned(),
            }),
        };
    };
    let segs: Vec<String> = rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, parents) = segs.split_last().ok_or_else(|| ApplyError::BadPointer {
        pointer: pointer.to_owned(),
    })?;
    let mut out = spec.clone();
    let mut cur = &mut out;
    let mut at = String::new();
    for seg in parents {
        cur = match cur {
            Value::Object(map) => {
                let slot = map.entry(seg.clone()).or_insert(Value::Null);
                if slot.is_null() {
                    if *op == Op::Delete {
                        return Ok(spec.clone());
                    }
                    *slot = Value::Object(Map::new());
                }
                slot
            }
            Value::Array(items) => {
                let len = items.len();
                let i = index(seg, len, &at)?;
                match items.get_mut(i) {
                    Some(item) => item,
                    None if *op == Op::Delete => return Ok(spec.clone()),
                    None => return Err(bad_index(&at, seg, len)),
                }
            }
            other => {
                return Err(ApplyError::NotAContainer {
                    at,
                    found: short(other),
                });
            }
        };
        at.push('/');
        at.push_str(&escape(seg));
    }
    match (cur, op) {
        (Value::Object(map), Op::Set(v)) => {
            map.insert(last.clone(), v.clone());
        }
        (Value::Object(map), Op::Delete) => {
            map.remove(last);
        }
        (Value::Array(items), Op::Set(v)) => {
            let len = items.len();
            let i = if last == "-" {
                len
            } else {
                index(last, len, &at)?
            };
            match items.get_mut(i) {
                Some(slot) => *slot = v.clone(),
                None if i == len => items.push(v.clone()),
                None => return Err(bad_index(&at, last, len)),
            }
        }
        (Value::Array(items), Op::Delete) => {
            let i = index(last, items.len(), &at)?;
            if i < items.len() {
                items.remove(i);
            }
        }
        (other, _) => {
            return Err(ApplyError::NotAContainer {
                at,
                found: short(other),
            });
        }
    }
    Ok(out)
}

fn bad_index(at: &str, seg: &str, len: usize) -> ApplyError {
    ApplyError::BadIndex {
        at: at.to_owned(),
        segment: seg.to_owned(),
        len,
    }
}

fn index(seg: &str, len: usize, at: &str) -> Result<usize, ApplyError> {
    let digits = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
    let ok = digits && (seg == "0" || !seg.starts_with('0'));
    ok.then(|| seg.parse().ok())
        .flatten()
        .ok_or_else(|| bad_index(at, seg, len))
}

/// A valid string for the node other than `avoid`, if one of a few
/// candidates is.
pub(crate) fn string_sample(node: &Value, avoid: Option<&str>) -> Option<String> {
    thread_local! {
        /// Samples found so far, by what they depend on: patterns are slow.
        static FOUND: RefCell<HashMap<String, Option<String>>> = RefCell::default();
    }
    let text = |k: &str| node.get(k).map(Value::to_string).unwrap_or_default();
    let limits = ["enum", "minLength", "maxLength", "pattern"]
        .map(text)
        .join("\u{0}");
    let key = format!("{limits}\u{0}{avoid:?}");
    FOUND.with(|found| {
        if let Some(hit) = found.try_borrow().ok()?.get(&key) {
            return hit.clone();
        }
        let sample = find_string(node, avoid);
        // Long current values (a StringLong's) are not worth keeping.
        if let (true, Ok(mut f)) = (key.len() < 1024, found.try_borrow_mut()) {
            f.insert(key, sample.clone());
        }
        sample
    })
}

fn find_string(node: &Value, avoid: Option<&str>) -> Option<String> {
    if let Some(first) = node.get("enum").and_then(Value::as_array).and_then(|e| {
        e.iter()
            .filter_map(Value::as_str)
            .find(|e| Some(*e) != avoid)
    }) {
        return Some(first.to_owned());
    }
    let min = node.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    let long = "x".repeat(usize::try_from(min).unwrap_or(0));
    let candidates = ["valkey-test", "logbook-sample", "a", "1Gi", "2Gi"];
    let more = ["http://example.test", long.as_str()];
    candidates
        .into_iter()
        .chain(more)
        .find(|c| Some(*c) != avoid && string_ok(node, c))
        .map(str::to_owned)
}

/// A small valid value for a schema node: its default, else a value of
/// its type within its bounds, objects with their required properties
/// only, arrays with as few items as allowed.
pub(crate) fn sample(node: &Value) -> Value {
    if let Some(d) = node.get("default") {
        return d.clone();
    }
    if let Some(first) = node
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    scalar(node).unwrap_or_else(|| match field_type(node) {
        FieldType::Array(_) => {
            let min = node.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = node.get("items").map_or(Value::Null, sample);
            Value::Array((0..min).map(|_| item.clone()).collect())
        }
        _ => {
            let mut map = Map::new();
            let props = node.get("properties").and_then(Value::as_object);
            for k in node
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some((k, prop)) = k.as_str().and_then(|k| Some((k, props?.get(k)?))) {
                    map.insert(k.to_owned(), sample(prop));
                }
            }
            Value::Object(map)
        }
    })
}

fn scalar(node: &Value) -> Option<Value> {
    Some(match field_type(node) {
        FieldType::String => Value::from(string_sample(node, None).unwrap_or_default()),
        FieldType::Integer | FieldType::Number => {
            let min = node
                .get("minimum")
                .and_then(Value::as_f64)
                .unwrap_or(f64::MIN);
            let max = node
                .get("maximum")
                .and_then(Value::as_f64)
                .unwrap_or(f64::MAX);
            Value::from(1f64.clamp(min, max.max(min)).round() as i64)
        }
        FieldType::Boolean => Value::Bool(true),
        FieldType::IntOrString => Value::from("1"),
        _ => return None,
    })
}

/// A value with every property of the node present (recursively), arrays
/// and maps with one entry each: what makes every field of a spec exist.
pub(crate) fn filled(node: &Value) -> Value {
    if let Some(s) = scalar(node) {
        return node.get("default").cloned().unwrap_or(s);
    }
    match field_type(node) {
        FieldType::Array(_) => Value::Array(node.get("items").map(filled).into_iter().collect()),
        FieldType::Map(_) => {
            let ap = node.get("additionalProperties").map_or(Value::Null, filled);
            Value::Object(Map::from_iter([("logbook-key".to_owned(), ap)]))
        }
        FieldType::Object => {
            let props = node.get("properties").and_then(Value::as_object);
            let map = props.into_iter().flatten();
            Value::Object(map.map(|(k, p)| (k.clone(), filled(p))).collect())
        }
        _ => Value::Object(Map::new()),
    }
}

/// A spec of `schema`'s kind with every field present: arrays and maps
/// with one entry each, scalars their defaults or small valid values. It
/// need not be valid (the CRD's rules may forbid fields together); it is
/// what gives every field, even those inside list items, a mutation in
/// [`mutate::mutations_for`].
pub fn example_spec(schema: &CrdSchema) -> Value {
    filled(&schema.spec_schema)
}

/// The longest chain [`chains`] makes, whatever it is asked.
pub const MAX_CHAIN_LEN: usize = 10;

/// One trial's mutations, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The CRD kind.
    pub crd_kind: String,
    /// The seed of [`chains`].
    pub seed: u64,
    /// The chain's index for that seed ([`chain`] with it rebuilds it).
    pub index: u64,
    /// The maximum length it was made with.
    pub max_len: usize,
    /// The spec the chain starts from.
    pub base: Value,
    /// Each step's mutation and the spec it attempts (the spec it starts
    /// from with the mutation applied). A step expected to be refused by
    /// the schema attempts its spec but the next step starts from the
    /// same spec it did: see [`Chain::expected_after`].
    pub steps: Vec<(Mutation, Value)>,
    /// The spec each step starts from: what reverting that step restores.
    pub reverts: Vec<Value>,
}

impl Chain {
    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether it has no step (only when nothing can be mutated).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The spec the object should have after `step` (0-based): the
    /// attempted one, or, when the step is expected to be refused by the
    /// schema, the one it started from.
    pub fn expected_after(&self, step: usize) -> Option<&Value> {
        let (m, attempted) = self.steps.get(step)?;
        match m.expect {
            Expectation::RefuseBySchema => self.reverts.get(step),
            Expectation::Accept | Expectation::Unknown => Some(attempted),
        }
    }

    /// The spec the object should have at the end.
    pub fn final_spec(&self) -> &Value {
        self.len()
            .checked_sub(1)
            .and_then(|last| self.expected_after(last))
            .unwrap_or(&self.base)
    }

    /// What makes two chains the same: their steps' paths and ops.
    fn key(&self) -> String {
        self.steps
            .iter()
            .map(|(m, _)| format!("{} {:?};", m.path, m.op))
            .collect()
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} chain seed={} index={} max_len={}: {} steps (spec_mutations::chain(schema, base, {}, {}, {}) rebuilds it)",
            self.crd_kind,
            self.seed,
            self.index,
            self.max_len,
            self.len(),
            self.seed,
            self.index,
            self.max_len,
        )?;
        writeln!(f, "  base: {}", self.base)?;
        for (i, (m, _)) in self.steps.iter().enumerate() {
            writeln!(f, "  {}. {m}", i + 1)?;
        }
        Ok(())
    }
}

/// SplitMix64 (Steele, Lea, Flood): small, fast and good enough to pick
/// mutations; written here so that a seed means the same chains forever.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; 0 when it is not).
    fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next_u64() % n).unwrap_or(0)
    }
}

/// Chain number `index` of `seed`: 1 to `max_len` steps (capped at
/// [`MAX_CHAIN_LEN`]), each picked from [`mutate::mutations_for`]'s
/// candidates for the spec the step starts from (a semantic one a quarter
/// of the time, when there is one), judged as an update of that spec. A
/// step expected to be refused by the schema leaves the next step's start
/// unchanged.
pub fn chain(schema: &CrdSchema, base: &Value, seed: u64, index: u64, max_len: usize) -> Chain {
    chain_with(schema, &Known::of(schema), base, seed, index, max_len)
}

fn chain_with(
    schema: &CrdSchema,
    known: &Known,
    base: &Value,
    seed: u64,
    index: u64,
    max_len: usize,
) -> Chain {
    let max_len = max_len.clamp(1, MAX_CHAIN_LEN);
    let mut rng = SplitMix64(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    rng.next_u64();
    let len = 1 + rng.below(max_len);
    let mut current = base.clone();
    let mut steps = Vec::with_capacity(len);
    let mut reverts = Vec::with_capacity(len);
    for _ in 0..len {
        let candidates = mutate::candidates(schema, known, &current);
        let semantic: Vec<usize> = (0..candidates.len())
            .filter(|i| candidates.get(*i).is_some_and(|c| c.kind.is_semantic()))
            .collect();
        let mut picked = None;
        for _ in 0..32 {
            let i = match semantic.len() {
                n if n > 0 && rng.below(4) == 0 => semantic.get(rng.below(n)).copied(),
                _ => Some(rng.below(candidates.len())),
            };
            let candidate = i.and_then(|i| candidates.get(i));
            picked = candidate
                .and_then(|c| mutate::judge(schema, &current, c))
                .filter(|(m, after)| {
                    m.expect == Expectation::RefuseBySchema
                        || schema.kind != "ValkeyCluster"
                        || data_pods(after) <= MAX_DATA_PODS
                });
            if picked.is_some() {
                break;
            }
        }
        let Some((m, after)) = picked else {
            break;
        };
        let refused = m.expect == Expectation::RefuseBySchema;
        reverts.push(current.clone());
        if !refused {
            current = after.clone();
        }
        steps.push((m, after));
    }
    Chain {
        crd_kind: schema.kind.clone(),
        seed,
        index,
        max_len,
        base: base.clone(),
        steps,
        reverts,
    }
}

/// The most data pods a generated ValkeyCluster spec the schema accepts
/// may ask for: what a 2-core machine runs within a step's bound (the
/// schema's maxima, 500 shards of 6 pods or 100 replicas, are thousands
/// of processes; a `maximum + 1` is still generated, and refused).
pub const MAX_DATA_PODS: i64 = 16;

/// The data pods `spec` asks for (its defaults where a field is absent).
pub fn data_pods(spec: &Value) -> i64 {
    let int =
        |field: &str, default: i64| spec.get(field).and_then(Value::as_i64).unwrap_or(default);
    match spec.get("topology").and_then(Value::as_str) {
        Some("Standalone") => 1,
        Some("Cluster") => int("shards", 3).saturating_mul(1 + int("replicasPerShard", 1)),
        _ => int("replicas", 3),
    }
}

/// `count` distinct chains (distinct in their steps' paths and ops) for
/// `seed`, from `base`: [`chain`] with indices 0, 1, ..., skipping an
/// index whose chain repeats an earlier one. Fewer come back only when the
/// schema cannot give that many (after `8 × count + 64` indices).
pub fn chains(
    schema: &CrdSchema,
    base: &Value,
    seed: u64,
    count: usize,
    max_len: usize,
) -> Vec<Chain> {
    let known = Known::of(schema);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(count);
    let limit = u64::try_from(count.saturating_mul(8).saturating_add(64)).unwrap_or(u64::MAX);
    let mut index = 0;
    while out.len() < count && index < limit {
        let c = chain_with(schema, &known, base, seed, index, max_len);
        index += 1;
        if !c.is_empty() && seen.insert(c.key()) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::SplitMix64;

    #[test]
    fn splitmix64_is_the_reference_sequence() {
        // The first outputs of SplitMix64 seeded with 1234567 (Vigna's
        // reference implementation).
        let mut r = SplitMix64(1_234_567);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
        let mut r = SplitMix64(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0);
    }
}
