//! What the history client asks for: the hot keys (placed so that every
//! shard of a cluster serves some), the seeded choice of the next
//! operation, and the values that make every write unique.
//!
//! Pure: no I/O, no clock. It never decides how an operation ended; that
//! is `classify`'s job.

use std::sync::atomic::{AtomicU64, Ordering};

use logbook_history::Function;

use crate::slots::{in_ranges, key_slot};

/// Names tried per key when looking for one that hashes into a shard: a
/// shard of a single slot needs about 16384 on average, so a million makes
/// missing one practically impossible.
const MAX_NAME_TRIES: u32 = 1 << 20;

/// The keys one run works on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotKeys {
    /// The lists (`RPUSH` / `LRANGE`).
    pub lists: Vec<String>,
    /// The registers (`SET` / `GET`).
    pub registers: Vec<String>,
}

impl HotKeys {
    /// `<prefix>:list:<i>` and `<prefix>:reg:<i>`: for a single primary,
    /// where any name will do.
    pub fn standalone(prefix: &str, lists: usize, registers: usize) -> HotKeys {
        HotKeys {
            lists: (0..lists).map(|i| format!("{prefix}:list:{i}")).collect(),
            registers: (0..registers)
                .map(|i| format!("{prefix}:reg:{i}"))
                .collect(),
        }
    }

    /// Keys spread over the shards whose slots are `shards` (one entry of
    /// inclusive ranges per shard): key `i` of each kind goes to shard
    /// `i mod shards`, so with at least as many keys as shards every shard
    /// holds some. Each key is the first of `<prefix>:list:<i>`,
    /// `<prefix>:list:<i>.0`, `<prefix>:list:<i>.1`, ... that hashes into
    /// its shard; no hash tag, so the keys of one shard sit in different
    /// slots, as an application's would.
    ///
    /// `None` when `shards` is empty or no name was found for a shard
    /// (one that serves no slot).
    pub fn spread(
        prefix: &str,
        lists: usize,
        registers: usize,
        shards: &[Vec<(u16, u16)>],
    ) -> Option<HotKeys> {
        let place = |kind: &str, count: usize, offset: usize| -> Option<Vec<String>> {
            (0..count)
                .map(|i| {
                    let shard = shards.get(i.wrapping_add(offset) % shards.len().max(1))?;
                    let plain = format!("{prefix}:{kind}:{i}");
                    if in_ranges(shard, key_slot(plain.as_bytes())) {
                        return Some(plain);
                    }
                    (0..MAX_NAME_TRIES)
                        .map(|n| format!("{plain}.{n}"))
                        .find(|name| in_ranges(shard, key_slot(name.as_bytes())))
                })
                .collect()
        };
        if shards.is_empty() {
            return None;
        }
        // Registers start one shard further, so a run with a register per
        // shard does not load the lists' first shard twice.
        Some(HotKeys {
            lists: place("list", lists, 0)?,
            registers: place("reg", registers, 1)?,
        })
    }

    /// How many keys of both kinds.
    pub fn len(&self) -> usize {
        self.lists.len().saturating_add(self.registers.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A small seeded generator (SplitMix64): each logical client draws its
/// own sequence from the run's seed, so a run's choice of operations can
/// be replayed (the interleaving, set by the servers, cannot).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// The generator of client `client` in a run seeded with `seed`.
    pub(crate) fn new(seed: u64, client: u64) -> Rng {
        Rng {
            state: seed ^ client.wrapping_mul(0xD1B5_4A32_D192_ED03),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64's mantissa exactly: 2^53 values,
        // each exact, scaled by 2^-53.
        const SCALE: f64 = 9_007_199_254_740_992.0;
        (self.next_u64() >> 11) as f64 / SCALE
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if n64 == 0 {
            return 0;
        }
        // The modulo bias is below 2^-50 for a dozen keys: irrelevant.
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }
}

/// The values written in one run: every append and every write gets the
/// next, so no two writes anywhere in the run carry the same value (the
/// list checker's founding assumption, and what lets a register read name
/// its write).
#[derive(Debug)]
pub(crate) struct Values(AtomicU64);

impl Values {
    /// Values start at 1, so a value never reads as a default 0.
    pub(crate) fn new() -> Values {
        Values(AtomicU64::new(1))
    }

    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// The next operation: a key drawn uniformly from every hot key, then a
/// read with probability `read_fraction`, else a write of a fresh value.
/// `None` when there are no keys.
pub(crate) fn next_function(
    rng: &mut Rng,
    keys: &HotKeys,
    read_fraction: f64,
    values: &Values,
) -> Option<Function> {
    let pick = rng.below(keys.len());
    let read = rng.unit() < read_fraction;
    if let Some(key) = keys.lists.get(pick) {
        let key = key.clone();
        return Some(if read {
            Function::ReadList { key }
        } else {
            Function::Append {
                key,
                value: values.next(),
            }
        });
    }
    let key = keys
        .registers
        .get(pick.saturating_sub(keys.lists.len()))?
        .clone();
    Some(if read {
        Function::ReadRegister { key }
    } else {
        Function::Write {
            key,
            value: values.next(),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn spread_keys_land_in_every_shard() {
        let shards = vec![vec![(0, 5460)], vec![(5461, 10922)], vec![(10923, 16383)]];
        let keys = HotKeys::spread("h", 12, 3, &shards).unwrap();
        assert_eq!((keys.lists.len(), keys.registers.len()), (12, 3));
        for (i, key) in keys.lists.iter().enumerate() {
            assert!(in_ranges(&shards[i % 3], key_slot(key.as_bytes())), "{key}");
        }
        for (i, key) in keys.registers.iter().enumerate() {
            assert!(in_ranges(&shards[(i + 1) % 3], key_slot(key.as_bytes())));
        }
        let distinct: HashSet<&String> = keys.lists.iter().chain(&keys.registers).collect();
        assert_eq!(distinct.len(), 15);
        // A one-slot shard still gets its key.
        let tiny = vec![vec![(42, 42)]];
        let keys = HotKeys::spread("h", 1, 0, &tiny).unwrap();
        assert_eq!(key_slot(keys.lists[0].as_bytes()), 42);
        assert_eq!(HotKeys::spread("h", 1, 0, &[]), None);
        assert_eq!(HotKeys::spread("h", 1, 0, &[vec![]]), None);
    }

    #[test]
    fn operations_follow_the_read_fraction_with_unique_values() {
        let keys = HotKeys::standalone("t", 12, 3);
        let values = Values::new();
        let mut rng = Rng::new(7, 0);
        let ops: Vec<Function> = (0..4000)
            .map(|_| next_function(&mut rng, &keys, 0.35, &values).unwrap())
            .collect();
        let reads = ops.iter().filter(|f| f.is_read()).count();
        assert!((1200..1600).contains(&reads), "{reads} reads of 4000");
        let written: Vec<u64> = ops
            .iter()
            .filter_map(|f| match f {
                Function::Append { value, .. } | Function::Write { value, .. } => Some(*value),
                Function::ReadList { .. } | Function::ReadRegister { .. } => None,
            })
            .collect();
        let distinct: HashSet<u64> = written.iter().copied().collect();
        assert_eq!(distinct.len(), written.len());
        assert!(!distinct.contains(&0));
        let touched: HashSet<&str> = ops.iter().map(Function::key).collect();
        assert_eq!(touched.len(), 15, "every hot key is used");
        assert!(ops.iter().any(|f| !f.is_list()));
        // The same seed and client draw the same keys and kinds.
        let mut again = Rng::new(7, 0);
        let replay: Vec<Function> = (0..10)
            .map(|_| next_function(&mut again, &keys, 0.35, &Values::new()).unwrap())
            .collect();
        for (a, b) in replay.iter().zip(&ops) {
            assert_eq!((a.key(), a.name()), (b.key(), b.name()));
        }
        assert_eq!(
            next_function(&mut rng, &HotKeys::default(), 0.5, &values),
            None
        );
    }
}
