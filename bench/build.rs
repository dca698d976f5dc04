//! Embeds the commit the bench is built from (`-dirty` when tracked files
//! had changes), so that the figures a run writes name the code that made
//! them even when the checkout moved on while it ran.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn main() {
    // A commit, a checkout or an edit of any crate the bench measures
    // makes the script run again.
    for path in [
        "../.git/HEAD",
        "../.git/index",
        "../.git/refs/heads",
        "../src",
        "../operator/src",
        "../core/src",
        "../journal/src",
        "../replay/src",
        "../crds/src",
        "../localkube/src",
        "src",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(head) => {
            // Without optional locks: a plain `git status` refreshes and
            // rewrites the index, which this script watches, so the next
            // cargo command would run it (and rebuild the bench and what
            // links it) again.
            let dirty = git(&[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
        None => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=LOGBOOK_BENCH_BUILT_FROM={commit}");
}
