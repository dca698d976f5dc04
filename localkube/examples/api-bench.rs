//! localkube's speed and memory with 5,000 objects stored, measured through
//! the real kube-rs client over HTTP (what the operator sees).
//!
//! `cargo run --release -p logbook-localkube --example api-bench -- --objects 5000`
//! prints one JSON object. Targets (issue 3): GET and PATCH p99 < 2 ms, a
//! change reaching an open watch < 5 ms p99, memory < 100 MiB.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use logbook_localkube::{Config, LocalKube};

const NAMESPACES: usize = 10;

fn arg(name: &str, default: usize) -> Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context("missing value")?
            .parse()
            .context("not a number"),
        None => Ok(default),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Resident memory of this process (server and client together), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn config_map(name: &str, i: usize) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([("app".to_owned(), format!("bench-{}", i % 7))].into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [
                (
                    "valkey.conf".to_owned(),
                    format!("maxmemory {}mb\nappendonly yes\n", i % 512),
                ),
                ("index".to_owned(), i.to_string()),
            ]
            .into(),
        ),
        ..ConfigMap::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let objects = arg("--objects", 5000)?;
    let samples = arg("--samples", 2000)?;
    let rss_before = rss_kib();
    let server = LocalKube::start(Config::default()).await?;
    let rss_empty = rss_kib();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse()?))?;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    for n in 0..NAMESPACES {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(format!("bench-{n}")),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    let started = Instant::now();
    for i in 0..objects {
        let api: Api<ConfigMap> =
            Api::namespaced(client.clone(), &format!("bench-{}", i % NAMESPACES));
        api.create(&PostParams::default(), &config_map(&format!("cm-{i}"), i))
            .await?;
    }
    let create_per_s = objects as f64 / started.elapsed().as_secs_f64();
    let rss_loaded = rss_kib();

    // GETs of random objects (a fixed xorshift sequence).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        usize::try_from(x % objects as u64).unwrap_or(0)
    };
    let mut gets = Vec::with_capacity(samples);
    for _ in 0..samples {
        let i = next();
        let api: Api<ConfigMap> =
            Api::namespaced(client.clone(), &format!("bench-{}", i % NAMESPACES));
        let t = Instant::now();
        api.get(&format!("cm-{i}")).await?;
        gets.push(t.elapsed());
    }
    gets.sort();

    let mut patches = Vec::with_capacity(samples);
    for s in 0..samples {
        let i = next();
        let api: Api<ConfigMap> =
            Api::namespaced(client.clone(), &format!("bench-{}", i % NAMESPACES));
        let patch = serde_json::json!({"data": {"round": s.to_string()}});
        let t = Instant::now();
        api.patch(
            &format!("cm-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        patches.push(t.elapsed());
    }
    patches.sort();

    // Watch latency: a change made through the API until its event arrives
    // on an open watch of the same namespace.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-0");
    let rv = api
        .list_metadata(&Default::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut stream = api
        .watch(&WatchParams::default().timeout(290), &rv)
        .await?
        .boxed();
    let watch_samples = samples.min(1000);
    let mut watches = Vec::with_capacity(watch_samples);
    for s in 0..watch_samples {
        let name = format!("cm-{}", (s * NAMESPACES) % objects);
        let patch = serde_json::json!({"data": {"watch": s.to_string()}});
        let t = Instant::now();
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(WatchEvent::Modified(cm))))
                    if cm.data.as_ref().and_then(|d| d.get("watch")) == Some(&s.to_string()) =>
                {
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => anyhow::bail!("watch error: {e}"),
                Ok(None) => anyhow::bail!("watch closed"),
                Err(_) => anyhow::bail!("no watch event within 5 s"),
            }
        }
        watches.push(t.elapsed());
    }
    watches.sort();
    let rss_end = rss_kib();

    let report = serde_json::json!({
        "objects": objects,
        "samples": samples,
        "create_per_s": create_per_s.round(),
        "get_p50_us": percentile(&gets, 0.50).round(),
        "get_p99_us": percentile(&gets, 0.99).round(),
        "patch_p50_us": percentile(&patches, 0.50).round(),
        "patch_p99_us": percentile(&patches, 0.99).round(),
        "watch_p50_us": percentile(&watches, 0.50).round(),
        "watch_p99_us": percentile(&watches, 0.99).round(),
        "rss_process_start_mib": rss_before / 1024,
        "rss_server_empty_mib": rss_empty / 1024,
        "rss_with_objects_mib": rss_loaded / 1024,
        "rss_end_mib": rss_end / 1024,
        "target_get_p99_2ms": percentile(&gets, 0.99) < 2000.0,
        "target_patch_p99_2ms": percentile(&patches, 0.99) < 2000.0,
        "target_watch_p99_5ms": percentile(&watches, 0.99) < 5000.0,
        "target_memory_100mib": rss_end / 1024 < 100,
    });
    println!("{report}");
    server.shutdown().await;
    Ok(())
}
