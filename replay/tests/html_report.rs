//! The HTML report (`logbook replay export --format html`) of the golden
//! journals recorded from real end-to-end runs: what the page holds, and
//! what a browser shows of it.
//!
//! The browser is Debian's headless Chromium (`scripts/setup.sh` installs
//! it; `make setup`). Without it the browser test fails, saying so: a
//! report nobody looked at rendered is not tested.
//!
//! The pages and the screenshot are kept under Cargo's test scratch
//! directory (`target/tmp/html_report/`) to be looked at.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logbook_journal::{
    ClusterState, Envelope, Event, Intent, MemoryStore, NewEvent, Policy, Reachability, Reason,
    StreamId, StreamWriter, Timestamp,
};
use logbook_replay::{Decider, Flow, Input, Raw, Visit};

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one Chromium run may take before it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// The lane colours (replay/src/export/html/assets.rs).
const PRIMARY: [u8; 3] = [0x1d, 0x4e, 0xd8];
const REPLICA: [u8; 3] = [0x16, 0xa3, 0x4a];
/// The colour of a shard failover's line and label (the same file).
const SHARD: [u8; 3] = [0xc0, 0x26, 0xd3];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Where the pages and the screenshot are kept for people to look at.
fn keep_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html_report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The golden stream `name` in a memory store, and its `.json` facts.
fn golden(name: &str) -> (Input<MemoryStore>, serde_json::Value) {
    let dir = golden_dir();
    let facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join(format!("{name}.frames"))).unwrap();
    let events = logbook_replay::frames::split(&bytes).unwrap();
    let stream = StreamId::new(facts["stream"].as_str().unwrap()).unwrap();
    let store = MemoryStore::new();
    futures::executor::block_on(logbook_journal::JournalStore::append(
        &store, &stream, 1, &events,
    ))
    .unwrap();
    let input = Input::Store {
        store,
        stream,
        cluster: None,
        place: "golden".into(),
    };
    (input, facts)
}

/// The decider the audit runs in these tests. The operator's `decide`
/// lives in the root crate, which depends on this one, so it cannot be
/// called here; this one answers each decision with what the journal
/// recorded for it (so the audit is clean), except the decisions it is
/// told to forget, where it decides nothing — the audit then reports a
/// determinism finding there, which is what the report's rendering of
/// findings is tested with. Likewise it finds done, at a takeover, the
/// intents the journal says were found done.
struct Replaying {
    recorded: BTreeMap<u64, Vec<(Intent, Reason)>>,
    found_done: Vec<Intent>,
    forget: BTreeSet<u64>,
}

impl Replaying {
    fn of(input: &Input<MemoryStore>, forget: &[u64]) -> Self {
        #[derive(Default)]
        struct Recorded {
            decided: BTreeMap<u64, Vec<(Intent, Reason)>>,
            intents: BTreeMap<uuid::Uuid, Intent>,
            found_done: Vec<Intent>,
        }
        impl Visit for Recorded {
            fn event(&mut self, e: &Envelope, _raw: Raw<'_>) -> logbook_replay::Result<Flow> {
                match &e.body {
                    Event::Decided { intents } => {
                        let decided = intents
                            .iter()
                            .map(|p| (p.intent.clone(), p.reason.clone()))
                            .collect();
                        self.decided.insert(e.seq, decided);
                        for p in intents {
                            self.intents.insert(p.intent_id, p.intent.clone());
                        }
                    }
                    Event::IntentSucceeded { intent_id, detail }
                        if detail.starts_with("found done") =>
                    {
                        self.found_done.extend(self.intents.get(intent_id).cloned());
                    }
                    _ => {}
                }
                Ok(Flow::Continue)
            }
        }
        let mut recorded = Recorded::default();
        futures::executor::block_on(input.scan(None, &mut recorded)).unwrap();
        Self {
            recorded: recorded.decided,
            found_done: recorded.found_done,
            forget: forget.iter().copied().collect(),
        }
    }
}

impl Decider for Replaying {
    fn decide(
        &self,
        state: &ClusterState,
        _now: Timestamp,
        _policy: &Policy,
    ) -> Vec<(Intent, Reason)> {
        // The audit runs the decider on the state folded just before the
        // decision.
        let seq = state.last_seq + 1;
        if self.forget.contains(&seq) {
            return Vec::new();
        }
        self.recorded.get(&seq).cloned().unwrap_or_default()
    }

    fn build(&self) -> String {
        "test decider replaying the recorded decisions".to_owned()
    }

    fn already_done(&self, _: &ClusterState, intent: &Intent) -> Option<String> {
        self.found_done
            .contains(intent)
            .then(|| "found done in the journal".to_owned())
    }
}

fn render(input: &Input<MemoryStore>, decider: &dyn Decider) -> String {
    let mut out = Vec::new();
    futures::executor::block_on(logbook_replay::export::html::export(
        input, decider, &mut out,
    ))
    .unwrap();
    String::from_utf8(out).unwrap()
}

/// The text of the element that opens at `open` (an attribute such as
/// `id="decision-43"`), up to `close`.
fn element<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in the page"));
    let len = html[start..]
        .find(close)
        .unwrap_or_else(|| panic!("{open} is not closed by {close}"));
    &html[start..start + len]
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[test]
fn failover_report_holds_lanes_markers_decisions_and_the_audit() {
    let (input, facts) = golden("failover");
    let decided = facts["facts"]["decided_seq"].as_u64().unwrap();
    let decider = Replaying::of(&input, &[decided]);
    let html = render(&input, &decider);
    std::fs::write(keep_dir().join("failover-findings.html"), &html).unwrap();

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page references a URL"
    );
    assert!(
        !html.contains(" src=") && !html.contains("<link"),
        "the page loads something"
    );

    // Header.
    let events = facts["events"].as_u64().unwrap();
    let head = element(&html, "<header", "</header>");
    assert!(head.contains(facts["stream"].as_str().unwrap()));
    assert!(head.contains(&format!("{events} (seq 1 – {})", facts["head_seq"])));
    assert!(head.contains("test decider replaying the recorded decisions"));

    // One lane per pod, with its roles.
    for n in 0..3 {
        let pod = format!("gold-failover-{n}");
        let lane = element(&html, &format!("id=\"lane-{pod}\""), "</g>");
        assert!(lane.contains("class=\"role-replica\""), "{pod}: {lane}");
    }
    assert!(html.contains("class=\"lane\""));
    // The old primary, then the new one.
    let old = element(&html, "id=\"lane-gold-failover-0\"", "</g>");
    assert!(old.contains("class=\"role-primary\""), "{old}");
    // Its process was killed: the pod lost its readiness.
    assert!(old.contains("class=\"role-down\""), "{old}");
    let new = element(&html, "id=\"lane-gold-failover-1\"", "</g>");
    assert!(new.contains("class=\"role-primary\""), "{new}");
    assert!(!element(&html, "id=\"lane-gold-failover-2\"", "</g>").contains("role-primary"));
    // The legend names every colour.
    let legend = element(&html, "id=\"legend\"", "</div>");
    for word in [
        "primary",
        "replica",
        "role unknown",
        "down",
        "failover",
        "switchover",
    ] {
        assert!(legend.contains(word), "legend lacks {word}");
    }

    // One failover, marked across the lanes and listed.
    assert_eq!(count(&html, "class=\"marker-failover kind-automatic\""), 1);
    let marker = element(&html, "id=\"marker-failover-1\"", "</g>");
    assert!(
        marker.contains(">failover<tspan class=\"to\"> → gold-failover-1<"),
        "{marker}"
    );
    let row = element(&html, "id=\"failover-1\"", "</tr>");
    for text in [
        "gold-failover-0",
        "gold-failover-1",
        "PrimaryFailed",
        &format!("#decision-{decided}"),
        "bytes",
        &facts["facts"]["promoted_offset"].to_string(),
    ] {
        assert!(row.contains(text), "failover row lacks {text}: {row}");
    }
    assert!(html.contains("id=\"reshards\""));
    assert!(element(&html, "id=\"reshards\"", "</section>").contains("none"));

    // Every decision is a marker and a details element; the failover's
    // holds its reason and every candidate.
    let decisions = facts["common"]["decisions"].as_u64().unwrap() as usize;
    assert_eq!(count(&html, "<path class=\"marker-decision"), decisions);
    assert_eq!(count(&html, "<details class=\"decision"), decisions);
    assert!(html.contains(&format!("data-seq=\"{decided}\" d=\"M")));
    let details = element(&html, &format!("id=\"decision-{decided}\""), "</details>");
    assert!(details.contains("PrimaryFailed"));
    assert!(details.contains("class=\"candidates\""));
    for c in facts["facts"]["candidates"].as_array().unwrap() {
        let pod = c["pod"].as_str().unwrap();
        let line = element(details, &format!("<b>{pod}</b>"), "</tr>");
        assert!(
            line.contains(&format!(">{}<", c["offset"])),
            "{pod}: {line}"
        );
        let yes_no = |b: &serde_json::Value| {
            if b.as_bool().unwrap() {
                ">yes<"
            } else {
                ">no<"
            }
        };
        // reachable, same history, eligible, in that order.
        let cells: Vec<&str> = line.matches(">yes<").chain(line.matches(">no<")).collect();
        assert_eq!(cells.len(), 3, "{line}");
        assert!(line.contains(yes_no(&c["same_history"])), "{pod}: {line}");
    }
    assert!(
        details.contains("promoted</td>"),
        "the chosen pod is marked"
    );
    for intent in facts["facts"]["decided_intents"].as_array().unwrap() {
        let what = intent["intent"].as_str().unwrap();
        assert!(details.contains(what), "lacks {what}");
    }
    assert!(details.contains("succeeded"));

    // The audit names the decision the test decider forgot.
    let audit = element(&html, "id=\"audit\"", "</section>");
    assert!(audit.contains("class=\"verdict bad\""), "{audit}");
    let finding = element(audit, "data-check=\"determinism\"", "</div>\n</div>");
    assert!(
        finding.contains(&format!("data-seq=\"{decided}\"")),
        "{finding}"
    );
    assert!(finding.contains("recorded"));
    assert!(finding.contains("promote gold-failover-1 (replacing gold-failover-0)"));
    assert!(html.contains(&format!(
        "class=\"marker-decision changes-primary questioned\" data-seq=\"{decided}\""
    )));

    // Every event listed, in order.
    assert!(html.contains("data-omitted=\"0\""));
    assert_eq!(count(&html, "<tr id=\"event-"), events as usize);
}

#[test]
fn every_golden_renders_and_a_faithful_decider_audits_clean() {
    for (name, kind, label) in [
        ("failover", "kind-automatic", ">failover<tspan"),
        ("switchover", "kind-planned", ">switchover<tspan"),
        ("restart_mid_failover", "kind-automatic", ">failover<tspan"),
    ] {
        let (input, facts) = golden(name);
        let html = render(&input, &Replaying::of(&input, &[]));
        std::fs::write(keep_dir().join(format!("{name}.html")), &html).unwrap();
        let verdict = element(&html, "id=\"audit-verdict\"", "</p>");
        assert!(verdict.contains("Clean"), "{name}: {verdict}");
        assert_eq!(
            count(&html, &format!("class=\"marker-failover {kind}\"")),
            1,
            "{name}"
        );
        assert!(html.contains(label), "{name}");
        // A Replication journal has no shard: nothing of theirs is drawn.
        assert_eq!(count(&html, "<g class=\"marker-shard"), 0, "{name}");
        assert_eq!(count(&html, "<i class=\"rule shard"), 0, "{name}");
        let lanes = count(&html, "<g class=\"lane\"");
        assert_eq!(lanes, 3, "{name}");
        let takeovers = facts["common"]["operator_starts"].as_array().unwrap().len();
        assert_eq!(
            count(&html, "<g class=\"marker-operator\""),
            takeovers,
            "{name}"
        );
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}

#[test]
fn a_long_journal_keeps_every_decision_and_the_last_observations_escaped() {
    const EXTRA: u64 = 3_000;
    let (input, facts) = golden("failover");
    let Input::Store { store, stream, .. } = &input else {
        unreachable!()
    };
    let hostile = "<img src=x onerror=alert(1)> & \"quoted\" 'single'";
    futures::executor::block_on(async {
        let mut writer = StreamWriter::open(store.clone(), stream.clone(), 1)
            .await
            .unwrap();
        let mut at = Timestamp::parse("2026-11-22T13:00:00Z").unwrap();
        let mut batch = Vec::new();
        for _ in 0..EXTRA {
            at = Timestamp(at.0 + 20_000);
            let mut e = NewEvent::now(Event::PodReachabilityObserved {
                pod: "gold-failover-1".to_owned(),
                reachability: Reachability::Reachable,
            });
            e.at = at;
            batch.push(e);
        }
        let mut e = NewEvent::now(Event::IntentAbandoned {
            intent_id: uuid::Uuid::now_v7(),
            reason: hostile.to_owned(),
        });
        e.at = Timestamp(at.0 + 1);
        batch.push(e);
        writer.append(batch).await.unwrap();
    });
    let html = render(&input, &Replaying::of(&input, &[]));
    std::fs::write(keep_dir().join("long.html"), &html).unwrap();

    assert!(!html.contains(hostile) && !html.contains("<img"));
    assert!(
        html.contains(
            "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot; &#39;single&#39;"
        )
    );
    let note = element(&html, "id=\"events-omitted\"", "</p>");
    let omitted: u64 = note
        .split("data-omitted=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    let observations = count(&html, "class=\"ev-observation\"") as u64;
    assert!(omitted > 0, "{note}");
    assert!(
        observations <= 2_000 + 3,
        "{observations} observations listed"
    );
    // Every observation is either listed or counted as left out.
    let kinds = facts["common"]["event_kinds"].as_object().unwrap();
    let of = |kind: &str| kinds.get(kind).and_then(|n| n.as_u64()).unwrap_or(0);
    let records: u64 = [
        "Decided",
        "IntentSucceeded",
        "IntentFailed",
        "IntentAbandoned",
        "ReplicaPromoted",
        "PolicyRecorded",
        "OperatorStarted",
        "OperatorStopped",
        "LeadershipAcquired",
        "LeadershipLost",
        "SnapshotTaken",
    ]
    .into_iter()
    .map(of)
    .sum();
    let golden_observations = facts["events"].as_u64().unwrap() - records;
    assert_eq!(omitted + observations, golden_observations + EXTRA);
    // Every decision and outcome is listed, and so is the observation each
    // decision was taken on.
    let outcomes = of("IntentSucceeded") + of("IntentFailed") + of("IntentAbandoned");
    assert_eq!(count(&html, "class=\"ev-decision\"") as u64, of("Decided"));
    assert_eq!(count(&html, "class=\"ev-outcome\"") as u64, outcomes + 1);
    for details in html.split("<details class=\"decision").skip(1) {
        let after = element(details, "Decided on the projection as of", "</a>");
        let seq = after
            .split("href=\"#event-")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap();
        assert!(
            html.contains(&format!("<tr id=\"event-{seq}\"")),
            "event {seq} not listed"
        );
    }
    assert!(html.contains("events left out"));
}

/// Runs Chromium headless on `args`, its output to `stdout`, and kills it
/// (its whole process group) when it outlives [`BROWSER_TIMEOUT`].
fn chromium(args: &[String], stdout: &Path) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is not installed: run `make setup` (scripts/setup.sh installs Debian's chromium package; CI runs it)"
    );
    let profile = tempfile::tempdir().unwrap();
    let stderr_path = stdout.with_extension("stderr");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(stdout).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}; run `make setup`"));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "chromium {args:?} exited with {status}: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
            return;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            // Chromium forks helpers: end the whole group it leads.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {args:?} did not finish within {BROWSER_TIMEOUT:?}: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn chromium_renders_the_timeline() {
    let (input, facts) = golden("failover");
    let decided = facts["facts"]["decided_seq"].as_u64().unwrap();
    let html = render(&input, &Replaying::of(&input, &[]));
    let dir = keep_dir();
    let page = dir.join("failover.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());

    // The DOM after the script ran: it marked the page ready, wired every
    // decision marker, and showed the failover's decision under the chart.
    let dom_path = dir.join("failover.dom.html");
    chromium(&["--dump-dom".to_owned(), url.clone()], &dom_path);
    let dom = std::fs::read_to_string(&dom_path).unwrap();
    assert!(
        dom.contains("data-ready=\"true\""),
        "the script did not run to its end"
    );
    assert!(
        dom.contains("data-markers=\"3\""),
        "the script found no markers"
    );
    assert!(dom.contains("<svg id=\"timeline\""));
    let panel = element(&dom, "id=\"decision-panel\"", "</table>");
    assert!(
        panel.contains(&format!("data-seq=\"{decided}\"")),
        "{panel}"
    );
    assert!(panel.contains("Candidates"), "{panel}");

    // The picture: not blank, and the lanes drawn in the role colours.
    let shot = dir.join("failover.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000".to_owned(),
            url,
        ],
        &dir.join("screenshot.out"),
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (1400, 1000));
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    let mut colours: BTreeMap<[u8; 3], usize> = BTreeMap::new();
    for px in pixels[..info.buffer_size()].chunks_exact(channels) {
        *colours.entry([px[0], px[1], px[2]]).or_default() += 1;
    }
    let total = (info.width * info.height) as usize;
    let white = colours.get(&[255, 255, 255]).copied().unwrap_or(0);
    assert!(
        white < total * 9 / 10 && colours.len() > 50,
        "the screenshot looks blank: {white} of {total} pixels white, {} colours",
        colours.len()
    );
    // A legend swatch is 22 x 12 pixels: thousands of pixels of a role's
    // colour can only come from the lanes' bars.
    for (role, rgb) in [("primary", PRIMARY), ("replica", REPLICA)] {
        let n = colours.get(&rgb).copied().unwrap_or(0);
        assert!(
            n > 3_000,
            "only {n} pixels of the {role} colour {rgb:?}: the timeline was not drawn ({})",
            shot.display()
        );
    }
}

/// The colours of a PNG screenshot, by how many pixels have each, and its
/// size.
fn screenshot_colours(shot: &Path) -> (BTreeMap<[u8; 3], usize>, (u32, u32)) {
    let decoder = png::Decoder::new(std::io::BufReader::new(File::open(shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    let mut colours: BTreeMap<[u8; 3], usize> = BTreeMap::new();
    for px in pixels[..info.buffer_size()].chunks_exact(channels) {
        *colours.entry([px[0], px[1], px[2]]).or_default() += 1;
    }
    (colours, (info.width, info.height))
}

/// The real Valkey Cluster journal (`golden/cluster_failover.jsonl`): its
/// shard failover is drawn on the timeline, in its own colour, where a
/// person sees it.
#[test]
fn chromium_draws_the_shard_failover_on_the_cluster_timeline() {
    let input = Input::<MemoryStore>::File(golden_dir().join("cluster_failover.jsonl"));
    let html = render(&input, &Replaying::of(&input, &[]));
    let dir = keep_dir();
    let page = dir.join("cluster_failover.html");
    std::fs::write(&page, &html).unwrap();
    assert_eq!(count(&html, "<g class=\"marker-shard kind-operator\""), 1);
    let url = format!("file://{}", page.display());

    let shot = dir.join("cluster_failover.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000".to_owned(),
            url,
        ],
        &dir.join("cluster_screenshot.out"),
    );
    let (colours, size) = screenshot_colours(&shot);
    assert_eq!(size, (1400, 1000));
    // The legend's swatch is 3 x 16 pixels: hundreds of pixels of the
    // shard colour can only come from the line across the six lanes and
    // its label.
    let n = colours.get(&SHARD).copied().unwrap_or(0);
    assert!(
        n > 300,
        "only {n} pixels of the shard colour {SHARD:?}: the shard failover was not drawn ({})",
        shot.display()
    );
    for (role, rgb) in [("primary", PRIMARY), ("replica", REPLICA)] {
        let n = colours.get(&rgb).copied().unwrap_or(0);
        assert!(n > 3_000, "only {n} pixels of the {role} colour");
    }
}
