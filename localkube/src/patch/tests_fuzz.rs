//! Deterministic fuzzing: random JSON documents and patches (including
//! directive keys) through every engine, proving none of them panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Map, Value, json};

use super::managed::{Writer, apply, record_update};
use super::{builtin_list_types, json_patch, merge_patch, strategic_merge_patch};

/// xorshift64*: small, deterministic, good enough to explore shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Field names the built-in tables know, plus directives, so lists get
/// merged by key and directives get exercised.
const KEYS: &[&str] = &[
    "spec",
    "metadata",
    "containers",
    "env",
    "ports",
    "name",
    "image",
    "value",
    "finalizers",
    "labels",
    "containerPort",
    "protocol",
    "template",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$deleteFromPrimitiveList/finalizers",
    "$setElementOrder/env",
    "replicas",
    "ownerReferences",
    "uid",
];
const STRINGS: &[&str] = &["a", "b", "app", "replace", "delete", "merge", "TCP", "name"];

fn value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth == 0 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.below(3)),
        2 | 3 => json!(rng.pick(STRINGS)),
        4 => Value::Bool(rng.below(2) == 0),
        5 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth - 1)).collect()),
        _ => Value::Object(object(rng, depth - 1)),
    }
}

fn object(rng: &mut Rng, depth: u32) -> Map<String, Value> {
    (0..rng.below(5))
        .map(|_| (rng.pick(KEYS).to_owned(), value(rng, depth)))
        .collect()
}

fn pointer(rng: &mut Rng) -> String {
    (0..rng.below(3))
        .map(|_| {
            format!(
                "/{}",
                if rng.below(3) == 0 {
                    "0"
                } else {
                    rng.pick(KEYS)
                }
            )
        })
        .collect()
}

fn json_ops(rng: &mut Rng) -> Value {
    let ops = ["add", "remove", "replace", "move", "copy", "test", "bogus"];
    Value::Array(
        (0..rng.below(4))
            .map(|_| json!({"op": rng.pick(&ops), "path": pointer(rng), "from": pointer(rng), "value": value(rng, 2)}))
            .collect(),
    )
}

#[test]
fn random_documents_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let kinds = [
        ("", "Pod"),
        ("apps", "StatefulSet"),
        ("", "Service"),
        ("batch", "CronJob"),
    ];
    for round in 0..3000 {
        let (group, kind) = kinds[round % kinds.len()];
        let lists = builtin_list_types(group, kind).unwrap();
        let target = Value::Object(object(&mut rng, 4));
        let patch = Value::Object(object(&mut rng, 4));
        let _ = merge_patch(&target, &patch);
        let _ = json_patch(&target, &json_ops(&mut rng));
        let _ = strategic_merge_patch(&target, &patch, lists);
        let _ = strategic_merge_patch(&target, &value(&mut rng, 3), lists);

        let writer = Writer {
            manager: rng.pick(&["a", "b"]),
            api_version: "v1",
            now: "t",
            subresource: None,
        };
        let force = rng.below(2) == 0;
        if let Ok(live) = apply(None, &target, &writer, force, lists) {
            let _ = apply(Some(&live), &patch, &writer, force, lists);
            let mut updated = merge_patch(&live, &patch);
            record_update(Some(&live), &mut updated, &writer, lists);
        }
        let mut created = patch.clone();
        record_update(None, &mut created, &writer, lists);
        let mut garbage = value(&mut rng, 2);
        record_update(Some(&target), &mut garbage, &writer, lists);
    }
}
