//! A restore's objects: the `restore` init container of a cluster created
//! from a backup, and the Secret `<name>-restore` that holds its plan (the
//! bucket, each shard's object with its size and SHA-256) and the bucket's
//! credentials while the restore is under way.
//!
//! The init container runs the operator's image (`logbook-operator restore-fetch`):
//! in the pod of ordinal `n` it downloads shard `n`'s RDB into the data
//! volume, verifying it as it goes, before Valkey starts and loads it. It
//! does nothing when the plan is gone (the restore completed: the operator
//! deletes the Secret, mounted optional) or the volume holds data already
//! (a restarted pod keeps what it has).
//!
//! The plan is a text file of `key value` lines ([`RestoreFetchPlan`]),
//! parsed by the same code that writes it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, Secret, SecretVolumeSource, Volume};
use logbook_crds::ValkeyClusterSpec;
use logbook_journal::RestorePlan;

use super::ClusterMeta;
use super::statefulset::{DATA_VOLUME, field_env, mount};
use crate::backup_target::{S3Credentials, S3Target};

/// Suffix of the restore Secret's name.
pub const RESTORE_SECRET_SUFFIX: &str = "-restore";
/// Where the restore Secret is mounted in the init container.
pub const RESTORE_DIR: &str = "/etc/valkey-restore";
/// The plan's key in the restore Secret.
pub const PLAN_KEY: &str = "plan";
/// The init container's name.
pub const RESTORE_CONTAINER: &str = "restore";
/// The environment variable naming the operator's image (set by the Helm
/// chart from the Deployment's own image).
pub const IMAGE_ENV: &str = "LOGBOOK_IMAGE";
/// The operator's image when [`IMAGE_ENV`] is unset.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ghcr.io/logbook-dev/logbook";

const RESTORE_VOLUME: &str = "restore";

/// The restore Secret's name for cluster `cluster`.
pub fn restore_secret_name(cluster: &str) -> String {
    format!("{cluster}{RESTORE_SECRET_SUFFIX}")
}

/// The image the restore init container runs: `$LOGBOOK_IMAGE`, else
/// `ghcr.io/logbook-dev/logbook:<this version>`.
pub fn operator_image() -> String {
    std::env::var(IMAGE_ENV)
        .ok()
        .filter(|i| !i.trim().is_empty())
        .unwrap_or_else(|| format!("{DEFAULT_IMAGE_REPOSITORY}:{}", env!("CARGO_PKG_VERSION")))
}

/// Adds the `restore` init container and its (optional) Secret volume to
/// the data StatefulSet of a cluster whose spec names `restoreFrom`.
pub fn add_restore_init(sts: &mut StatefulSet, meta: &ClusterMeta, spec: &ValkeyClusterSpec) {
    let Some(pod) = sts.spec.as_mut().and_then(|s| s.template.spec.as_mut()) else {
        return;
    };
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: RESTORE_VOLUME.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(restore_secret_name(&meta.name)),
            optional: Some(true),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    });
    pod.init_containers = Some(vec![Container {
        name: RESTORE_CONTAINER.to_owned(),
        image: Some(operator_image()),
        command: Some(
            [
                "logbook-operator",
                "restore-fetch",
                "--plan-dir",
                RESTORE_DIR,
                "--data-dir",
                "/data",
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
        env: Some(vec![field_env("POD_NAME", "metadata.name")]),
        volume_mounts: Some(vec![
            mount(DATA_VOLUME, "/data"),
            mount(RESTORE_VOLUME, RESTORE_DIR),
        ]),
        security_context: Some(restore_security_context(spec)),
        // Its last line says why a load failed (`logbook: restore: …`,
        // never a credential): the kubelet puts it in the container's
        // terminated state, which the operator observes and reports in
        // the cluster's status, so the reason is not only in the log.
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }]);
}

/// The restore container's security context: it writes the data volume
/// Valkey then owns, so it runs as the Valkey container does.
///
/// - `spec.securityContext` given: that, as the Valkey container has it.
/// - else the pod's `spec.podSecurityContext` names a user: the pod's
///   user (nothing set here but the hardening below).
/// - else the Valkey container runs as its image's user, which the
///   operator cannot know; the Valkey images run as root (the official
///   one starts as root and drops to `valkey` after taking `/data`), and
///   volumes most often start root-owned with mode 0755. The operator's
///   image would run it as its user 65532, which cannot write there
///   (found on the real node: `Permission denied` on
///   `/data/dump.rdb.partial`). So it runs as root, with no capability
///   and no privilege escalation: it writes a volume its owner can.
///
/// In every case: no privilege escalation, every capability dropped, a
/// read-only root filesystem (it writes only the data volume).
pub fn restore_security_context(
    spec: &ValkeyClusterSpec,
) -> k8s_openapi::api::core::v1::SecurityContext {
    use k8s_openapi::api::core::v1::{Capabilities, SecurityContext};
    let mut sc = spec.security_context.clone().unwrap_or_else(|| {
        let pod_user = spec
            .pod_security_context
            .as_ref()
            .is_some_and(|p| p.run_as_user.is_some());
        SecurityContext {
            run_as_user: (!pod_user).then_some(0),
            run_as_non_root: (!pod_user).then_some(false),
            ..SecurityContext::default()
        }
    });
    sc.allow_privilege_escalation.get_or_insert(false);
    sc.read_only_root_filesystem.get_or_insert(true);
    if sc.capabilities.is_none() {
        sc.capabilities = Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        });
    }
    sc
}

/// What `logbook-operator restore-fetch` reads: the bucket, and by pod ordinal the
/// object to load with its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreFetchPlan {
    /// The bucket.
    pub bucket: String,
    /// Its region.
    pub region: String,
    /// The endpoint, when not AWS.
    pub endpoint: Option<String>,
    /// Path-style addressing.
    pub path_style: bool,
    /// Whether the server keeps an append-only file (the RDB then becomes
    /// its base, which is what Valkey loads with `appendonly yes`).
    pub aof: bool,
    /// By pod ordinal: object key, size, SHA-256. For a point-in-time
    /// restore, the key is the chain's base RDB.
    pub shards: BTreeMap<u32, (String, u64, String)>,
    /// By pod ordinal, for a point-in-time restore: the archive's
    /// segments to replay over that ordinal's base (`shards`). Empty for a
    /// restore of a backup (and in every plan written before it existed).
    pub point_in_time: BTreeMap<u32, PointInTimeFetch>,
}

/// One pod's part of a point-in-time restore: which of its chain's
/// segments to replay over the base, up to which time, and the digest of
/// the index entries the operator verified (the init container refuses an
/// index that changed since).
///
/// Plan lines (optional; a plan without them is a restore of a backup):
///
/// ```text
/// pitr <ordinal> <until_ms> <segments> <end> <digest> <chain_dir>
/// pitr-slots <ordinal> <start>-<end> ...
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointInTimeFetch {
    /// The chain's directory in the bucket (ending in `/`).
    pub chain_dir: String,
    /// Commands received at or before this (ms since the epoch) are
    /// replayed, none after.
    pub until_ms: i64,
    /// How many of the index's first entries are needed.
    pub segments: u64,
    /// The offset after the last needed segment.
    pub end: u64,
    /// Hex SHA-256 over those entries (`backup::pitr::index_digest`).
    pub digest: String,
    /// The shard's slots at `until_ms` (Cluster), as `[start, end]` pairs.
    pub slots: Vec<[u16; 2]>,
}

impl RestoreFetchPlan {
    /// The plan file's text.
    pub fn render(&self) -> String {
        let mut out = format!(
            "bucket {}\nregion {}\npath-style {}\naof {}\n",
            self.bucket, self.region, self.path_style, self.aof
        );
        if let Some(e) = &self.endpoint {
            out.push_str(&format!("endpoint {e}\n"));
        }
        for (ordinal, (key, bytes, sha)) in &self.shards {
            out.push_str(&format!("shard {ordinal} {bytes} {sha} {key}\n"));
        }
        for (ordinal, p) in &self.point_in_time {
            out.push_str(&format!(
                "pitr {ordinal} {} {} {} {} {}\n",
                p.until_ms, p.segments, p.end, p.digest, p.chain_dir
            ));
            if !p.slots.is_empty() {
                let ranges: Vec<String> = p.slots.iter().map(|[a, b]| format!("{a}-{b}")).collect();
                out.push_str(&format!("pitr-slots {ordinal} {}\n", ranges.join(" ")));
            }
        }
        out
    }

    /// Parses a plan file.
    ///
    /// # Errors
    /// The first line that does not parse, or a missing bucket.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut plan = RestoreFetchPlan {
            bucket: String::new(),
            region: logbook_crds::v1alpha1::DEFAULT_REGION.to_owned(),
            endpoint: None,
            path_style: false,
            aof: false,
            shards: BTreeMap::new(),
            point_in_time: BTreeMap::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let bad = || format!("plan line {}: {line:?} does not parse", n.saturating_add(1));
            let (word, rest) = line.split_once(' ').ok_or_else(bad)?;
            match word {
                "bucket" => rest.clone_into(&mut plan.bucket),
                "region" => rest.clone_into(&mut plan.region),
                "endpoint" => plan.endpoint = Some(rest.to_owned()),
                "path-style" => plan.path_style = rest == "true",
                "aof" => plan.aof = rest == "true",
                "shard" => {
                    let mut parts = rest.splitn(4, ' ');
                    let ordinal = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
                    let bytes = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
                    let sha = parts.next().ok_or_else(bad)?.to_owned();
                    let key = parts.next().ok_or_else(bad)?.to_owned();
                    plan.shards.insert(ordinal, (key, bytes, sha));
                }
                "pitr" => {
                    let mut parts = rest.splitn(6, ' ');
                    let mut num = || parts.next().and_then(|p| p.parse::<i64>().ok());
                    let ordinal = num().and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?;
                    let until_ms = num().ok_or_else(bad)?;
                    let segments = num().and_then(|n| u64::try_from(n).ok());
                    let segments = segments.ok_or_else(bad)?;
                    let end = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
                    let digest = parts.next().ok_or_else(bad)?.to_owned();
                    let chain_dir = parts.next().ok_or_else(bad)?.to_owned();
                    let slots = plan
                        .point_in_time
                        .remove(&ordinal)
                        .map(|p| p.slots)
                        .unwrap_or_default();
                    plan.point_in_time.insert(
                        ordinal,
                        PointInTimeFetch {
                            chain_dir,
                            until_ms,
                            segments,
                            end,
                            digest,
                            slots,
                        },
                    );
                }
                "pitr-slots" => {
                    let mut parts = rest.split(' ');
                    let ordinal: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
                    let mut slots = Vec::new();
                    for range in parts {
                        let (a, b) = range.split_once('-').ok_or_else(bad)?;
                        slots.push([a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?]);
                    }
                    let entry = plan.point_in_time.get_mut(&ordinal).ok_or_else(|| {
                        format!(
                            "plan line {}: slots for ordinal {ordinal} before its pitr line",
                            n.saturating_add(1)
                        )
                    })?;
                    entry.slots = slots;
                }
                _ => return Err(bad()),
            }
        }
        if plan.bucket.is_empty() {
            return Err("the plan names no bucket".to_owned());
        }
        if let Some(ordinal) = plan
            .point_in_time
            .keys()
            .find(|o| !plan.shards.contains_key(o))
        {
            return Err(format!(
                "the plan replays an archive for ordinal {ordinal} but names no base for it (no shard line)"
            ));
        }
        Ok(plan)
    }
}

/// The restore Secret of `meta`'s cluster for `plan`, holding the plan and
/// the bucket's credentials (read from the destination's Secret).
pub fn build_restore_secret(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    plan: &RestorePlan,
    point: Option<&logbook_journal::PointInTimePlan>,
    s3: &S3Target,
    credentials: &S3Credentials,
) -> Secret {
    let until_ms = point.map_or(0, |p| p.until.as_micros() / 1000);
    let fetch = RestoreFetchPlan {
        bucket: s3.bucket.clone(),
        region: s3.region.clone(),
        endpoint: s3.endpoint.clone(),
        path_style: s3.path_style,
        aof: spec.storage.persistence.aof(),
        shards: plan
            .shards
            .iter()
            .map(|s| (s.shard, (s.key.clone(), s.bytes, s.sha256.clone())))
            .collect(),
        point_in_time: point
            .map(|p| {
                p.shards
                    .iter()
                    .map(|s| {
                        (
                            s.shard,
                            PointInTimeFetch {
                                chain_dir: s.chain_dir.clone(),
                                until_ms,
                                segments: s.segments,
                                end: s.end,
                                digest: s.digest.clone(),
                                slots: s.slots.iter().map(|r| [r.start, r.end]).collect(),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut data = BTreeMap::from([
        (PLAN_KEY.to_owned(), ByteString(fetch.render().into_bytes())),
        (
            logbook_crds::v1alpha1::ACCESS_KEY_ID_KEY.to_owned(),
            ByteString(credentials.access_key_id.clone().into_bytes()),
        ),
        (
            logbook_crds::v1alpha1::SECRET_ACCESS_KEY_KEY.to_owned(),
            ByteString(credentials.secret_access_key.clone().into_bytes()),
        ),
    ]);
    if let Some(token) = &credentials.session_token {
        data.insert(
            logbook_crds::v1alpha1::SESSION_TOKEN_KEY.to_owned(),
            ByteString(token.clone().into_bytes()),
        );
    }
    Secret {
        metadata: meta.object_meta(restore_secret_name(&meta.name), spec),
        data: Some(data),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_back_as_written() {
        let plan = RestoreFetchPlan {
            bucket: "b".into(),
            region: "eu-west-1".into(),
            endpoint: Some("http://127.0.0.3:9000".into()),
            path_style: true,
            aof: true,
            shards: BTreeMap::from([
                (0, ("p/ns/c/x/shard-0.rdb".into(), 12, "ab".repeat(32))),
                (2, ("p/ns/c/x/shard-2.rdb".into(), 7, "cd".repeat(32))),
            ]),
            point_in_time: BTreeMap::new(),
        };
        assert_eq!(RestoreFetchPlan::parse(&plan.render()).unwrap(), plan);
    }

    #[test]
    fn a_point_in_time_plan_reads_back_as_written() {
        let mut plan = RestoreFetchPlan {
            bucket: "b".into(),
            region: "us-east-1".into(),
            endpoint: None,
            path_style: false,
            aof: true,
            shards: BTreeMap::from([
                (0, ("p/_archive/c0/base.rdb".into(), 12, "ab".repeat(32))),
                (1, ("p/_archive/c1/base.rdb".into(), 9, "ef".repeat(32))),
            ]),
            point_in_time: BTreeMap::new(),
        };
        plan.point_in_time.insert(
            0,
            PointInTimeFetch {
                chain_dir: "p/_archive/c0/".into(),
                until_ms: 1_700_000_000_123,
                segments: 3,
                end: 4096,
                digest: "12".repeat(32),
                slots: vec![[0, 100], [200, 8191]],
            },
        );
        plan.point_in_time.insert(
            1,
            PointInTimeFetch {
                chain_dir: "p/_archive/c1/".into(),
                until_ms: 1_700_000_000_123,
                segments: 0,
                end: 7,
                digest: "34".repeat(32),
                slots: Vec::new(),
            },
        );
        let text = plan.render();
        assert!(text.contains("pitr-slots 0 0-100 200-8191\n"), "{text}");
        assert_eq!(RestoreFetchPlan::parse(&text).unwrap(), plan);
    }

    #[test]
    fn a_plan_written_before_point_in_time_still_reads() {
        let old = "bucket b\nregion r\npath-style false\naof false\nshard 0 12 ab k/shard-0.rdb\n";
        let plan = RestoreFetchPlan::parse(old).unwrap();
        assert!(plan.point_in_time.is_empty());
        assert_eq!(plan.shards.len(), 1);
    }

    #[test]
    fn a_point_in_time_line_without_its_base_is_refused() {
        let err = RestoreFetchPlan::parse("bucket b\npitr 1 5 1 9 ab c/\n").unwrap_err();
        assert!(err.contains("ordinal 1"), "{err}");
        let err =
            RestoreFetchPlan::parse("bucket b\nshard 0 1 ab k\npitr 0 x 1 9 ab c/\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn a_bad_plan_says_which_line() {
        let err = RestoreFetchPlan::parse("bucket b\nshard x 1 ab k\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(RestoreFetchPlan::parse("region r\n").is_err());
    }

    fn spec(yaml: &str) -> ValkeyClusterSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_restore_runs_as_the_valkey_container_does() {
        // Nothing said: root (the Valkey images' user), hardened, never
        // the operator image's 65532 that cannot write a root-owned volume.
        let sc = restore_security_context(&spec("topology: Standalone\n"));
        assert_eq!(sc.run_as_user, Some(0));
        assert_eq!(sc.run_as_non_root, Some(false));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(
            sc.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_owned()])
        );
        // The pod names its user: that one.
        let sc = restore_security_context(&spec(
            "topology: Standalone\npodSecurityContext: {runAsUser: 999, fsGroup: 999}\n",
        ));
        assert_eq!(sc.run_as_user, None);
        assert_eq!(sc.run_as_non_root, None);
        // The Valkey container's own context: as it is, hardened.
        let sc = restore_security_context(&spec(
            "topology: Standalone\nsecurityContext: {runAsUser: 1000, runAsNonRoot: true, allowPrivilegeEscalation: true}\n",
        ));
        assert_eq!(sc.run_as_user, Some(1000));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
    }
}
