//! Builds the pod network shim (`localkube/shim/podnet.c`) into
//! `<state>/lib/podnet-<hash>.so`, once per source version: the hash in
//! the name means a changed source is rebuilt and an unchanged one never.

use std::path::{Path, PathBuf};

use super::KubeletError;

const SOURCE: &str = include_str!("../../shim/podnet.c");

/// FNV-1a: stable across runs and Rust versions (unlike `DefaultHasher`).
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The compiled shim's path, compiling it when missing.
pub(crate) async fn compile(state_dir: &Path) -> Result<PathBuf, KubeletError> {
    let lib = state_dir.join("lib");
    let out = lib.join(format!("podnet-{:016x}.so", fnv(SOURCE.as_bytes())));
    if out.is_file() {
        return Ok(out);
    }
    let err = |m: String| KubeletError::Shim(m);
    tokio::fs::create_dir_all(&lib)
        .await
        .map_err(|e| err(format!("{}: {e}", lib.display())))?;
    let src = lib.join("podnet.c");
    tokio::fs::write(&src, SOURCE)
        .await
        .map_err(|e| err(format!("{}: {e}", src.display())))?;
    // Built under a temporary name, then renamed: two kubelets sharing a
    // state dir never load a half-written library.
    let tmp = lib.join(format!("podnet-{}.so.tmp", std::process::id()));
    let output = tokio::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&tmp)
        .arg(&src)
        .arg("-ldl")
        .output()
        .await
        .map_err(|e| err(format!("cannot run cc: {e}")))?;
    if !output.status.success() {
        return Err(err(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    tokio::fs::rename(&tmp, &out)
        .await
        .map_err(|e| err(format!("{}: {e}", out.display())))?;
    Ok(out)
}
