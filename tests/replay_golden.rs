//! `logbook replay` on golden journals recorded from real end-to-end runs
//! (`replay/tests/golden/*.frames`, made by `make golden`): a failover, a
//! switchover, and an operator crash in the middle of a failover.
//!
//! Each golden is the journal's own bytes, so reading it here is also the
//! promise that this format stays readable by every later build. Each is
//! loaded into a fresh sled directory (the `--dir` source) and exported to
//! JSONL (the `--file` source); `failovers` and `audit` are checked field by
//! field against the facts recorded beside it (`<name>.json`); tampered
//! copies must fail `verify` at the exact seq; a decision rewritten (and the
//! chain re-hashed so that only the decision differs) must give exactly one
//! determinism finding.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use logbook::cli::{Cli, Error, run};
use logbook_journal::codec;
use logbook_journal::{
    ChainHash, Durability, EncodedEvent, Envelope, Event, Intent, JournalStore, SledStore, StreamId,
};
use serde_json::Value;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/replay/tests/golden");

/// A golden journal: its frames and recorded facts.
struct Golden {
    name: &'static str,
    facts: Value,
    events: Vec<EncodedEvent>,
}

impl Golden {
    fn load(name: &'static str) -> Self {
        let bytes = std::fs::read(format!("{GOLDEN}/{name}.frames")).unwrap();
        let facts: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{GOLDEN}/{name}.json")).unwrap(),
        )
        .unwrap();
        let events = logbook_replay::frames::split(&bytes).unwrap();
        Self {
            name,
            facts,
            events,
        }
    }

    fn stream(&self) -> StreamId {
        StreamId::new(self.facts["stream"].as_str().unwrap()).unwrap()
    }

    fn fact(&self, key: &str) -> &Value {
        &self.facts["facts"][key]
    }

    /// A fact that is a number (a seq, an offset).
    fn number(&self, key: &str) -> u64 {
        self.fact(key)
            .as_u64()
            .unwrap_or_else(|| panic!("{}: fact {key} is not a number", self.name))
    }

    /// The golden in a fresh sled directory.
    fn sled(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_sled(dir.path(), &self.stream(), &self.events);
        dir
    }
}

fn write_sled(dir: &Path, stream: &StreamId, events: &[EncodedEvent]) {
    let store = SledStore::open(dir, Durability::Flush).unwrap();
    futures::executor::block_on(store.append(stream, 1, events)).unwrap();
    store.flush().unwrap();
}

/// Runs `logbook <args>` in-process; returns the result and the output.
fn cli(args: &[&str]) -> (Result<(), Error>, String) {
    let cli = Cli::try_parse_from(std::iter::once("logbook").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    let result = run(cli, &mut out);
    let printed = String::from_utf8(out).unwrap();
    eprintln!("$ logbook {}\n{printed}=> {result:?}\n", args.join(" "));
    (result, printed)
}

fn ok(args: &[&str]) -> String {
    let (result, printed) = cli(args);
    result.unwrap();
    printed
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

fn dir_args<'a>(dir: &'a Path, verb: &'a [&'a str]) -> Vec<&'a str> {
    let mut args = vec!["replay"];
    args.extend_from_slice(verb);
    args.extend(["--dir", dir.to_str().unwrap()]);
    args
}

/// The golden exported as JSONL into `dir`.
fn export_jsonl(from: &Path, to: &Path) -> PathBuf {
    let file = to.join("export.jsonl");
    ok(&[
        "replay",
        "export",
        "--format",
        "jsonl",
        "--dir",
        from.to_str().unwrap(),
        "--output",
        file.to_str().unwrap(),
    ]);
    file
}

/// Re-encodes `envelopes` from seq 1 with a fresh, valid chain.
fn rechain(envelopes: &mut [Envelope]) -> Vec<EncodedEvent> {
    let mut prev = ChainHash::GENESIS;
    envelopes
        .iter_mut()
        .map(|env| {
            env.prev = prev;
            let encoded = codec::encode_event(env).unwrap();
            env.hash = encoded.hash;
            prev = encoded.hash;
            encoded
        })
        .collect()
}

#[test]
fn every_golden_verifies_with_the_recorded_head() {
    for name in ["failover", "switchover", "restart_mid_failover"] {
        let golden = Golden::load(name);
        let dir = golden.sled();
        let printed = ok(&dir_args(dir.path(), &["verify"]));
        let head = golden.facts["head_hash"].as_str().unwrap();
        let seq = golden.facts["head_seq"].as_u64().unwrap();
        assert_eq!(
            printed.trim(),
            format!(
                "OK stream {}: {seq} events verified, head seq {seq} hash {head}",
                golden.stream()
            ),
            "{}",
            golden.name
        );
        // The JSONL export verifies to the same head.
        let tmp = tempfile::tempdir().unwrap();
        let file = export_jsonl(dir.path(), tmp.path());
        let printed = ok(&["replay", "verify", "--file", file.to_str().unwrap()]);
        assert!(
            printed.contains(&format!("head seq {seq} hash {head}")),
            "{printed}"
        );
    }
}

/// The one failover record of `golden`, through `--dir` and through the
/// JSONL export (which must agree).
fn the_failover(golden: &Golden) -> Value {
    let dir = golden.sled();
    let records = json(&dir_args(dir.path(), &["failovers", "--json"]));
    let tmp = tempfile::tempdir().unwrap();
    let file = export_jsonl(dir.path(), tmp.path());
    let from_file = json(&[
        "replay",
        "failovers",
        "--json",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        records, from_file,
        "{}: --dir and --file disagree",
        golden.name
    );
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 1, "{}: {records:#?}", golden.name);
    records[0].clone()
}

fn seq_of(mark: &Value) -> u64 {
    mark["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq in {mark}"))
}

#[test]
fn failovers_of_the_automatic_failover_field_by_field() {
    let golden = Golden::load("failover");
    let r = the_failover(&golden);
    assert_eq!(r["kind"], "automatic");
    assert_eq!(r["old_primary"], *golden.fact("old_primary"));
    assert_eq!(r["new_primary"], *golden.fact("new_primary"));
    let decided = &r["decided"];
    assert_eq!(decided["seq"], *golden.fact("decided_seq"));
    assert_eq!(decided["intent_id"], *golden.fact("promote_intent_id"));
    assert_eq!(decided["reason"], *golden.fact("reason"));
    assert_eq!(decided["detail"], *golden.fact("reason_detail"));
    assert_eq!(decided["death"], *golden.fact("death"));
    assert_eq!(
        decided["consecutive_failures"],
        *golden.fact("consecutive_failures")
    );
    assert_eq!(r["candidates"], *golden.fact("candidates"));
    assert_eq!(seq_of(&r["promoted"]), golden.number("promoted_seq"));
    assert_eq!(r["promoted_offset"], *golden.fact("promoted_offset"));
    // Confirmed by the promotion's outcome, right after it.
    assert_eq!(
        seq_of(&r["confirmed"]),
        golden.number("promote_succeeded_seq")
    );
    assert_eq!(r["outcome"]["state"], "completed");
    // The old primary was healthy before the fault and failing after it,
    // before the decision.
    let fault = golden.number("fault_after_seq");
    let decided_seq = golden.number("decided_seq");
    assert!(seq_of(&r["last_healthy"]) <= decided_seq, "{r:#}");
    let failure = seq_of(&r["failure_observed"]);
    assert!(fault < failure && failure <= decided_seq, "{r:#}");
    // It came back, as a replica of the new primary, after the promotion.
    let back = &r["old_returned"];
    assert!(seq_of(back) > seq_of(&r["promoted"]), "{r:#}");
    assert_eq!(
        back["what"],
        format!(
            "{} returned as a replica of {}",
            golden.fact("old_primary").as_str().unwrap(),
            golden.fact("new_primary").as_str().unwrap()
        )
    );
    // The bound on lost writes: the old primary's last offset minus the
    // promoted replica's.
    let old = r["old_offset"].as_u64().unwrap();
    let new = golden.number("promoted_offset");
    assert_eq!(
        r["lost_bytes_bound"].as_u64().unwrap(),
        old.saturating_sub(new)
    );
}

#[test]
fn failovers_of_the_switchover_field_by_field() {
    let golden = Golden::load("switchover");
    let r = the_failover(&golden);
    assert_eq!(r["kind"], "planned");
    assert_eq!(r["old_primary"], *golden.fact("from"));
    assert_eq!(r["new_primary"], *golden.fact("to"));
    assert_eq!(r["decided"]["seq"], *golden.fact("decided_seq"));
    assert_eq!(
        r["decided"]["intent_id"],
        *golden.fact("switchover_intent_id")
    );
    assert_eq!(r["decided"]["reason"], "Requested");
    assert_eq!(r["decided"]["detail"], *golden.fact("reason_detail"));
    assert_eq!(seq_of(&r["promoted"]), golden.number("promoted_seq"));
    assert_eq!(r["promoted_offset"], *golden.fact("promoted_offset"));
    assert_eq!(
        seq_of(&r["confirmed"]),
        golden.number("switchover_succeeded_seq")
    );
    assert_eq!(r["outcome"]["state"], "completed");
    assert_eq!(
        r["failure_observed"],
        Value::Null,
        "a planned switchover has no failure"
    );
    assert!(seq_of(&r["old_returned"]) > seq_of(&r["promoted"]));
}

#[test]
fn failovers_of_the_restart_mid_failover_field_by_field() {
    let golden = Golden::load("restart_mid_failover");
    let r = the_failover(&golden);
    assert_eq!(r["kind"], "automatic");
    assert_eq!(r["old_primary"], *golden.fact("old_primary"));
    assert_eq!(r["new_primary"], *golden.fact("new_primary"));
    assert_eq!(r["decided"]["seq"], *golden.fact("failover_decided_seq"));
    assert_eq!(r["decided"]["intent_id"], *golden.fact("promote_intent_id"));
    // Promoted by the instance that took over, after the crash.
    let takeover = golden.fact("takeover")["seq"].as_u64().unwrap();
    assert!(seq_of(&r["promoted"]) > takeover, "{r:#}");
    assert_eq!(seq_of(&r["promoted"]), golden.number("promoted_seq"));
    assert_eq!(r["outcome"]["state"], "completed");
}

/// `audit --json` of a golden: clean, every check examined.
fn audit_clean(golden: &Golden) -> Value {
    let dir = golden.sled();
    let report = json(&dir_args(dir.path(), &["audit", "--json"]));
    assert_eq!(report["findings"], Value::Array(vec![]), "{report:#}");
    assert_eq!(report["stream"], golden.stream().as_str());
    assert_eq!(report["first_seq"], 1);
    assert_eq!(report["last_seq"], golden.facts["head_seq"]);
    assert_eq!(report["events"], golden.facts["events"]);
    assert_eq!(report["open_intents"], Value::Array(vec![]));
    let check = |name: &str| -> Value {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
            .clone()
    };
    assert_eq!(
        check("determinism")["examined"],
        golden.facts["common"]["decisions"]
    );
    assert_eq!(check("chain")["examined"], golden.facts["events"]);
    assert_eq!(check("two-primaries")["examined"], golden.facts["events"]);
    let intents = &golden.facts["common"]["intents"];
    let outcomes = intents["succeeded"].as_u64().unwrap()
        + intents["failed"].as_u64().unwrap()
        + intents["abandoned"].as_u64().unwrap();
    assert_eq!(check("outcome-without-intent")["examined"], outcomes);
    assert_eq!(check("slot-ownership")["examined"], 0);
    report
}

#[test]
fn audit_of_each_golden_is_clean() {
    audit_clean(&Golden::load("failover"));
    audit_clean(&Golden::load("switchover"));
    let golden = Golden::load("restart_mid_failover");
    let report = audit_clean(&golden);
    // The takeover left intents in flight: examined, and all resolved.
    let takeovers = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "intent-without-outcome")
        .unwrap()["examined"]
        .as_u64()
        .unwrap();
    assert!(takeovers >= 1, "{report:#}");
}

/// What `verify` says of a tampered copy, and its exit code.
fn verify_broken(dir: &Path) -> (u64, String) {
    let (result, printed) = cli(&dir_args(dir, &["verify"]));
    let Err(Error::ReplayBroken { seq, .. }) = result else {
        panic!("verify accepted a tampered journal: {printed}");
    };
    assert!(printed.starts_with("BROKEN stream "), "{printed}");
    (seq, printed)
}

#[test]
fn tampered_copies_fail_verify_at_the_exact_seq() {
    let golden = Golden::load("failover");
    let stream = golden.stream();
    let target = 30u64;

    // One changed byte inside the frame of seq 30.
    let dir = tempfile::tempdir().unwrap();
    let mut events = golden.events.clone();
    let frame = &mut events[target as usize - 1].frame;
    let last = frame.len() - 40;
    frame[last] ^= 0x01;
    write_sled(dir.path(), &stream, &golden.events);
    let store = SledStore::open(dir.path(), Durability::Flush).unwrap();
    store
        .raw_overwrite(
            &stream,
            target,
            Some(events[target as usize - 1].frame.clone()),
        )
        .unwrap();
    store.flush().unwrap();
    drop(store);
    let (seq, printed) = verify_broken(dir.path());
    assert_eq!(seq, target, "{printed}");
    assert!(printed.contains("bad CRC"), "{printed}");

    // One event removed.
    let dir = tempfile::tempdir().unwrap();
    write_sled(dir.path(), &stream, &golden.events);
    let store = SledStore::open(dir.path(), Durability::Flush).unwrap();
    store.raw_overwrite(&stream, target, None).unwrap();
    store.flush().unwrap();
    drop(store);
    let (seq, printed) = verify_broken(dir.path());
    assert_eq!(seq, target, "{printed}");

    // A pair reordered: seq 30 holds 31's frame and 31 holds 30's.
    let dir = tempfile::tempdir().unwrap();
    write_sled(dir.path(), &stream, &golden.events);
    let store = SledStore::open(dir.path(), Durability::Flush).unwrap();
    let a = golden.events[target as usize - 1].frame.clone();
    let b = golden.events[target as usize].frame.clone();
    store.raw_overwrite(&stream, target, Some(b)).unwrap();
    store.raw_overwrite(&stream, target + 1, Some(a)).unwrap();
    store.flush().unwrap();
    drop(store);
    let (seq, printed) = verify_broken(dir.path());
    assert_eq!(seq, target, "{printed}");
}

#[test]
fn tampered_exports_fail_verify_at_the_exact_seq() {
    let golden = Golden::load("switchover");
    let dir = golden.sled();
    let tmp = tempfile::tempdir().unwrap();
    let file = export_jsonl(dir.path(), tmp.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Line 1 is the header; the event of seq n is on line n + 1.
    let target = 20usize;
    let check = |lines: Vec<String>, what: &str| {
        let path = tmp.path().join(format!("{what}.jsonl"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let (result, printed) = cli(&["replay", "verify", "--file", path.to_str().unwrap()]);
        let Err(Error::ReplayBroken { seq, .. }) = result else {
            panic!("{what}: verify accepted it: {printed}");
        };
        assert_eq!(seq, target as u64, "{what}: {printed}");
    };
    let owned = || {
        lines
            .iter()
            .map(|l| (*l).to_owned())
            .collect::<Vec<String>>()
    };

    // One changed byte: a digit of the event's epoch.
    let mut changed = owned();
    changed[target] = changed[target].replacen("\"epoch\":1", "\"epoch\":2", 1);
    assert_ne!(changed[target], lines[target]);
    check(changed, "changed");

    let mut removed = owned();
    removed.remove(target);
    check(removed, "removed");

    let mut reordered = owned();
    reordered.swap(target, target + 1);
    check(reordered, "reordered");
}

#[test]
fn a_rewritten_decision_is_exactly_one_determinism_finding() {
    let golden = Golden::load("failover");
    let decided_seq = golden.number("decided_seq");
    let mut envs =
        logbook_replay::frames::envelopes(&logbook_replay::frames::join(&golden.events)).unwrap();
    // The decision promoted gold-failover-1; make the record say -2 was
    // promoted (an equally good candidate, which this build's tie-break
    // does not choose), and re-hash the chain so nothing else differs.
    let env = &mut envs[decided_seq as usize - 1];
    let Event::Decided { intents } = &mut env.body else {
        panic!("seq {decided_seq} is not a decision: {:?}", env.body);
    };
    let Intent::PromoteReplica { pod, .. } = &mut intents[0].intent else {
        panic!("first intent is not a promotion: {intents:?}");
    };
    assert_eq!(pod, "gold-failover-1");
    *pod = "gold-failover-2".to_owned();
    let events = rechain(&mut envs);
    let dir = tempfile::tempdir().unwrap();
    write_sled(dir.path(), &golden.stream(), &events);

    ok(&dir_args(dir.path(), &["verify"]));
    let (result, printed) = cli(&dir_args(dir.path(), &["audit", "--json"]));
    assert!(
        matches!(result, Err(Error::AuditFindings { findings: 1 })),
        "{result:?}"
    );
    let report: Value = serde_json::from_str(&printed).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    let f = &findings[0];
    assert_eq!(f["check"], "determinism");
    assert_eq!(f["seq"], decided_seq);
    assert_eq!(
        f["recorded"][0]["intent"]["PromoteReplica"]["pod"],
        "gold-failover-2"
    );
    assert_eq!(
        f["recomputed"][0]["intent"]["PromoteReplica"]["pod"],
        "gold-failover-1"
    );
    assert_eq!(f["recorded"][0]["reason"], "PrimaryFailed");
    // The rest of both decisions is the same.
    assert_eq!(
        f["recorded"].as_array().unwrap()[1..],
        f["recomputed"].as_array().unwrap()[1..]
    );
    // The text report says it too, and the process exits 1.
    let output = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .args(dir_args(dir.path(), &["audit"]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(&format!("FINDING determinism at seq {decided_seq}")),
        "{text}"
    );
    assert!(
        text.contains("recorded:   promote gold-failover-2"),
        "{text}"
    );
    assert!(
        text.contains("recomputed: promote gold-failover-1"),
        "{text}"
    );
}

#[test]
fn exit_codes_clean_findings_unreadable() {
    let golden = Golden::load("switchover");
    let dir = golden.sled();
    let bin = env!("CARGO_BIN_EXE_logbook");
    let status = |args: Vec<&str>| Command::new(bin).args(args).output().unwrap();
    let clean = status(dir_args(dir.path(), &["audit"]));
    assert_eq!(clean.status.code(), Some(0), "{clean:?}");
    let missing = status(vec!["replay", "audit", "--dir", "/nonexistent/journal"]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/journal"),
        "{missing:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let not_jsonl = tmp.path().join("notes.txt");
    std::fs::write(&not_jsonl, "hello\n").unwrap();
    let garbage = status(vec![
        "replay",
        "audit",
        "--file",
        not_jsonl.to_str().unwrap(),
    ]);
    assert_eq!(garbage.status.code(), Some(2), "{garbage:?}");
    assert!(
        String::from_utf8_lossy(&garbage.stderr).contains("not a Logbook export header"),
        "{garbage:?}"
    );
}

#[test]
fn timeline_shows_the_cause_chain_and_filters() {
    let golden = Golden::load("failover");
    let dir = golden.sled();
    let all = ok(&dir_args(dir.path(), &["timeline"]));
    assert_eq!(
        all.lines().count() as u64,
        golden.facts["events"].as_u64().unwrap()
    );
    let decided = golden.number("decided_seq");
    let promoted = golden.number("promoted_seq");
    let line = |seq: u64| {
        all.lines()
            .find(|l| l.contains(&format!("  #{seq}  ")))
            .unwrap()
            .to_owned()
    };
    // decision <- observation; outcome <- decision.
    assert!(
        line(decided).contains(&format!("(after #{} ", decided - 1)),
        "{}",
        line(decided)
    );
    assert!(
        line(promoted).contains(&format!("<- #{decided} Decided")),
        "{}",
        line(promoted)
    );
    let succeeded = golden.number("promote_succeeded_seq");
    assert!(
        line(succeeded).contains(&format!("<- #{decided} Decided: promote gold-failover-1")),
        "{}",
        line(succeeded)
    );
    let only = ok(&dir_args(
        dir.path(),
        &["timeline", "--kinds", "Decided,ReplicaPromoted"],
    ));
    assert_eq!(only.lines().count(), 5, "{only}");
    let (bad, _) = cli(&dir_args(dir.path(), &["timeline", "--kinds", "Nonsense"]));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("unknown event kind \"Nonsense\""),
    );
    let at = golden.facts["first_event_at"].as_str().unwrap();
    let none = ok(&dir_args(
        dir.path(),
        &["timeline", "--until", "2000-01-01T00:00:00Z"],
    ));
    assert_eq!(none, "");
    let since = ok(&dir_args(dir.path(), &["timeline", "--since", at]));
    assert_eq!(since, all);
}

#[test]
fn state_at_a_seq_and_a_time() {
    let golden = Golden::load("failover");
    let dir = golden.sled();
    let decided = golden.number("decided_seq");
    let promoted = golden.number("promoted_seq");
    let before = ok(&dir_args(
        dir.path(),
        &["state", "--at", &decided.to_string()],
    ));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&before).unwrap();
    assert_eq!(yaml["last_seq"].as_u64(), Some(decided));
    assert_eq!(yaml["in_flight"].as_mapping().unwrap().len(), 5, "{before}");
    let after = ok(&dir_args(
        dir.path(),
        &["state", "--at", &promoted.to_string()],
    ));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&after).unwrap();
    assert_eq!(
        yaml["replication"]["primary"].as_str(),
        golden.fact("new_primary").as_str()
    );
    // Digests are hex and times RFC 3339, not byte arrays and integers.
    assert!(yaml["last_hash"].as_str().unwrap().len() == 64, "{after}");
    assert!(
        yaml["last_at"].as_str().unwrap().starts_with("20"),
        "{after}"
    );
    // A time: the state after everything appended by then.
    let at = yaml["last_at"].as_str().unwrap().to_owned();
    let by_time = ok(&dir_args(dir.path(), &["state", "--at", &at]));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&by_time).unwrap();
    assert!(yaml["last_seq"].as_u64().unwrap() >= promoted);
    let (beyond, _) = cli(&dir_args(dir.path(), &["state", "--at", "100000"]));
    assert!(beyond.unwrap_err().to_string().contains("beyond the head"));
    let (early, _) = cli(&dir_args(
        dir.path(),
        &["state", "--at", "1999-01-01T00:00:00Z"],
    ));
    assert!(
        early
            .unwrap_err()
            .to_string()
            .contains("before the first event")
    );
}

#[test]
fn csv_has_one_row_per_event_and_reshards_reports_none() {
    let golden = Golden::load("switchover");
    let dir = golden.sled();
    let csv = ok(&dir_args(dir.path(), &["export", "--format", "csv"]));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(logbook_replay::export::csv::COLUMNS));
    // Rows may contain quoted newlines? No: summaries are one line.
    assert_eq!(
        lines.count() as u64,
        golden.facts["events"].as_u64().unwrap()
    );
    let reshards = ok(&dir_args(dir.path(), &["reshards"]));
    assert!(reshards.starts_with("no reshards"), "{reshards}");
    assert_eq!(
        json(&dir_args(dir.path(), &["reshards", "--json"])),
        Value::Array(vec![])
    );
}

#[test]
fn the_jsonl_export_format_stays_readable() {
    // A JSONL export of the failover golden made by this version of the
    // format, kept forever: every later build must read it the same way.
    let kept = PathBuf::from(format!("{GOLDEN}/failover.export-v1.jsonl"));
    let golden = Golden::load("failover");
    let dir = golden.sled();
    let tmp = tempfile::tempdir().unwrap();
    let fresh = export_jsonl(dir.path(), tmp.path());
    if std::env::var_os("LOGBOOK_UPDATE_GOLDEN").is_some() {
        std::fs::copy(&fresh, &kept).unwrap();
    }
    let kept_text = std::fs::read_to_string(&kept).unwrap();
    let fresh_text = std::fs::read_to_string(&fresh).unwrap();
    // Only the header's exported_by may differ between builds.
    let body = |t: &str| t.lines().skip(1).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        body(&kept_text),
        body(&fresh_text),
        "the export format drifted"
    );
    let audit_kept = json(&[
        "replay",
        "audit",
        "--json",
        "--file",
        kept.to_str().unwrap(),
    ]);
    let audit_dir = json(&dir_args(dir.path(), &["audit", "--json"]));
    assert_eq!(audit_kept, audit_dir);
}

#[test]
fn timeline_follow_prints_events_as_they_are_appended() {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let golden = Golden::load("switchover");
    let dir = golden.sled();
    let tmp = tempfile::tempdir().unwrap();
    let full = std::fs::read_to_string(export_jsonl(dir.path(), tmp.path())).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    // The header and the first 30 events now; the rest later, the last
    // line in two writes (a line being written is not read half).
    let live = tmp.path().join("live.jsonl");
    std::fs::write(&live, lines[..31].join("\n") + "\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .args([
            "replay",
            "timeline",
            "--follow",
            "--poll-ms",
            "50",
            "--file",
        ])
        .arg(&live)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let wait_for = |n: usize, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("only {} of {n} lines followed: {seen:#?}", seen.len()),
            }
        }
    };
    wait_for(30, &mut seen);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    let last = lines.len() - 1;
    file.write_all((lines[31..last].join("\n") + "\n").as_bytes())
        .unwrap();
    let (half, rest) = lines[last].split_at(40);
    file.write_all(half.as_bytes()).unwrap();
    file.flush().unwrap();
    wait_for(last - 1, &mut seen);
    std::thread::sleep(Duration::from_millis(300));
    file.write_all(format!("{rest}\n").as_bytes()).unwrap();
    file.flush().unwrap();
    wait_for(last, &mut seen);
    child.kill().unwrap();
    child.wait().unwrap();
    let seqs: Vec<u64> = seen
        .iter()
        .map(|l| {
            l.split("  #")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=last as u64).collect::<Vec<_>>());
}

/// A real 3x1 Valkey Cluster's journal (`tests/operator_cluster.rs`, a
/// primary's pod deleted), exported to JSONL: this build's `decide`
/// reproduces every decision, the Cluster invariants hold, and its one
/// shard failover is a `--json` row of kind `shard`.
#[test]
fn the_cluster_journal_audits_clean_and_shows_its_shard_failover() {
    let file = format!("{GOLDEN}/cluster_failover.jsonl");
    let report = json(&["replay", "audit", "--json", "--file", &file]);
    assert_eq!(report["findings"], Value::Array(vec![]), "{report:#}");
    let examined = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap()["examined"]
            .as_u64()
            .unwrap()
    };
    assert!(examined("slot-ownership") >= 1, "{report:#}");
    assert_eq!(examined("determinism"), 7);
    let rows = json(&["replay", "failovers", "--json", "--file", &file]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let r = &rows[0];
    assert_eq!(r["kind"], "shard");
    assert_eq!(r["decided_by"], "operator");
    assert_eq!(r["mode"], "coordinated");
    assert_eq!(r["old_primary"]["pod"], "shop-1");
    assert_eq!(r["new_primary"]["pod"], "shop-4");
    assert_eq!(r["detected"]["kind"], "pod-terminating");
    assert_eq!(r["serving"]["seq"], 110);
    assert_eq!(r["config_epoch"], 6);
    let text = ok(&["replay", "failovers", "--file", &file]);
    assert!(
        text.starts_with("shard failover 1: slots 5462-10922"),
        "{text}"
    );
    let state = ok(&["replay", "state", "--at", "131", "--file", &file]);
    assert!(state.contains("valkey_cluster:\n  formed: true"), "{state}");
    assert!(state.contains("unowned_slots: 0"), "{state}");
    // The HTML report, audited with this build's decide: clean, and the
    // shard failover drawn on the timeline (linked to its row) as well as
    // listed.
    let html = ok(&["replay", "export", "--format", "html", "--file", &file]);
    let verdict = html
        .split("id=\"audit-verdict\"")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap();
    assert!(verdict.contains("Clean"), "{verdict}");
    assert_eq!(html.matches("<g class=\"marker-shard ").count(), 1);
    assert!(html.contains(
        "<a href=\"#failover-1\" class=\"marker-link\"><g class=\"marker-shard kind-operator\" id=\"marker-shard-failover-1\">"
    ));
    assert!(html.contains(">slots 5462-10922<tspan class=\"to\"> → shop-4</tspan>"));
    assert!(html.contains("<tr id=\"failover-1\""));
}
