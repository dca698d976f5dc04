//! A pod's volumes on the host: PVCs as persistent directories under
//! `<state>/pvc/<ns>/<claim>`, emptyDirs under the pod's directory, and
//! configMap / secret volumes materialized as files the way the real
//! kubelet's atomic writer does it (a `..data` symlink swapped to a new
//! timestamped directory, each key a symlink through `..data`), so a
//! refresh is seen whole or not at all by the container.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::env::Refs;

/// The directory of a PVC's data.
pub fn pvc_dir(state: &Path, ns: &str, claim: &str) -> PathBuf {
    state.join("pvc").join(ns).join(claim)
}

/// What [`corrupt_files`] writes over every file of a claim: no server
/// reads it as its data.
pub const CORRUPT: &[u8] = b"localkube: this file was corrupted on purpose\n";

/// Writes [`CORRUPT`] over every regular file under `dir` (a disk whose
/// blocks went bad, for a test: its server cannot load what it held).
/// Returns how many files were written over.
///
/// # Errors
/// `dir` or a directory under it cannot be read, or a file written.
pub fn corrupt_files(dir: &Path) -> std::io::Result<usize> {
    let mut written = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            written += corrupt_files(&path)?;
        } else if path.is_file() {
            std::fs::write(&path, CORRUPT)?;
            written += 1;
        }
    }
    Ok(written)
}

/// The file naming the uid of the claim whose data `pvc_dir` holds
/// (beside the data, not in it: the container sees only its data).
fn owner_file(state: &Path, ns: &str, claim: &str) -> PathBuf {
    state.join("pvc-owners").join(ns).join(claim)
}

/// The directory of the claim `claim` (uid `uid`), made for it: a claim
/// made again under a deleted one's name is a new volume and starts
/// empty, as a provisioner gives it one, never the old claim's data. A
/// directory no uid is recorded for (made before, or filled by hand) is
/// taken as the claim's.
///
/// # Errors
/// The directory or its owner file cannot be made.
pub(crate) fn claim_dir(state: &Path, ns: &str, claim: &str, uid: &str) -> Result<PathBuf, String> {
    let dir = pvc_dir(state, ns, claim);
    let owner = owner_file(state, ns, claim);
    let recorded = std::fs::read_to_string(&owner).ok();
    if recorded.as_deref() == Some(uid) {
        return Ok(dir);
    }
    let failed = |what: &str, e: std::io::Error| {
        format!("cannot {what} the volume of persistentvolumeclaim \"{claim}\": {e}")
    };
    if recorded.is_some() {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed("empty", e)),
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| failed("create", e))?;
    if let Some(parent) = owner.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed("record", e))?;
    }
    std::fs::write(&owner, uid).map_err(|e| failed("record", e))?;
    Ok(dir)
}

/// The directory of a pod.
pub(crate) fn pod_dir(state: &Path, uid: &str) -> PathBuf {
    state.join("pods").join(uid)
}

/// Files a configMap/secret volume should hold: path → (bytes, mode).
type Files = BTreeMap<String, (Vec<u8>, u32)>;

/// What a configMap or secret volume should contain now; Err when a
/// required object or key is missing.
fn desired(refs: &Refs, vol: &Value) -> Result<Option<Files>, String> {
    let (src, secret, name_field) = match (vol.get("configMap"), vol.get("secret")) {
        (Some(c), _) => (c, false, "name"),
        (None, Some(s)) => (s, true, "secretName"),
        (None, None) => return Ok(None),
    };
    let name = src
        .get(name_field)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let optional = src
        .get("optional")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let default_mode = src
        .get("defaultMode")
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(0o644);
    let kind = if secret { "secret" } else { "configmap" };
    let data = match refs.data(secret, name) {
        Some(d) => d,
        None if optional => BTreeMap::new(),
        None => return Err(format!("{kind} \"{name}\" not found")),
    };
    let mut files = Files::new();
    match src.get("items").and_then(Value::as_array) {
        Some(items) => {
            for it in items {
                let key = it.get("key").and_then(Value::as_str).unwrap_or_default();
                let path = it.get("path").and_then(Value::as_str).unwrap_or(key);
                let mode = it
                    .get("mode")
                    .and_then(Value::as_u64)
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(default_mode);
                match data.get(key) {
                    Some(v) => {
                        files.insert(path.to_owned(), (v.clone(), mode));
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configmap references non-existent config key: {key}"
                        ));
                    }
                }
            }
        }
        None => {
            for (k, v) in data {
                files.insert(k, (v, default_mode));
            }
        }
    }
    Ok(Some(files))
}

/// The files currently under `dir/..data`.
fn current(dir: &Path) -> Files {
    fn walk(base: &Path, rel: &str, out: &mut Files) {
        let Ok(rd) = std::fs::read_dir(base.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let p = base.join(&r);
            if p.is_dir() {
                walk(base, &r, out);
            } else if let (Ok(b), Ok(m)) = (std::fs::read(&p), std::fs::metadata(&p)) {
                out.insert(r, (b, m.permissions().mode() & 0o7777));
            }
        }
    }
    let mut out = Files::new();
    walk(&dir.join("..data"), "", &mut out);
    out
}

/// Writes `files` into `dir` atomically (see the module docs).
fn swap(dir: &Path, files: &Files) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stamp = format!("..{}", chrono::Utc::now().format("%Y_%m_%d_%H_%M_%S.%f"));
    let new = dir.join(&stamp);
    std::fs::create_dir_all(&new)?;
    for (path, (bytes, mode)) in files {
        let p = new.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
    }
    let old = std::fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    // Top-level entries point through ..data; stale ones go.
    let tops: std::collections::BTreeSet<String> = files
        .keys()
        .filter_map(|k| k.split('/').next().map(str::to_owned))
        .collect();
    for t in &tops {
        let link = dir.join(t);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{t}"), &link)?;
        }
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !tops.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

/// Makes a configMap/secret volume match its object; Ok(true) when it
/// changed.
pub(crate) fn refresh(refs: &Refs, vol: &Value, dir: &Path) -> Result<bool, String> {
    let Some(files) = desired(refs, vol)? else {
        return Ok(false);
    };
    if dir.join("..data").exists() && current(dir) == files {
        return Ok(false);
    }
    swap(dir, &files).map_err(|e| format!("cannot write volume {}: {e}", dir.display()))?;
    Ok(true)
}

/// Prepares every volume of `pod`: name → host path.
///
/// # Errors
/// A message for the pod's status (missing PVC, ConfigMap, Secret).
pub(crate) fn prepare(
    refs: &Refs,
    state: &Path,
    pod: &Value,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for vol in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = vol.get("name").and_then(Value::as_str) else {
            continue;
        };
        let local = pod_dir(state, uid).join("volumes").join(name);
        let path = if let Some(claim) = vol
            .pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
        {
            let Some(uid) = refs.claim(claim) else {
                return Err(format!("persistentvolumeclaim \"{claim}\" not found"));
            };
            claim_dir(state, ns, claim, uid)?
        } else if let Some(p) = vol.pointer("/hostPath/path").and_then(Value::as_str) {
            PathBuf::from(p)
        } else if vol.get("configMap").is_some() || vol.get("secret").is_some() {
            refresh(refs, vol, &local)?;
            local
        } else {
            // emptyDir, and kinds without a local meaning, as empty dirs.
            local
        };
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create volume {name}: {e}"))?;
        out.insert(name.to_owned(), path);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_made_again_under_the_same_name_starts_empty() {
        let state = tempfile::tempdir().unwrap();
        let state = state.path();
        let dir = claim_dir(state, "shop", "data-a-0", "u1").unwrap();
        std::fs::write(dir.join("nodes.conf"), "the first claim's").unwrap();
        // The same claim again (a pod restarted): its data.
        let again = claim_dir(state, "shop", "data-a-0", "u1").unwrap();
        assert_eq!(again, dir);
        assert!(dir.join("nodes.conf").exists());
        // Deleted and made again: a new volume.
        let new = claim_dir(state, "shop", "data-a-0", "u2").unwrap();
        assert_eq!(new, dir);
        assert_eq!(std::fs::read_dir(&new).unwrap().count(), 0);
        // Data put there before any uid was recorded is the claim's.
        let filled = pvc_dir(state, "shop", "data-b-0");
        std::fs::create_dir_all(&filled).unwrap();
        std::fs::write(filled.join("dump.rdb"), "restored").unwrap();
        claim_dir(state, "shop", "data-b-0", "u3").unwrap();
        assert!(filled.join("dump.rdb").exists());
    }
}
