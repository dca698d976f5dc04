//! The checks every run ends with, on the journal the operator kept:
//! `logbook journal verify` (every record's checksum and chain) and
//! `logbook replay audit` of each cluster's stream (the fresh clusters of
//! the spec trials have theirs), in words when one fails.

use std::path::Path;

use super::report::tail;

/// `logbook journal verify` and `logbook replay audit` of the journal:
/// what failed, in words.
pub(crate) async fn journal_checks(binary: &Path, journal: &Path) -> Vec<String> {
    let binary = binary.to_path_buf();
    let journal = journal.display().to_string();
    let ran = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            std::process::Command::new(&binary)
                .args(args)
                .output()
                .map(|o| {
                    (
                        o.status.success(),
                        String::from_utf8_lossy(&o.stdout).into_owned()
                            + &String::from_utf8_lossy(&o.stderr),
                    )
                })
        };
        let verify = run(&["journal", "verify", "--dir", &journal]);
        // One audit per cluster's stream (the fresh clusters have theirs).
        let streams = run(&["journal", "streams", "--dir", &journal]);
        let audits: Vec<(String, std::io::Result<(bool, String)>)> = match &streams {
            Ok((true, text)) => text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|s| *s != "operator")
                .map(|stream| {
                    (
                        stream.to_owned(),
                        run(&["replay", "audit", "--dir", &journal, "--stream", stream]),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        (verify, streams, audits)
    })
    .await;
    let mut out = Vec::new();
    match ran {
        Ok((verify, streams, audits)) => {
            match verify {
                Ok((true, _)) => {}
                Ok((false, text)) => out.push(format!("journal verify: {}", tail(&text, 12))),
                Err(e) => out.push(format!("journal verify could not run: {e}")),
            }
            match streams {
                Ok((true, _)) if !audits.is_empty() => {}
                Ok((_, text)) => out.push(format!("journal streams: {}", tail(&text, 12))),
                Err(e) => out.push(format!("journal streams could not run: {e}")),
            }
            for (stream, audit) in audits {
                match audit {
                    Ok((true, text)) if text.contains("audit: clean") => {}
                    Ok((_, text)) => {
                        out.push(format!("replay audit of {stream}: {}", tail(&text, 30)));
                    }
                    Err(e) => out.push(format!("replay audit of {stream} could not run: {e}")),
                }
            }
        }
        Err(e) => out.push(format!("the journal checks failed: {e}")),
    }
    out
}
