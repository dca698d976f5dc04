//! The committed `crds/valkeycluster.yaml` must equal what the code generates.
//!
//! Run `make crds` (`LOGBOOK_UPDATE_CRDS=1 cargo test -p logbook-crds --test
//! crd_drift`) after changing the API types to regenerate it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

/// The committed copies: the crate's, and the Helm chart's (helm installs
/// `charts/logbook/crds/` before the chart's templates).
fn committed_paths() -> [PathBuf; 2] {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        crate_dir.join("valkeycluster.yaml"),
        crate_dir.join("../charts/logbook/crds/valkeycluster.yaml"),
    ]
}

#[test]
fn crd_yaml_matches_generated() {
    let generated = logbook_crds::render_crds_yaml().expect("CRDs render");
    for path in committed_paths() {
        if std::env::var_os("LOGBOOK_UPDATE_CRDS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &generated)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            continue;
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
                "{} is out of date with the API types ({line}); run `make crds` and commit the result",
                path.display()
            );
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    let a = logbook_crds::render_crds_yaml().unwrap();
    let b = logbook_crds::render_crds_yaml().unwrap();
    assert_eq!(a, b);
    assert!(a.starts_with("---\n"));
}
