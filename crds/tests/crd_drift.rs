//! The committed `crds/valkeycluster.yaml` must equal what the code generates.
//!
//! Run `make crds` (`LOGBOOK_UPDATE_CRDS=1 cargo test -p logbook-crds --test
//! crd_drift`) after changing the API types to regenerate it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("valkeycluster.yaml")
}

#[test]
fn crd_yaml_matches_generated() {
    let generated = logbook_crds::render_crds_yaml().expect("CRDs render");
    let path = committed_path();
    if std::env::var_os("LOGBOOK_UPDATE_CRDS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write crds/valkeycluster.yaml");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run `make crds` to generate it",
            path.display()
        )
    });
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "the files differ in length".to_owned(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "crds/valkeycluster.yaml is out of date with the API types ({line}); run `make crds` and commit the result"
        );
    }
}

#[test]
fn rendering_is_deterministic() {
    let a = logbook_crds::render_crds_yaml().unwrap();
    let b = logbook_crds::render_crds_yaml().unwrap();
    assert_eq!(a, b);
    assert!(a.starts_with("---\n"));
}
