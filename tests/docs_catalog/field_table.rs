//! Every spec field of every served CRD version has an oracle: a row of
//! `docs/field-oracles.yaml` saying what is observed when the field takes
//! effect (on the servers, in an object the operator writes, in a
//! behaviour, or as a refusal in the status) and which test observes it.
//! `docs/field-table.md` is rendered from the chart's CRDs and those rows.
//!
//! A leaf is a schema node under `spec` with no `properties`: a scalar, a
//! list of scalars, a map (`additionalProperties`), or an object kept
//! whole (`x-kubernetes-preserve-unknown-fields`). A list of objects is
//! walked into: `spec.tolerations[].key`. A row covers a leaf when its
//! path is the leaf's, or when it is a `subtree` row (a Kubernetes type
//! passed through verbatim) and the leaf is under it; its `versions`
//! must name the leaf's version (or be `all`).
//!
//! What fails here: a leaf no row covers (a new field, or one whose oracle
//! nobody wrote), a leaf two rows cover, a row that covers no leaf at one
//! of its versions (a field renamed or removed), and a row whose test is
//! not a test function of its file. There is no list of exceptions: a
//! field is accepted only by its row.
//!
//! `LOGBOOK_UPDATE_FIELD_TABLE=1` (`make field-table`) writes the table
//! instead of comparing it, as `LOGBOOK_UPDATE_CRDS=1` does for the CRDs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;

/// The chart's CRDs: what a cluster's API server serves.
const CRDS_DIR: &str = "charts/logbook/crds";
/// The hand-written rows.
const ORACLES: &str = "docs/field-oracles.yaml";
/// The generated table.
const TABLE: &str = "docs/field-table.md";
/// Set to `1`, the table is written rather than compared.
const UPDATE_ENV: &str = "LOGBOOK_UPDATE_FIELD_TABLE";
/// How to write the table again, as the drift failure says.
const REGENERATE: &str = "make field-table";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One spec leaf of one served version of one CRD.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Leaf {
    crd: String,
    version: String,
    path: String,
}

/// The versions a row is for.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Versions {
    /// `all`: every served version of its CRD.
    All(String),
    /// These versions.
    List(Vec<String>),
}

/// Where a field's effect is seen.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// On the Valkey servers (or Sentinels): a `CONFIG GET`, an ACL rule.
    Server,
    /// In a Kubernetes object the operator writes.
    Object,
    /// In what the operator does: a failover taken or held, a roll, a
    /// backup deleted.
    Behaviour,
    /// The field is refused in the status, with its reason.
    Refused,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Object => "object",
            Kind::Behaviour => "behaviour",
            Kind::Refused => "refused",
        }
    }
}

/// A row of `docs/field-oracles.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    crd: String,
    versions: Versions,
    path: String,
    #[serde(default)]
    subtree: bool,
    oracle: String,
    kind: Kind,
    test: String,
    file: String,
}

impl Row {
    fn names_version(&self, version: &str) -> bool {
        match &self.versions {
            Versions::All(_) => true,
            Versions::List(list) => list.iter().any(|v| v == version),
        }
    }

    fn covers(&self, leaf: &Leaf) -> bool {
        self.crd == leaf.crd
            && self.names_version(&leaf.version)
            && (leaf.path == self.path
                || (self.subtree
                    && (leaf.path.starts_with(&format!("{}.", self.path))
                        || leaf.path.starts_with(&format!("{}[]", self.path)))))
    }

    fn name(&self) -> String {
        format!("{} {} ({})", self.crd, self.path, self.versions_text())
    }

    fn versions_text(&self) -> String {
        match &self.versions {
            Versions::All(all) => all.clone(),
            Versions::List(list) => list.join(", "),
        }
    }

    /// `file::test`, as the table shows it.
    fn test_ref(&self) -> String {
        format!("{}::{}", self.file, self.test)
    }
}

fn rows() -> Vec<Row> {
    let text = read(&root().join(ORACLES));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{ORACLES}: {e}"))
}

/// The served versions of every CRD of the chart, each with its spec's
/// leaves in the schema's order.
pub(super) fn served() -> BTreeMap<(String, String), Vec<String>> {
    let dir = root().join(CRDS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut out = BTreeMap::new();
    for file in files {
        let text = read(&file);
        for document in serde_yaml::Deserializer::from_str(&text) {
            let crd =
                Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if crd.is_null() || crd["kind"].as_str() != Some("CustomResourceDefinition") {
                continue;
            }
            let kind = crd["spec"]["names"]["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: a CRD with no spec.names.kind", file.display()));
            let versions = crd["spec"]["versions"].as_sequence().unwrap();
            for version in versions {
                if version["served"].as_bool() != Some(true) {
                    continue;
                }
                let name = version["name"].as_str().unwrap().to_owned();
                let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
                assert!(!spec.is_null(), "{kind} {name}: no spec in the schema");
                let mut leaves = Vec::new();
                walk(spec, "spec", &mut leaves);
                out.insert((kind.to_owned(), name), leaves);
            }
        }
    }
    out
}

/// The leaves under the schema `node` at `path`.
fn walk(node: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(properties) = node["properties"].as_mapping() {
        for (name, child) in properties {
            walk(child, &format!("{path}.{}", name.as_str().unwrap()), out);
        }
    } else if node["type"].as_str() == Some("array") && node["items"]["properties"].is_mapping() {
        walk(&node["items"], &format!("{path}[]"), out);
    } else {
        out.push(path.to_owned());
    }
}

fn leaves() -> Vec<Leaf> {
    served()
        .into_iter()
        .flat_map(|((crd, version), paths)| {
            paths.into_iter().map(move |path| Leaf {
                crd: crd.clone(),
                version: version.clone(),
                path,
            })
        })
        .collect()
}

/// Whether `source` defines `name` as a test: `fn name(` under a
/// `#[test]`-like attribute (`#[test]`, `#[tokio::test(...)]`), with only
/// attributes and doc comments between them.
fn defines_test(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    let signature = format!("fn {name}(");
    lines.iter().enumerate().any(|(i, line)| {
        line.contains(&signature)
            && lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim())
                .take_while(|l| l.starts_with("#[") || l.starts_with("//") || l.is_empty())
                .any(|l| l.starts_with("#[") && l.contains("test"))
    })
}

#[test]
fn every_served_spec_leaf_has_exactly_one_row() {
    let rows = rows();
    let leaves = leaves();
    assert!(
        leaves.iter().any(|l| l.path == "spec.tls.clientAuth"),
        "the walk found no spec.tls.clientAuth: {leaves:?}"
    );
    let mut missing = Vec::new();
    let mut twice = Vec::new();
    for leaf in &leaves {
        let covering: Vec<String> = rows
            .iter()
            .filter(|r| r.covers(leaf))
            .map(Row::name)
            .collect();
        match covering.len() {
            0 => missing.push(format!("{} {} {}", leaf.crd, leaf.version, leaf.path)),
            1 => {}
            _ => twice.push(format!(
                "{} {} {}: {covering:?}",
                leaf.crd, leaf.version, leaf.path
            )),
        }
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{} spec fields have no row in {ORACLES} (add one: what proves the field took effect, and the test that observes it):\n  {}",
            missing.len(),
            missing.join("\n  ")
        ));
    }
    if !twice.is_empty() {
        problems.push(format!(
            "{} spec fields have more than one row:\n  {}",
            twice.len(),
            twice.join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_row_covers_a_field_and_names_a_test_of_its_file() {
    let rows = rows();
    let leaves = leaves();
    let versions: BTreeMap<&str, Vec<&str>> =
        leaves.iter().fold(BTreeMap::new(), |mut out, leaf| {
            let list = out.entry(leaf.crd.as_str()).or_default();
            if !list.contains(&leaf.version.as_str()) {
                list.push(&leaf.version);
            }
            out
        });
    let mut problems = Vec::new();
    let mut sources: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for row in &rows {
        if let Versions::All(all) = &row.versions
            && all != "all"
        {
            problems.push(format!(
                "{}: versions is a list or `all`, not {all:?}",
                row.name()
            ));
        }
        let Some(served) = versions.get(row.crd.as_str()) else {
            problems.push(format!("{}: no served CRD of that kind", row.name()));
            continue;
        };
        let wanted: Vec<&str> = match &row.versions {
            Versions::All(_) => served.clone(),
            Versions::List(list) => list.iter().map(String::as_str).collect(),
        };
        for version in wanted {
            let covers_one = leaves.iter().any(|l| l.version == version && row.covers(l));
            if !covers_one {
                problems.push(format!(
                    "{}: covers no spec field of {version} (stale: renamed, removed or not served?)",
                    row.name()
                ));
            }
        }
        if row.oracle.trim().is_empty() {
            problems.push(format!("{}: no oracle", row.name()));
        }
        let source = sources
            .entry(row.file.as_str())
            .or_insert_with(|| std::fs::read_to_string(root().join(&row.file)).ok());
        match source {
            None => problems.push(format!("{}: no file {}", row.name(), row.file)),
            Some(text) if !defines_test(text, &row.test) => problems.push(format!(
                "{}: {} has no test fn {}",
                row.name(),
                row.file,
                row.test
            )),
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{ORACLES}:\n  {}",
        problems.join("\n  ")
    );
}

/// `text` in a table cell.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// `docs/field-table.md` from the served leaves and the rows.
fn render(served: &BTreeMap<(String, String), Vec<String>>, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- Generated from {CRDS_DIR}/*.yaml and {ORACLES} by tests/docs_catalog/field_table.rs: do not edit. Regenerate with `{REGENERATE}`. -->\n"
    );
    out.push_str("# Spec fields and what proves each took effect\n\n");
    let _ = writeln!(
        out,
        "For every field under `spec` of every served version of every CRD, what is observed when it takes effect and the test that observes it. The rows are hand-written in [`{ORACLES}`](field-oracles.yaml); this file is generated from them and from the chart's CRDs (`{REGENERATE}`), and `cargo test --test components -- docs_catalog::field_table` fails on a field without a row, a row without a field, or a test that does not exist ([crd-reference.md](crd-reference.md#field-oracles)).\n"
    );
    out.push_str("Kinds: **server**, seen on the Valkey servers or Sentinels; **object**, in an object the operator writes; **behaviour**, in what the operator does; **refused**, the field is refused in the status with its reason. A Kubernetes type passed through verbatim (`spec.affinity`, …) is one row for every field under it (`.*`), and its test compares the whole object. A test is `file::function`.\n\n");
    out.push_str("| CRD | version | fields | rows | without a row |\n|---|---|---|---|---|\n");
    for ((crd, version), paths) in served {
        let leaves: Vec<Leaf> = paths
            .iter()
            .map(|p| Leaf {
                crd: crd.clone(),
                version: version.clone(),
                path: p.clone(),
            })
            .collect();
        let used = rows
            .iter()
            .filter(|r| leaves.iter().any(|l| r.covers(l)))
            .count();
        let bare = leaves
            .iter()
            .filter(|l| !rows.iter().any(|r| r.covers(l)))
            .count();
        let _ = writeln!(
            out,
            "| {crd} | {version} | {} | {used} | {bare} |",
            leaves.len()
        );
    }
    for ((crd, version), paths) in served {
        let _ = writeln!(out, "\n## {crd} {version}\n");
        out.push_str("| field | kind | oracle | test |\n|---|---|---|---|\n");
        let mut shown: Vec<usize> = Vec::new();
        for path in paths {
            let leaf = Leaf {
                crd: crd.clone(),
                version: version.clone(),
                path: path.clone(),
            };
            let Some((index, row)) = rows.iter().enumerate().find(|(_, r)| r.covers(&leaf)) else {
                let _ = writeln!(out, "| `{path}` | — | **no row in {ORACLES}** | — |");
                continue;
            };
            if shown.contains(&index) {
                continue;
            }
            shown.push(index);
            let field = if row.subtree {
                let under = paths
                    .iter()
                    .filter(|p| {
                        row.covers(&Leaf {
                            crd: crd.clone(),
                            version: version.clone(),
                            path: (*p).clone(),
                        })
                    })
                    .count();
                format!("`{}.*` ({under} fields)", row.path)
            } else {
                format!("`{}`", row.path)
            };
            let _ = writeln!(
                out,
                "| {field} | {} | {} | `{}` |",
                row.kind.as_str(),
                cell(&row.oracle),
                row.test_ref()
            );
        }
    }
    out
}

#[test]
fn the_field_table_is_rendered_from_the_crds_and_the_rows() {
    let rendered = render(&served(), &rows());
    let path = root().join(TABLE);
    if std::env::var_os(UPDATE_ENV).is_some_and(|v| v == "1") {
        std::fs::write(&path, rendered.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{TABLE} is not what {ORACLES} and the CRDs give: run `{REGENERATE}` ({UPDATE_ENV}=1)"
    );
}
