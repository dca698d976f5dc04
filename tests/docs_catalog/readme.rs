//! The README stays true, and the docs a user reads stay readable:
//!
//! - the README is a product page: under 250 lines, its quickstart
//!   between markers that `scripts/test-node.sh` runs as written;
//! - every command it shows exists: a `make` target of the Makefile, a
//!   `kubectl valkey` or `logbook` subcommand the built binaries accept, a
//!   file or chart it names; `helm`, `kubectl` and `ctr` only in the
//!   quickstart, which the node tier runs;
//! - every link of the README and of every page of `docs/` resolves: a
//!   file of the repository, and a heading of it when the link names one
//!   (links to other sites are not followed: the tests have no network);
//! - the docs map (`docs/README.md`) links every page of `docs/` once, and
//!   no user doc (the README, the map's "User guide" and "Reference")
//!   names an internal issue or a `ValkeyCluster` field path that only
//!   `v1alpha1` has;
//! - every test file `docs/status.md` names as evidence exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::field_table::served;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const QUICKSTART_BEGIN: &str = "<!-- quickstart:begin -->";
const QUICKSTART_END: &str = "<!-- quickstart:end -->";

/// The `sh` blocks of a Markdown text, each with whether it lies inside
/// the quickstart markers, as its command lines (comments and blank lines
/// dropped, a trailing comment cut, `\` continuations joined).
fn commands(markdown: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut in_quickstart = false;
    let mut in_block = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed == QUICKSTART_BEGIN {
            in_quickstart = true;
            continue;
        }
        if trimmed == QUICKSTART_END {
            in_quickstart = false;
            continue;
        }
        if trimmed.starts_with("```") {
            in_block = !in_block && (trimmed == "```sh" || trimmed == "```bash");
            continue;
        }
        if !in_block || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let code = match trimmed.find("  #") {
            Some(at) => trimmed[..at].trim_end(),
            None => trimmed,
        };
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(code);
        out.push((in_quickstart, std::mem::take(&mut pending)));
    }
    out
}

/// The Makefile's targets.
fn make_targets() -> BTreeSet<String> {
    read(Path::new("Makefile"))
        .lines()
        .filter(|l| !l.starts_with('\t') && !l.starts_with('#') && !l.starts_with('.'))
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| !t.contains('=') && !t.contains('$'))
        .flat_map(|t| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Runs `binary` with `args` and `--help`, for its exit status.
fn accepts(binary: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(binary)
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The subcommand words of `words` (up to the first flag or argument
/// that is not a plain lowercase word).
fn subcommand(words: &[&str]) -> Vec<String> {
    words
        .iter()
        .take_while(|w| {
            !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .map(|w| (*w).to_owned())
        .collect()
}

/// Why the README command `line` does not work, if it does not.
fn check_command(quickstart: bool, line: &str, targets: &BTreeSet<String>) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&first, rest)) = words.split_first() else {
        return Ok(());
    };
    // Files and directories of the repository it names.
    for word in rest {
        let path = word.trim_matches(|c| c == '"' || c == '\'');
        let looks_like_path =
            path.starts_with("config/") || path.starts_with("charts/") || path.starts_with("crds/");
        if looks_like_path && !root().join(path).exists() {
            return Err(format!("names {path}, which does not exist"));
        }
    }
    match first {
        "make" => {
            for target in rest
                .iter()
                .filter(|w| !w.contains('=') && !w.starts_with('-'))
            {
                if !targets.contains(*target) {
                    return Err(format!("make {target}: no such target in the Makefile"));
                }
            }
            Ok(())
        }
        "kubectl" if rest.first() == Some(&"valkey") => {
            let sub = subcommand(rest.get(1..).unwrap_or_default());
            let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
            accepts(env!("CARGO_BIN_EXE_kubectl-valkey"), &sub)
                .map_err(|e| format!("kubectl valkey {}: {e}", sub.join(" ")))
        }
        "logbook" => {
            let sub = subcommand(rest);
            let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
            accepts(env!("CARGO_BIN_EXE_logbook"), &sub)
                .map_err(|e| format!("logbook {}: {e}", sub.join(" ")))
        }
        "kubectl" | "helm" | "ctr" if quickstart => {
            if first == "ctr" {
                let archive = rest.last().copied().unwrap_or_default();
                let name = archive.rsplit('/').next().unwrap_or_default();
                if !read(Path::new("scripts/images.sh")).contains(name) {
                    return Err(format!(
                        "{archive}: `make images` (scripts/images.sh) makes no {name}"
                    ));
                }
            }
            Ok(())
        }
        other => Err(format!(
            "{other}: a command this test cannot check; outside the quickstart (which scripts/test-node.sh runs) \
             the README may show make targets and the logbook and kubectl valkey commands"
        )),
    }
}

#[test]
fn the_readme_is_short_and_its_commands_work() {
    let readme = read(Path::new("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines; it must stay under 250 (move detail into docs/)"
    );
    let commands = commands(&readme);
    let quickstart: Vec<&String> = commands
        .iter()
        .filter(|(q, _)| *q)
        .map(|(_, c)| c)
        .collect();
    for needed in [
        "make images",
        "helm install",
        "kubectl apply -f config/samples/quickstart.yaml",
        "kubectl logs",
    ] {
        assert!(
            quickstart.iter().any(|c| c.starts_with(needed)),
            "the quickstart lacks `{needed}`: {quickstart:#?}"
        );
    }
    let node = read(Path::new("scripts/test-node.sh"));
    assert!(
        node.contains("quickstart:begin") && node.contains("quickstart:end"),
        "scripts/test-node.sh does not run the README's quickstart"
    );
    let targets = make_targets();
    assert!(
        targets.contains("test") && targets.contains("demo"),
        "{targets:?}"
    );
    let failures: Vec<String> = commands
        .iter()
        .filter_map(|(q, line)| {
            check_command(*q, line, &targets)
                .err()
                .map(|e| format!("`{line}`: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "README commands that do not work:\n{}",
        failures.join("\n")
    );
}

/// The link targets of a Markdown text: `[text](target)` and images.
fn links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].trim().to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => {
                Some(c.to_lowercase().next().unwrap_or(c))
            }
            _ => None,
        })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code && line.starts_with('#') {
            let base = slug(line.trim_start_matches('#'));
            let mut name = base.clone();
            let mut n = 0;
            while out.contains(&name) {
                n += 1;
                name = format!("{base}-{n}");
            }
            out.insert(name);
        }
    }
    out
}

/// Every Markdown page under `docs/`, relative to the root.
fn doc_pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in
            std::fs::read_dir(root().join(dir)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        {
            let path = dir.join(entry.unwrap().file_name());
            if root().join(&path).is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("docs"), &mut out);
    out.sort();
    out
}

/// Why the link `target` of `page` does not resolve, if it does not.
fn check_link(page: &Path, target: &str) -> Result<(), String> {
    if target.starts_with("http://")
        || target.starts_with("https://")
        || target.starts_with("mailto:")
    {
        return Ok(());
    }
    let (file, anchor) = match target.split_once('#') {
        Some((file, anchor)) => (file, Some(anchor)),
        None => (target, None),
    };
    let resolved = if file.is_empty() {
        page.to_owned()
    } else {
        page.parent().unwrap_or(Path::new("")).join(file)
    };
    let full = root().join(&resolved);
    if !full.exists() {
        return Err(format!("{target}: no {}", resolved.display()));
    }
    if let Some(anchor) = anchor
        && resolved.extension().is_some_and(|e| e == "md")
    {
        let text = read(&resolved);
        if !anchors(&text).contains(anchor) {
            return Err(format!(
                "{target}: {} has no heading #{anchor}",
                resolved.display()
            ));
        }
    }
    Ok(())
}

#[test]
fn every_link_of_the_readme_and_the_docs_resolves() {
    let mut pages = vec![
        PathBuf::from("README.md"),
        PathBuf::from("charts/logbook/README.md"),
    ];
    pages.retain(|p| root().join(p).exists());
    pages.extend(doc_pages());
    let mut broken = Vec::new();
    for page in &pages {
        for target in links(&read(page)) {
            if let Err(why) = check_link(page, &target) {
                broken.push(format!("{}: {why}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The pages the docs map lists under each `##` section.
fn docs_map() -> Vec<(String, Vec<PathBuf>)> {
    let map = read(Path::new("docs/README.md"));
    let mut sections: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for line in map.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            sections.push((title.trim().to_owned(), Vec::new()));
            continue;
        }
        let Some((_, pages)) = sections.last_mut() else {
            continue;
        };
        for target in links(line) {
            if target.starts_with("http") {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            if file.ends_with(".md") {
                pages.push(Path::new("docs").join(file));
            }
        }
    }
    sections
}

/// Every prefix of every spec path of the served versions that `pick`
/// (kind, version) takes.
fn spec_paths(pick: impl Fn(&str, &str) -> bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for ((kind, v), leaves) in served() {
        if !pick(&kind, &v) {
            continue;
        }
        for leaf in leaves {
            let mut prefix = String::new();
            for (i, part) in leaf.split('.').enumerate() {
                if i > 0 {
                    prefix.push('.');
                }
                prefix.push_str(part.trim_end_matches("[]"));
                out.insert(prefix.clone());
            }
        }
    }
    out
}

/// The `spec.…` paths written in `text`, with their line numbers.
fn written_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.contains("v1alpha1") {
            // A line that names the old version may name its paths.
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("spec.") {
            let before_ok = at == 0
                || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '.' || c == '_');
            let path: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '[' || *c == ']')
                .collect();
            rest = &rest[at + 5..];
            if before_ok {
                let path = path.replace("[]", "").trim_end_matches('.').to_owned();
                out.push((n + 1, path));
            }
        }
    }
    out
}

/// Whether `text` names an internal issue: "issue 12", "issues 3 and 4",
/// "(#12)".
fn names_an_issue(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for (n, line) in lower.lines().enumerate() {
        for marker in ["issue ", "issues ", "issue #"] {
            let mut rest = line;
            while let Some(at) = rest.find(marker) {
                let after = rest[at + marker.len()..].trim_start_matches('#');
                if after.starts_with(|c: char| c.is_ascii_digit()) {
                    return Some(format!("line {}: {}", n + 1, line.trim()));
                }
                rest = &rest[at + marker.len()..];
            }
        }
        if let Some(at) = line.find("(#")
            && line[at + 2..].starts_with(|c: char| c.is_ascii_digit())
        {
            return Some(format!("line {}: {}", n + 1, line.trim()));
        }
    }
    None
}

#[test]
fn the_docs_map_lists_every_page_and_user_docs_speak_v1beta1() {
    let sections = docs_map();
    let titles: Vec<&str> = sections.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        ["User guide", "Reference", "Internals"],
        "docs/README.md's sections"
    );
    let listed: Vec<&PathBuf> = sections.iter().flat_map(|(_, pages)| pages).collect();
    let mut problems = Vec::new();
    for page in doc_pages() {
        if page == Path::new("docs/README.md") {
            continue;
        }
        let times = listed.iter().filter(|p| ***p == page).count();
        if times != 1 {
            problems.push(format!(
                "{} is linked {times} times from docs/README.md (once, in one section)",
                page.display()
            ));
        }
    }
    // A path of another kind (a ValkeyUser's `spec.passwordSecret`) is
    // no v1alpha1 ValkeyCluster path.
    let old = spec_paths(|kind, v| kind == "ValkeyCluster" && v == "v1alpha1");
    let new = spec_paths(|kind, v| kind != "ValkeyCluster" || v == "v1beta1");
    assert!(
        new.contains("spec.cluster.shards") && old.contains("spec.shards"),
        "the schema walk"
    );
    let mut user_docs = vec![PathBuf::from("README.md")];
    user_docs.extend(sections.iter().take(2).flat_map(|(_, pages)| pages.clone()));
    for page in user_docs.iter().filter(|p| root().join(p).exists()) {
        let text = read(page);
        if let Some(line) = names_an_issue(&text) {
            problems.push(format!(
                "{}: names an internal issue: {line}",
                page.display()
            ));
        }
        for (line, path) in written_paths(&text) {
            if old.contains(&path) && !new.contains(&path) {
                problems.push(format!(
                    "{}:{line}: `{path}` is a v1alpha1 path; write it as v1beta1 names it",
                    page.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_status_page_names_tests_that_exist() {
    let status = read(Path::new("docs/status.md"));
    let mut missing = Vec::new();
    for word in status.split('`') {
        let named = word.starts_with("tests/") || word.starts_with("scripts/");
        if named && !word.contains(' ') && !root().join(word).exists() {
            missing.push(word.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "docs/status.md names what does not exist: {missing:?}"
    );
}

#[test]
fn the_readme_checks_catch_what_they_claim() {
    let targets: BTreeSet<String> = ["test".to_owned()].into();
    assert!(check_command(false, "make nonsense", &targets).is_err());
    assert!(check_command(false, "helm install x charts/logbook", &targets).is_err());
    assert!(check_command(true, "kubectl apply -f config/samples/nope.yaml", &targets).is_err());
    assert!(check_command(false, "kubectl valkey no-such-command", &targets).is_err());
    assert!(check_command(false, "kubectl valkey status", &targets).is_ok());
    assert!(names_an_issue("fixed in issue 34.").is_some());
    assert!(names_an_issue("journal head #412 9f2c").is_none());
    assert_eq!(
        slug("Failover: death versus `slowness`"),
        "failover-death-versus-slowness"
    );
    assert_eq!(
        written_paths("set `spec.shards: 3`"),
        [(1, "spec.shards".to_owned())]
    );
    assert!(check_link(Path::new("README.md"), "docs/nope.md").is_err());
    assert!(check_link(Path::new("README.md"), "docs/status.md#no-such-heading").is_err());
}
