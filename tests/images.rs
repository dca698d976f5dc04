//! The images `make images` builds (scripts/images.sh), read as a runtime
//! reads them and run under the real `runc`: the operator's image runs as
//! user 65532 with the Dockerfile's entrypoint, holds no shell, and starts
//! with a read-only root filesystem and no capabilities; the Valkey and
//! Redis images carry the server of their version and the tools the
//! operator's scripts run (`sh`, `valkey-cli`), and run as their own user.
//!
//! The archives are built before the tests (`make test` runs `make
//! images`); a missing one fails here, naming the command that builds it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn images_dir() -> PathBuf {
    std::env::var_os("LOGBOOK_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/images"))
}

/// One image archive, unpacked: its config and its layers' file lists.
struct Image {
    dir: tempfile::TempDir,
    config: Value,
    layers: Vec<PathBuf>,
}

impl Image {
    fn open(file: &str) -> Image {
        let archive = images_dir().join(file);
        assert!(
            archive.is_file(),
            "{} is missing: run `make images` (scripts/images.sh) first",
            archive.display()
        );
        let dir = tempfile::tempdir().unwrap();
        run(
            "tar",
            &[
                "-xf",
                archive.to_str().unwrap(),
                "-C",
                dir.path().to_str().unwrap(),
            ],
        );
        let blob = |digest: &str| {
            dir.path()
                .join("blobs/sha256")
                .join(digest.strip_prefix("sha256:").unwrap())
        };
        let index: Value = read_json(&dir.path().join("index.json"));
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 1, "one manifest: {index}");
        let manifest: Value = read_json(&blob(manifests[0]["digest"].as_str().unwrap()));
        let config: Value = read_json(&blob(manifest["config"]["digest"].as_str().unwrap()));
        let layers = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| blob(l["digest"].as_str().unwrap()))
            .collect();
        Image {
            dir,
            config,
            layers,
        }
    }

    /// The name `ctr images import` gives it.
    fn name(&self) -> String {
        let index: Value = read_json(&self.dir.path().join("index.json"));
        index["manifests"][0]["annotations"]["io.containerd.image.name"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Every path in every layer.
    fn files(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for layer in &self.layers {
            let out = run("tar", &["-tzf", layer.to_str().unwrap()]);
            all.extend(out.lines().map(|l| l.trim_end_matches('/').to_owned()));
        }
        all
    }

    /// The layers unpacked into `rootfs`, lowest first.
    fn unpack(&self, rootfs: &Path) {
        std::fs::create_dir_all(rootfs).unwrap();
        for layer in &self.layers {
            run(
                "tar",
                &[
                    "-xzf",
                    layer.to_str().unwrap(),
                    "-C",
                    rootfs.to_str().unwrap(),
                    "--numeric-owner",
                ],
            );
        }
    }

    fn user(&self) -> (u32, u32) {
        let user = self.config["config"]["User"].as_str().unwrap_or("0");
        let (u, g) = user.split_once(':').unwrap_or((user, user));
        (u.parse().unwrap(), g.parse().unwrap())
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// This process's memory cgroup: runc's cgroups go under it, as the
/// node's do (scripts/node.sh), never elsewhere on the host.
fn own_cgroup() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    text.lines()
        .find_map(|l| {
            l.split(':')
                .nth(2)
                .filter(|_| l.split(':').nth(1) == Some("memory"))
        })
        .unwrap_or("/")
        .trim_end_matches('/')
        .to_owned()
}

/// Runs `args` in `image` under runc as the image's user, with a read-only
/// root, no capabilities and no new privileges, as the chart's and the
/// operator's security contexts ask; returns (exit code, output).
fn run_in(image: &Image, args: &[&str]) -> (i32, String) {
    let bundle = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    image.unpack(&rootfs);
    let (uid, gid) = image.user();
    let env: Vec<Value> = image.config["config"]["Env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let id = format!("logbook-image-test-{}-{}", std::process::id(), uid);
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": image.config["config"]["WorkingDir"].as_str().unwrap_or("/"),
            "capabilities": {"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "image-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
        ],
        "linux": {
            "cgroupsPath": format!("{}/{id}", own_cgroup()),
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    std::fs::write(
        bundle.path().join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    let out = Command::new("runc")
        .args(["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .output()
        .expect("runc (make setup installs it)");
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_operator_image_is_the_dockerfiles_runtime_stage() {
    let image = Image::open("logbook-operator.oci.tar");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        image.name(),
        format!("ghcr.io/logbook-dev/logbook:{version}")
    );
    let config = &image.config["config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Entrypoint"],
        json!(["/usr/local/bin/logbook-operator"])
    );
    assert_eq!(config["Cmd"], json!(["operator"]));
    let files = image.files();
    // One executable: the operator, and a restore's fetch as its
    // subcommand; none of the tools.
    let binaries: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("usr/local/bin/"))
        .collect();
    assert_eq!(binaries, ["usr/local/bin/logbook-operator"], "{files:?}");
    // distroless: no shell, no package manager.
    for absent in [
        "bin/sh",
        "usr/bin/sh",
        "bin/bash",
        "usr/bin/bash",
        "bin/busybox",
        "usr/bin/dpkg",
        "usr/bin/apt",
    ] {
        assert!(!files.contains(absent), "the operator image has {absent}");
    }
    assert!(files.contains("etc/ssl/certs/ca-certificates.crt"));
    assert!(files.contains("tmp"));
}

#[test]
fn the_operator_image_starts_as_65532_with_a_read_only_root_and_no_capabilities() {
    let image = Image::open("logbook-operator.oci.tar");
    let version = env!("CARGO_PKG_VERSION");
    let (code, out) = run_in(&image, &["/usr/local/bin/logbook-operator", "--version"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), format!("logbook-operator {version}"));
    // A restore's init container runs the same executable: with no plan
    // mounted it succeeds and writes nothing (the root is read-only).
    let (code, out) = run_in(
        &image,
        &[
            "/usr/local/bin/logbook-operator",
            "restore-fetch",
            "--plan-dir",
            "/nonexistent",
            "--data-dir",
            "/tmp",
            "--pod",
            "demo-0",
        ],
    );
    assert_eq!(code, 0, "{out}");
}

/// (archive, name, what `--version` prints, server, cli)
const DATA_IMAGES: [(&str, &str, &str, &str, &str); 3] = [
    (
        "valkey-9.1.oci.tar",
        "docker.io/valkey/valkey:9.1",
        "v=9.1.",
        "valkey-server",
        "valkey-cli",
    ),
    (
        "valkey-8.0.oci.tar",
        "docker.io/valkey/valkey:8.0",
        "v=8.0.",
        "valkey-server",
        "valkey-cli",
    ),
    (
        "redis-7.0.oci.tar",
        "docker.io/library/redis:7.0",
        "v=7.0.",
        "redis-server",
        "redis-cli",
    ),
];

#[test]
fn the_data_images_carry_their_server_and_the_scripts_tools() {
    for (file, name, version, server, cli) in DATA_IMAGES {
        let image = Image::open(file);
        assert_eq!(image.name(), name);
        assert_eq!(
            image.user(),
            (0, 0),
            "{name}: the pod's securityContext picks the user"
        );
        let (code, out) = run_in(
            &image,
            &[
                "sh",
                "-c",
                &format!(
                    "{server} --version && command -v {cli} && id -u && grep -c . /etc/passwd >/dev/null && echo ok"
                ),
            ],
        );
        assert_eq!(code, 0, "{name}: {out}");
        assert!(out.contains(version), "{name}: {out}");
        assert!(out.trim_end().ends_with("ok"), "{name}: {out}");
        if server == "valkey-server" {
            let (code, out) = run_in(&image, &["sh", "-c", "command -v valkey-sentinel"]);
            assert_eq!(code, 0, "{name} has no valkey-sentinel: {out}");
        }
    }
}

#[test]
fn the_pause_image_is_static_and_runs_as_65535() {
    let image = Image::open("pause.oci.tar");
    assert_eq!(image.name(), "registry.k8s.io/pause:3.10.2");
    assert_eq!(image.user(), (65535, 65535));
    assert_eq!(
        image
            .files()
            .into_iter()
            .filter(|f| !f.is_empty())
            .collect::<Vec<_>>(),
        vec!["pause"]
    );
    let (code, out) = run_in(&image, &["/pause", "-v"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pause.c v3.10.2"), "{out}");
}

#[test]
fn the_exporter_image_runs_redis_exporter_as_59000_from_its_entrypoint() {
    let image = Image::open("redis-exporter.oci.tar");
    assert_eq!(image.name(), "docker.io/oliver006/redis_exporter:v1.45.0");
    assert_eq!(image.user(), (59000, 59000));
    assert_eq!(
        image.config["config"]["Entrypoint"],
        json!(["/redis_exporter"])
    );
    let (code, out) = run_in(&image, &["/redis_exporter", "--version"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Redis Metrics Exporter 1.45."), "{out}");
}
