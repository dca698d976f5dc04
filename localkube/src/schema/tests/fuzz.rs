//! Deterministic random JSON through every pass: nothing may panic.

use serde_json::{Map, Value, json};

use super::crd_like;

/// xorshift64*: tiny, deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KEYS: [&str; 12] = [
    "spec", "replicas", "name", "items", "config", "mode", "ports", "port", "x", "metadata",
    "kind", "null",
];

fn value(r: &mut Rng, depth: u32) -> Value {
    match r.below(if depth > 4 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(r.below(2) == 0),
        2 => json!(r.next() as i64 % 1000 - 500),
        3 => json!((r.next() % 10_000) as f64 / 7.0),
        4 => json!(
            [
                "",
                "a",
                "abc",
                "1Gi",
                "2024-01-01T00:00:00Z",
                "é\"\\",
                "x-y",
                "aGk="
            ][r.below(8) as usize]
        ),
        5 => json!(u64::MAX - r.below(3)),
        6 => Value::Array((0..r.below(4)).map(|_| value(r, depth + 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..r.below(5) {
                m.insert(
                    KEYS[r.below(KEYS.len() as u64) as usize].to_string(),
                    value(r, depth + 1),
                );
            }
            Value::Object(m)
        }
    }
}

#[test]
fn random_values_never_panic() {
    let schema = crd_like();
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let mut obj = value(&mut r, 0);
        if r.below(2) == 0 {
            obj = json!({"spec": value(&mut r, 1), "metadata": value(&mut r, 1)});
        }
        let old = if r.below(3) == 0 {
            Some(json!({"spec": value(&mut r, 1)}))
        } else {
            None
        };
        let _ = schema.validate(&obj, old.as_ref());
        let _ = schema.prune(&mut obj);
        schema.apply_defaults(&mut obj);
        let _ = schema.validate(&obj, old.as_ref());
    }
}
