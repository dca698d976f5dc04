//! Seeded randomized tests: a simulated server that is linearizable by
//! construction, several clients with random latencies and lost replies,
//! and the checkers run over what they recorded. Both must accept the
//! recorded history, and reject it once a known fault is planted.
//!
//! Each operation takes effect at one instant inside its interval, and the
//! simulation applies effects in the order of those instants: that is the
//! definition of a linearizable server, so any complaint from a checker on
//! an unmutated history is a checker bug. A failure names its seed.

use std::collections::HashMap;

use crate::list::check_list;
use crate::op::{Function, History, Nanos, Op, Outcome, Returned};
use crate::recorder::Recorder;
use crate::register::{RegisterConfig, Verdict, check_registers};
use crate::report::AnomalyKind;

/// SplitMix64: small, seedable, good enough to shuffle a workload.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `1..=n`.
    fn between_one_and(&mut self, n: u64) -> u64 {
        self.next() % n + 1
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    List,
    Register,
}

/// What happens to one call on the way.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Applied and answered.
    Answered,
    /// Refused by the server: not applied.
    Refused,
    /// Applied, but the reply was lost.
    ReplyLost,
    /// Never reached the server.
    RequestLost,
}

struct Pending {
    id: crate::op::OpId,
    f: Function,
    effect_at: Nanos,
    fate: Fate,
}

struct Client {
    process: u64,
    remaining: usize,
    pending: Option<Pending>,
}

const KEYS: [&str; 3] = ["a", "b", "c"];
const FINAL_PROCESS: u64 = 1_000_000;

/// Records a run of `clients` clients making `per_client` calls each on a
/// linearizable server, then one final read per key after all of them.
fn simulate(seed: u64, workload: Workload, clients: u64, per_client: usize) -> History {
    let mut rng = SplitMix(seed);
    let mut recorder = Recorder::new();
    let mut lists: HashMap<String, Vec<u64>> = HashMap::new();
    let mut registers: HashMap<String, u64> = HashMap::new();
    let mut next_value = 1u64;
    let mut clients: Vec<Client> = (0..clients)
        .map(|process| Client {
            process,
            remaining: per_client,
            pending: None,
        })
        .collect();
    let count = clients.len() as u64;

    let mut invoke = |client: &mut Client, at: Nanos, rng: &mut SplitMix, next_value: &mut u64| {
        if client.remaining == 0 {
            client.pending = None;
            return;
        }
        client.remaining -= 1;
        let key = KEYS[(rng.next() % KEYS.len() as u64) as usize].to_owned();
        let write = rng.percent(50);
        let f = match (workload, write) {
            (Workload::List, true) => Function::Append {
                key,
                value: *next_value,
            },
            (Workload::List, false) => Function::ReadList { key },
            (Workload::Register, true) => Function::Write {
                key,
                value: *next_value,
            },
            (Workload::Register, false) => Function::ReadRegister { key },
        };
        *next_value += 1;
        let roll = rng.next() % 100;
        let fate = match roll {
            0..=3 => Fate::Refused,
            4..=6 => Fate::ReplyLost,
            7..=9 => Fate::RequestLost,
            _ => Fate::Answered,
        };
        let id = recorder.invoke(client.process, f.clone(), at);
        client.pending = Some(Pending {
            id,
            f,
            effect_at: at + rng.between_one_and(1_000),
            fate,
        });
    };

    for client in &mut clients {
        let start = rng.between_one_and(500);
        invoke(client, start, &mut rng, &mut next_value);
    }
    let mut completions: Vec<(crate::op::OpId, Outcome, Nanos)> = Vec::new();
    let mut end = 0;
    // Effects in the order of their instants: each new effect is later
    // than the one just applied, so this order is real.
    while let Some(client) = clients
        .iter_mut()
        .filter(|c| c.pending.is_some())
        .min_by_key(|c| c.pending.as_ref().map(|p| p.effect_at))
    {
        let pending = client.pending.take().unwrap();
        let applied = matches!(pending.fate, Fate::Answered | Fate::ReplyLost);
        let result = if applied {
            match &pending.f {
                Function::Append { key, value } => {
                    lists.entry(key.clone()).or_default().push(*value);
                    Returned::Done
                }
                Function::ReadList { key } => {
                    Returned::List(lists.get(key.as_str()).cloned().unwrap_or_default())
                }
                Function::Write { key, value } => {
                    registers.insert(key.clone(), *value);
                    Returned::Done
                }
                Function::ReadRegister { key } => {
                    Returned::Register(registers.get(key.as_str()).copied())
                }
            }
        } else {
            Returned::Done
        };
        let completed = pending.effect_at + rng.between_one_and(1_000);
        end = end.max(completed);
        let outcome = match pending.fate {
            Fate::Answered => Outcome::Ok(result),
            Fate::Refused => Outcome::fail("NOREPLICAS"),
            Fate::ReplyLost | Fate::RequestLost => Outcome::unknown("timeout"),
        };
        let lost = matches!(outcome, Outcome::Unknown(_));
        completions.push((pending.id, outcome, completed));
        if lost {
            // As in Jepsen: a client that lost track of a call carries on
            // under a new process id.
            client.process += count;
        }
        let think = rng.between_one_and(200);
        invoke(client, completed + think, &mut rng, &mut next_value);
    }
    for (id, outcome, at) in completions {
        recorder.complete(id, outcome, at).unwrap();
    }
    // One read per key after everything has ended: the final reads.
    for (n, key) in KEYS.iter().enumerate() {
        let at = end + 10 + n as u64 * 10;
        let (f, outcome) = match workload {
            Workload::List => (
                Function::ReadList {
                    key: (*key).to_owned(),
                },
                Outcome::list(lists.get(*key).cloned().unwrap_or_default()),
            ),
            Workload::Register => (
                Function::ReadRegister {
                    key: (*key).to_owned(),
                },
                Outcome::register(registers.get(*key).copied()),
            ),
        };
        let id = recorder.invoke(FINAL_PROCESS, f, at);
        recorder.complete(id, outcome, at + 5).unwrap();
    }
    recorder.finish().unwrap()
}

fn ops_mut(history: &History) -> Vec<Op> {
    history.ops().to_vec()
}

/// Removes an acknowledged append's value from the final read of its key.
fn drop_from_final_read(history: &History) -> Option<History> {
    let mut ops = ops_mut(history);
    let acked: HashMap<u64, ()> = ops
        .iter()
        .filter_map(|op| match (&op.f, &op.outcome) {
            (Function::Append { value, .. }, Outcome::Ok(_)) => Some((*value, ())),
            _ => None,
        })
        .collect();
    let last = ops.iter_mut().rev().find(|op| {
        op.process == FINAL_PROCESS
            && op
                .ok_list()
                .is_some_and(|l| l.iter().any(|v| acked.contains_key(v)))
    })?;
    if let Outcome::Ok(Returned::List(values)) = &mut last.outcome {
        let at = values.iter().position(|v| acked.contains_key(v))?;
        values.remove(at);
    }
    History::new(ops).ok()
}

/// Cuts a read before a value whose append was acknowledged before the
/// read began: the read now serves an older list.
fn serve_old_list(history: &History) -> Option<History> {
    let mut ops = ops_mut(history);
    let acked: HashMap<u64, Nanos> = ops
        .iter()
        .filter_map(|op| match (&op.f, &op.outcome, op.completed_at) {
            (Function::Append { value, .. }, Outcome::Ok(_), Some(at)) => Some((*value, at)),
            _ => None,
        })
        .collect();
    let (index, cut) = ops.iter().enumerate().find_map(|(i, op)| {
        if op.process == FINAL_PROCESS {
            return None;
        }
        let values = op.ok_list()?;
        let cut = values
            .iter()
            .position(|v| acked.get(v).is_some_and(|at| *at < op.invoked_at))?;
        Some((i, cut))
    })?;
    if let Outcome::Ok(Returned::List(values)) = &mut ops[index].outcome {
        values.truncate(cut);
    }
    History::new(ops).ok()
}

/// Makes a read return the value of a write that real time places before
/// the write it saw: the write it saw completed before the read began, and
/// the older one completed before that write was invoked.
fn read_older_value(history: &History) -> Option<History> {
    let mut ops = ops_mut(history);
    // (key, value, invoked, completed) of every acknowledged write.
    let writes: Vec<(String, u64, Nanos, Nanos)> = ops
        .iter()
        .filter_map(|op| match (&op.f, &op.outcome, op.completed_at) {
            (Function::Write { key, value }, Outcome::Ok(_), Some(done)) => {
                Some((key.clone(), *value, op.invoked_at, done))
            }
            _ => None,
        })
        .collect();
    let (index, older) = ops.iter().enumerate().find_map(|(i, op)| {
        let Function::ReadRegister { key } = &op.f else {
            return None;
        };
        let seen = op.ok_register()??;
        let (_, _, seen_invoked, seen_done) = writes.iter().find(|(_, v, _, _)| *v == seen)?;
        if *seen_done >= op.invoked_at {
            return None;
        }
        let (_, older, _, _) = writes
            .iter()
            .find(|(k, _, _, done)| k == key && done < seen_invoked)?;
        Some((i, *older))
    })?;
    ops[index].outcome = Outcome::register(Some(older));
    History::new(ops).ok()
}

#[test]
fn simulated_linearizable_lists_pass_and_planted_faults_are_found() {
    // Across the seeds, unknown appends both took effect and did not.
    let (mut unknown_seen, mut unknown_absent) = (0, 0);
    let mut stale_planted = 0;
    for seed in 0..12 {
        let history = simulate(seed, Workload::List, 5, 60);
        let finals: Vec<u64> = history
            .ops()
            .iter()
            .filter(|op| op.process == FINAL_PROCESS)
            .filter_map(Op::ok_list)
            .flatten()
            .copied()
            .collect();
        for op in history.ops() {
            if let (Function::Append { value, .. }, Outcome::Unknown(_)) = (&op.f, &op.outcome) {
                if finals.contains(value) {
                    unknown_seen += 1;
                } else {
                    unknown_absent += 1;
                }
            }
        }
        let report = check_list(&history);
        assert!(
            report.valid(),
            "seed {seed}: {:#?}",
            report.anomalies.first()
        );
        assert!(report.loss_fully_judged(), "seed {seed}");

        let lost = drop_from_final_read(&history).expect("an acknowledged append");
        let report = check_list(&lost);
        assert!(
            report.count(AnomalyKind::LostAppend) >= 1,
            "seed {seed}: {:#?}",
            report.by_kind
        );

        if let Some(stale) = serve_old_list(&history) {
            stale_planted += 1;
            let report = check_list(&stale);
            assert!(
                report.count(AnomalyKind::StaleRead) >= 1,
                "seed {seed}: {:#?}",
                report.by_kind
            );
        }
    }
    assert!(
        unknown_seen > 0 && unknown_absent > 0,
        "{unknown_seen} {unknown_absent}"
    );
    assert!(
        stale_planted >= 6,
        "too few histories could be mutated: {stale_planted}"
    );
}

#[test]
fn simulated_linearizable_registers_pass_and_planted_faults_are_found() {
    let config = RegisterConfig::default();
    let mut mutated = 0;
    for seed in 100..112 {
        let history = simulate(seed, Workload::Register, 5, 60);
        let report = check_registers(&history, &config);
        assert!(report.valid(), "seed {seed}: {:#?}", report.keys);

        if let Some(older) = read_older_value(&history) {
            mutated += 1;
            let report = check_registers(&older, &config);
            assert_eq!(
                report.illegal().count(),
                1,
                "seed {seed}: {:#?}",
                report.keys
            );
            assert!(
                report
                    .keys
                    .iter()
                    .all(|k| !matches!(k.verdict, Verdict::Unknown { .. }))
            );
        }
    }
    assert!(
        mutated >= 6,
        "too few histories could be mutated: {mutated}"
    );
}

#[test]
fn a_simulated_history_survives_json_lines() {
    let history = simulate(7, Workload::List, 3, 20);
    let lines: Vec<String> = history
        .ops()
        .iter()
        .map(|op| serde_json::to_string(op).unwrap())
        .collect();
    let back: Vec<Op> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let back = History::new(back).unwrap();
    assert_eq!(back, history);
    assert_eq!(check_list(&back), check_list(&history));
}
