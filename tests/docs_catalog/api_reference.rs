//! The CRD reference is the operator's: `docs/reference/api.md` is what
//! `logbook_crds::reference` renders from the CRDs now, and the
//! hand-written `docs/crd-reference.md` names every phase, condition type
//! and condition reason the operator sets, each as a row of a table in
//! the section of its kind (`| `Name` |`).
//!
//! Where the names come from, so that a new one fails here until it is
//! documented:
//! - phases: the `status.phase` enum of each CRD's schema;
//! - a ValkeyCluster's condition types: `CONDITION_TYPES`; its reasons
//!   (and the phases of `status.upgrade`, `status.restore`,
//!   `status.reshard`, `status.standby`, said in the same code): every
//!   CamelCase string of the status code, `core/src/decide/status/` and
//!   the Sentinels' health, and of the operator's `journal_untrusted`;
//! - a ValkeyUser's and a ValkeyOperatorDefaults' condition types and
//!   reasons: the CamelCase strings of the functions that write their
//!   status (`operator/src/operator/{users,defaults}.rs`);
//! - a ValkeyBackup has no condition: its schema is checked to have none.
//!
//! `LOGBOOK_UPDATE_API_REFERENCE=1` (`make api-reference`) writes
//! `docs/reference/api.md` instead of comparing it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use logbook_crds::reference::{API_REFERENCE_PATH, REGENERATE};

/// The hand-written reference.
const CRD_REFERENCE: &str = "docs/crd-reference.md";
/// Set to `1`, the API reference is written rather than compared.
const UPDATE_ENV: &str = "LOGBOOK_UPDATE_API_REFERENCE";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_api_reference_is_what_the_crds_render() {
    let rendered = logbook_crds::reference::render_api_reference();
    let path = root().join(API_REFERENCE_PATH);
    if std::env::var_os(UPDATE_ENV).is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        std::fs::write(&path, rendered.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != rendered {
        let at = committed
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "the files differ in length".to_owned(),
                |i| {
                    format!(
                        "first difference at line {}:\n  committed: {}\n  rendered:  {}",
                        i + 1,
                        committed.lines().nth(i).unwrap_or_default(),
                        rendered.lines().nth(i).unwrap_or_default()
                    )
                },
            );
        panic!(
            "{API_REFERENCE_PATH} is not what the CRDs render now ({at}); rewrite it with `{REGENERATE}` ({UPDATE_ENV}=1 cargo test --locked -p logbook --test components -- docs_catalog::api_reference) and commit it"
        );
    }
}

/// The schema of the stored version of the CRD of `kind`.
fn stored_schema(crds: &[CustomResourceDefinition], kind: &str) -> JSONSchemaProps {
    let crd = crds
        .iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD of kind {kind}"));
    let version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .unwrap_or_else(|| panic!("{kind}: no stored version"));
    version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.clone())
        .unwrap_or_else(|| panic!("{kind}: no schema"))
}

fn status_property<'a>(schema: &'a JSONSchemaProps, name: &str) -> Option<&'a JSONSchemaProps> {
    schema
        .properties
        .as_ref()?
        .get("status")?
        .properties
        .as_ref()?
        .get(name)
}

/// The `status.phase` enum of `kind`.
fn phases(crds: &[CustomResourceDefinition], kind: &str) -> Vec<String> {
    let schema = stored_schema(crds, kind);
    let phase = status_property(&schema, "phase")
        .unwrap_or_else(|| panic!("{kind}: no status.phase in the schema"));
    phase
        .enum_
        .iter()
        .flatten()
        .map(|v| {
            v.0.as_str()
                .unwrap_or_else(|| panic!("{kind}: a phase that is no string: {:?}", v.0))
                .to_owned()
        })
        .collect()
}

/// `source` before its test module, if it has one.
fn without_tests(source: &str) -> &str {
    source.split("#[cfg(test)]").next().unwrap_or(source)
}

/// The body of the function of `source` whose signature contains
/// `signature`: to the first line that is `}` alone.
fn function<'a>(source: &'a str, signature: &str) -> &'a str {
    let start = source
        .find(signature)
        .unwrap_or_else(|| panic!("no {signature} in the source"));
    let rest = &source[start..];
    let end = rest.find("\n}\n").unwrap_or(rest.len());
    &rest[..end]
}

/// The string literals of `code`, comments skipped (a small lexer: line
/// comments, strings with their escapes, and the char literal `'"'`).
fn string_literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                // A char literal ('"', '\'') or a lifetime: skip a quote
                // inside it.
                let mut ahead = chars.clone();
                match (ahead.next(), ahead.next(), ahead.next()) {
                    (Some('\\'), Some(_), Some('\'')) => {
                        chars = ahead;
                    }
                    (Some(_), Some('\''), _) => {
                        chars.next();
                        chars.next();
                    }
                    _ => {}
                }
            }
            '"' => {
                let mut literal = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        c => literal.push(c),
                    }
                }
                out.push(literal);
            }
            _ => {}
        }
    }
    out
}

/// Every string literal of `code` that is one CamelCase word (`"Ready"`,
/// `"QuorumLost"`), but `True` and `False` (a condition's status).
fn camel_case_strings(code: &str) -> BTreeSet<String> {
    string_literals(code)
        .into_iter()
        .filter(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && s.chars().all(|c| c.is_ascii_alphanumeric())
                && s.chars().any(|c| c.is_ascii_lowercase())
        })
        .filter(|s| s != "True" && s != "False")
        .collect()
}

#[test]
fn the_scan_reads_literals_not_comments() {
    let code = "// \"Commented\" and an odd \" quote\nlet a = '\"'; f(\"Ready\", \"a \\\" b\", \"Two words\"); // \"Not\"\nlet b: &'static str = \"QuorumLost\";";
    assert_eq!(
        camel_case_strings(code),
        BTreeSet::from(["QuorumLost".to_owned(), "Ready".to_owned()])
    );
}

fn read(path: &str) -> String {
    let path = root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The section of `doc` under the top-level heading that starts with
/// `# <kind> `, to the next top-level heading.
fn section<'a>(doc: &'a str, kind: &str) -> &'a str {
    let heading = format!("\n# {kind} ");
    let start = doc
        .find(&heading)
        .or_else(|| doc.starts_with(&heading[1..]).then_some(0))
        .unwrap_or_else(|| panic!("{CRD_REFERENCE} has no section `# {kind} …`"));
    let rest = &doc[start + 1..];
    let end = rest
        .match_indices("\n# ")
        .map(|(i, _)| i)
        .next()
        .unwrap_or(rest.len());
    &rest[..end]
}

/// What each kind's section must name: (kind, what, names).
fn wanted() -> Vec<(&'static str, &'static str, BTreeSet<String>)> {
    let crds = logbook_crds::crds();
    let mut out = Vec::new();
    for kind in [
        "ValkeyCluster",
        "ValkeyUser",
        "ValkeyBackup",
        "ValkeyOperatorDefaults",
    ] {
        if status_property(&stored_schema(&crds, kind), "phase").is_some() {
            out.push((kind, "phase", phases(&crds, kind).into_iter().collect()));
        }
    }
    // Every kind the operator serves is one of those above.
    let kinds: BTreeSet<&str> = crds.iter().map(|c| c.spec.names.kind.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ValkeyBackup",
            "ValkeyCluster",
            "ValkeyOperatorDefaults",
            "ValkeyUser"
        ]),
        "a CRD was added or renamed: say here what of its status docs/crd-reference.md must name"
    );

    out.push((
        "ValkeyCluster",
        "condition type",
        logbook_crds::v1alpha1::CONDITION_TYPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect(),
    ));
    let mut cluster = BTreeSet::new();
    for file in [
        "core/src/decide/status/mod.rs",
        "core/src/decide/status/parts.rs",
        "core/src/decide/status/cluster.rs",
        "core/src/decide/sentinel/health.rs",
    ] {
        cluster.extend(camel_case_strings(without_tests(&read(file))));
    }
    // The conditions the shell writes when the journal cannot be trusted.
    let reconcile = read("operator/src/operator/reconcile.rs");
    cluster.extend(camel_case_strings(function(
        without_tests(&reconcile),
        "async fn journal_untrusted(",
    )));
    for known in [
        "JournalCorrupt",
        "SpecRejected",
        "ContainerFailing",
        "ReshardFailing",
        "QuorumReachable",
        "Served",
        "Preflight",
    ] {
        assert!(
            cluster.contains(known),
            "the scan of the cluster's status code found no {known}: {cluster:?}"
        );
    }
    out.push((
        "ValkeyCluster",
        "condition reason (or phase of a part of the status)",
        cluster,
    ));

    let users = read("operator/src/operator/users.rs");
    let users = without_tests(&users);
    let mut user = camel_case_strings(function(users, "pub fn user_status("));
    user.extend(camel_case_strings(function(users, "fn ready_condition(")));
    user.extend(camel_case_strings(function(
        users,
        "pub async fn reconcile_orphan(",
    )));
    for known in ["Ready", "Applied", "ServerRefused", "ClusterNotFound"] {
        assert!(
            user.contains(known),
            "the scan of the users' status code found no {known}: {user:?}"
        );
    }
    out.push(("ValkeyUser", "condition type or reason", user));

    let defaults = read("operator/src/operator/defaults.rs");
    let defaults = camel_case_strings(function(
        without_tests(&defaults),
        "pub fn defaults_status(",
    ));
    assert!(
        defaults.contains("Valid") && defaults.contains("Invalid"),
        "the scan of the defaults' status code found no Valid or Invalid: {defaults:?}"
    );
    out.push((
        "ValkeyOperatorDefaults",
        "condition type or reason",
        defaults,
    ));

    assert!(
        status_property(&stored_schema(&crds, "ValkeyBackup"), "conditions").is_none(),
        "a ValkeyBackup has conditions now: scan the code that sets them here"
    );
    out
}

#[test]
fn every_phase_condition_and_reason_is_in_the_crd_reference() {
    let doc = read(CRD_REFERENCE);
    let mut missing = Vec::new();
    for (kind, what, names) in wanted() {
        let section = section(&doc, kind);
        for name in names {
            if !section.contains(&format!("| `{name}` |")) {
                missing.push(format!("{kind}: {what} {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not a row of a table (`| `Name` | what it means | what to do |`) in the section of its kind in {CRD_REFERENCE}:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_crd_reference_names_fields_as_v1beta1_does_and_points_to_the_api_reference() {
    let doc = read(CRD_REFERENCE);
    assert!(
        doc.contains("reference/api.md"),
        "{CRD_REFERENCE} does not point to the generated field tables (reference/api.md)"
    );
    // A v1alpha1 path that v1beta1 names otherwise (`spec.shards`) is
    // named only where the line speaks of v1alpha1.
    let crds = logbook_crds::crds();
    let crd = crds
        .iter()
        .find(|c| c.spec.names.kind == "ValkeyCluster")
        .unwrap();
    let paths = |name: &str| -> BTreeSet<String> {
        let version = crd.spec.versions.iter().find(|v| v.name == name).unwrap();
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap();
        logbook_crds::reference::fields(schema, "spec")
            .into_iter()
            .map(|f| f.path)
            .collect()
    };
    let beta = paths("v1beta1");
    let alpha_only: Vec<String> = paths("v1alpha1").difference(&beta).cloned().collect();
    assert!(
        alpha_only.contains(&"spec.shards".to_owned()),
        "{alpha_only:?}"
    );
    let mut wrong = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        for path in &alpha_only {
            let named = line.contains(&format!("`{path}`"))
                || line.contains(&format!("`{path} "))
                || line.contains(&format!("`{path}:"));
            if named && !line.contains("v1alpha1") {
                wrong.push(format!(
                    "line {}: {path} (v1beta1: {})",
                    i + 1,
                    logbook_crds::conversion::path_to_v1beta1(path)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{CRD_REFERENCE} names fields as v1alpha1 does:\n  {}",
        wrong.join("\n  ")
    );
}
