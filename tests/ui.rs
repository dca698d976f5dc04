//! The web UI as a person uses it (issue 38): `logbook ui` runs as its
//! own process with a kubeconfig, headless Chromium opens its pages and is
//! driven over the DevTools protocol, and a failover and a reshard happen
//! while the page is open. The tests read what is on the screen (the new
//! primary, the failover's reason, the timeline growing without a reload)
//! and save screenshots (their paths are printed). Authorization: a user
//! whose RBAC does not let them read a namespace's clusters gets the API
//! server's refusal and nothing of the cluster.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use logbook::journal_store::JournalBackend;
use operator_common::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Where screenshots go: kept after the test, their paths printed.
fn shots_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("logbook-ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `logbook ui` as a process of its own.
struct UiServer {
    child: Child,
    url: String,
}

impl UiServer {
    fn start(kubeconfig: &Path, namespace: Option<&str>) -> UiServer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_logbook"));
        cmd.arg("ui")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--addr", "127.0.0.1:0"]);
        if let Some(ns) = namespace {
            cmd.args(["--namespace", ns]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("logbook ui said: {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        UiServer { child, url }
    }

    /// GET `path`: the status and the body.
    fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) =
            exchange(self.url.trim_start_matches("http://"), "GET", path, &[], "");
        (status, body)
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium, driven over the DevTools protocol.
struct Browser {
    child: Child,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is not installed: run `make setup` (scripts/setup.sh installs Debian's chromium package)"
        );
        let profile = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--window-size=1400,1700",
            ])
            .arg(format!("--remote-debugging-port={port}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The page's debugger address, once Chromium listens.
        let deadline = Instant::now() + Duration::from_secs(60);
        let ws_url = loop {
            assert!(Instant::now() < deadline, "Chromium did not start");
            if let Some(url) = page_socket(port) {
                break url;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .unwrap();
        let mut browser = Browser {
            child,
            ws,
            next: 0,
            _profile: profile,
        };
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// Sends `method` and waits for its answer (events in between are
    /// skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws
            .send(Message::text(
                json!({"id": id, "method": method, "params": params}).to_string(),
            ))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("Chromium did not answer {method}"))
                .expect("the DevTools connection closed")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"].as_u64() == Some(id) {
                if let Some(err) = reply.get("error") {
                    panic!("{method}: {err}");
                }
                return reply["result"].clone();
            }
        }
    }

    async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// The value of `expression` in the page.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page.
    async fn wait_for(&mut self, expression: &str, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        // While the page loads, `document.body` may not be there yet.
        let guarded = format!(
            "(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"
        );
        loop {
            if self.eval(&guarded).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body.innerText").await;
                panic!(
                    "timed out after {timeout:?} waiting for {what} ({expression}); the page shows:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn text(&mut self, selector: &str) -> String {
        let expr = format!(
            "(document.querySelector({}) || {{}}).textContent || ''",
            serde_json::to_string(selector).unwrap()
        );
        self.eval(&expr)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A screenshot of the whole page, saved as `name`; its path printed.
    async fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let path = shots_dir().join(name);
        std::fs::write(&path, bytes).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The WebSocket address of Chromium's first page, from its `/json/list`.
fn page_socket(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // Chromium keeps the connection open: the body is read by its length.
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let body = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())
                    .flatten()
            })
            .unwrap_or(0);
        if body.len() >= length {
            break body.to_owned();
        }
    };
    let targets: Value = serde_json::from_str(&body).ok()?;
    targets
        .as_array()?
        .iter()
        .find(|t| t["type"] == "page")?
        .get("webSocketDebuggerUrl")?
        .as_str()
        .map(str::to_owned)
}

/// An operator on ConfigMap journals (what `logbook ui` reads), and a
/// kubeconfig of the chart's ServiceAccount for the UI.
async fn env_on_config_maps(name: &str) -> (Env, PathBuf, tempfile::TempDir) {
    let mut env = Env::start_without_operator(name).await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig_to(&kubeconfig);
    (env, kubeconfig, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_shows_live_in_the_browser_with_its_reason() {
    let (env, kubeconfig, _dir) = env_on_config_maps("ui-failover").await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    // The first primary is the lowest ordinal of the pods running when
    // the operator chose: usually demo-0, but a demo-0 still starting
    // under load does not hold the choice up (core/src/decide/replication/bootstrap.rs).
    let first = primary(&env.wait_ready("demo", 3, Duration::from_secs(60)).await);
    let ui = UiServer::start(&kubeconfig, None);
    let mut browser = Browser::start().await;

    // The clusters: the one cluster, Ready, linked.
    browser.goto(&format!("{}/", ui.url)).await;
    browser
        .wait_for(
            "document.body.dataset.ready === 'true' && !!document.querySelector('tr[data-cluster]')",
            Duration::from_secs(30),
            "the clusters list",
        )
        .await;
    let row = browser.text(&format!("tr[data-cluster='{NS}/demo']")).await;
    assert!(
        row.contains("Replication") && row.contains("Ready") && row.contains("3/3"),
        "{row}"
    );
    browser.screenshot("clusters.png").await;

    // The cluster: its primary, its journal, live.
    browser
        .goto(&format!("{}/clusters/{NS}/demo", ui.url))
        .await;
    browser
        .wait_for(
            "document.body.dataset.ready === 'true' && document.querySelectorAll('#events li.event').length > 0 && document.getElementById('live').textContent === 'live'",
            Duration::from_secs(30),
            "the cluster page, live",
        )
        .await;
    assert_eq!(browser.text("#primary").await, first);
    // Certificates and users: said, even when there is none.
    let security = browser.text("#security").await;
    assert!(
        security.contains("TLS is off.") && security.contains("No ValkeyUser names this cluster."),
        "{security}"
    );
    assert!(
        browser
            .text("#drawing")
            .await
            .contains(&format!("{first}primary")),
        "{}",
        browser.text("#drawing").await
    );
    let shown = browser
        .eval("document.querySelectorAll('#events li.event').length")
        .await
        .as_u64()
        .unwrap();
    // A mark a reload would wipe.
    browser.eval("window.notReloaded = true").await;

    // The primary's pod is deleted: the page follows without a reload.
    env.api::<Pod>()
        .delete(&first, &DeleteParams::default())
        .await
        .unwrap();
    browser
        .wait_for(
            &format!("!['', '{first}'].includes(document.getElementById('primary').textContent)"),
            Duration::from_secs(60),
            "the new primary on the page",
        )
        .await;
    let primary = browser.text("#primary").await;
    assert!(
        ["demo-0", "demo-1", "demo-2"].contains(&primary.as_str()) && primary != first,
        "{primary}"
    );
    browser
        .wait_for(
            "document.getElementById('failover-text').textContent.includes('PrimaryFailed')",
            Duration::from_secs(30),
            "the failover's reason",
        )
        .await;
    let failover = browser.text("#failover-text").await;
    assert!(
        failover.contains(&format!("{first} -> {primary}")),
        "{failover}"
    );
    assert!(failover.contains("candidate"), "{failover}");
    // Each failover links to its decision in the journal: a link to share.
    let link = browser.text("#failover-links li").await;
    assert!(link.starts_with(&format!("{first} → {primary}")), "{link}");
    assert!(
        browser
            .eval("document.querySelector('#failover-links a').getAttribute('href')")
            .await
            .as_str()
            .is_some_and(|h| h.starts_with("#seq-")),
        "{link}"
    );
    // The timeline grew as the events were appended: the decision is there,
    // marked as arrived live.
    assert_eq!(
        browser.eval("window.notReloaded === true").await,
        json!(true)
    );
    let live: u64 = browser
        .eval("Number(document.body.dataset.liveEvents || 0)")
        .await
        .as_u64()
        .unwrap();
    assert!(live > 0, "no event arrived live");
    let grown = browser
        .eval("document.querySelectorAll('#events li.event').length")
        .await
        .as_u64()
        .unwrap();
    assert!(grown > shown, "{grown} events shown, {shown} before");
    let failed = "[...document.querySelectorAll(\"#events li.event.new[data-kind='Decided']\")].find(li => li.textContent.includes('PrimaryFailed'))";
    assert_eq!(
        browser.eval(&format!("!!{failed}")).await,
        json!(true),
        "no live decision says PrimaryFailed:\n{}",
        browser.text("#events").await
    );
    // A shared link to that event opens the page on it.
    let seq = browser.eval(&format!("{failed}.dataset.seq")).await;
    let seq = seq.as_str().unwrap().to_owned();
    browser.goto("about:blank").await;
    browser
        .goto(&format!("{}/clusters/{NS}/demo#seq-{seq}", ui.url))
        .await;
    browser
        .wait_for(
            &format!("!!document.querySelector('#seq-{seq}.selected')"),
            Duration::from_secs(30),
            "the linked event selected",
        )
        .await;
    browser.screenshot("cluster-after-failover.png").await;

    // The audit on demand: clean.
    browser
        .eval("document.getElementById('run-audit').click()")
        .await;
    browser
        .wait_for(
            "document.getElementById('audit-text').dataset.clean !== undefined",
            Duration::from_secs(60),
            "the audit",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('audit-text').dataset.clean")
            .await,
        json!("true"),
        "{}",
        browser.text("#audit-text").await
    );
    drop(browser);
    drop(ui);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reshard_shows_live_in_the_browser() {
    let (env, kubeconfig, _dir) = env_on_config_maps("ui-reshard").await;
    env.apply_yaml(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: shop
spec:
  topology: Cluster
  shards: 2
  replicasPerShard: 0
"#,
    )
    .await;
    env.wait_status("shop", Duration::from_secs(120), "two shards formed", |v| {
        v.status.as_ref().is_some_and(|s| {
            s.phase == Some(logbook_crds::ClusterPhase::Ready)
                && s.shards.len() == 2
                && s.shards.iter().all(|sh| sh.primary.is_some())
        })
    })
    .await;
    let ui = UiServer::start(&kubeconfig, None);
    let mut browser = Browser::start().await;
    browser
        .goto(&format!("{}/clusters/{NS}/shop", ui.url))
        .await;
    browser
        .wait_for(
            "document.body.dataset.ready === 'true' && document.getElementById('live').textContent === 'live'",
            Duration::from_secs(30),
            "the cluster page, live",
        )
        .await;
    let drawing = browser.text("#drawing").await;
    assert!(
        drawing.contains("0-8191") && drawing.contains("8192-16383"),
        "{drawing}"
    );
    browser.eval("window.notReloaded = true").await;

    env.patch("shop", json!({"spec": {"shards": 3}})).await;
    browser
        .wait_for(
            "!!document.querySelector(\"#events li.event.new.decision[data-kind='Decided']\") && [...document.querySelectorAll('#events li.event.new')].some(li => /decided: move \\d+ slots/.test(li.textContent))",
            Duration::from_secs(120),
            "the reshard's moves in the timeline",
        )
        .await;
    browser
        .wait_for(
            "document.getElementById('drawing').querySelectorAll('g.node.primary').length === 3 && document.querySelector('#head .badge').textContent === 'Ready' && /reshard of generation 2: 3 shards wanted/.test(document.getElementById('reshard-text').textContent)",
            Duration::from_secs(180),
            "three shards drawn and the reshard told",
        )
        .await;
    assert_eq!(
        browser.eval("window.notReloaded === true").await,
        json!(true)
    );
    println!("{}", browser.text("#reshard-text").await);
    browser.screenshot("cluster-after-reshard.png").await;
    drop(browser);
    drop(ui);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_sees_nothing_of_a_cluster_they_may_not_read() {
    let (env, _kubeconfig, dir) = env_on_config_maps("ui-rbac").await;
    env.apply_yaml(&replication_yaml("demo", 2)).await;
    env.wait_ready("demo", 2, Duration::from_secs(60)).await;
    // One user may read NS, the other only another namespace.
    let allowed = viewer(&env.client, "viewers", "reader", NS).await;
    let denied = viewer(&env.client, "viewers", "stranger", "elsewhere").await;
    let (allowed_config, denied_config) = (dir.path().join("allowed"), dir.path().join("denied"));
    env.write_kubeconfig_for(&allowed_config, &allowed);
    env.write_kubeconfig_for(&denied_config, &denied);

    let reader = UiServer::start(&allowed_config, Some(NS));
    let (status, body) = reader.get("/api/clusters");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"demo\""), "{body}");
    let (status, body) = reader.get(&format!("/api/clusters/{NS}/demo/journal?limit=5"));
    assert_eq!(status, 200, "{body}");

    let stranger = UiServer::start(&denied_config, Some(NS));
    for path in [
        "/api/clusters".to_owned(),
        format!("/api/clusters/{NS}/demo"),
        format!("/api/clusters/{NS}/demo/journal"),
        format!("/api/clusters/{NS}/demo/failovers"),
        format!("/api/clusters/{NS}/demo/state?at=1"),
        format!("/api/clusters/{NS}/demo/live"),
        format!("/clusters/{NS}/demo/report"),
    ] {
        let (status, body) = stranger.get(&path);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("forbidden"), "{path}: {body}");
        assert!(!body.contains("demo-0"), "{path} shows the cluster: {body}");
    }
    // Across namespaces, the stranger may list nothing either: refused, said so.
    let everywhere = UiServer::start(&denied_config, None);
    let (status, body) = everywhere.get("/api/clusters");
    assert_eq!(status, 403, "{body}");
    drop((reader, stranger, everywhere));
    env.finish().await;
}
