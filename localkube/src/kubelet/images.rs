//! Images and commands to local executables: which images a pod may name,
//! each image's default entrypoint, which command names resolve to which
//! host binary, and which of them an image lacks. The mapped commands are
//! linked into `<state>/bin`, which heads every container's `PATH`, so
//! `sh -c 'valkey-cli ...'` works inside a pod as it does in the image.
//!
//! An image that lacks commands (Redis has no `valkey-server`) gets a
//! directory of links of its own, without them, and a `PATH` of that and
//! the system directories only: the bin path may hold what it lacks, and a
//! script that looks for `valkey-server` must not find it in a Redis pod.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::KubeletConfig;

/// One image pattern and its default entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRule {
    /// The image reference; a trailing `*` matches any suffix.
    pub pattern: String,
    /// The command run when a container has none.
    pub entrypoint: Vec<String>,
    /// Commands of the table the image does not have (Redis images have
    /// no `valkey-*`): not linked for its containers, and a container
    /// naming one fails as a real runtime would.
    pub lacks: Vec<String>,
}

/// The configurable image table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTable {
    /// Images a pod may use, first match wins.
    pub images: Vec<ImageRule>,
    /// Command name (as a container names it) to the host binary name
    /// looked up on the bin path; `valkey-sentinel` is a link to
    /// `valkey-server`, which switches to Sentinel mode by its argv[0].
    pub commands: BTreeMap<String, String>,
}

impl Default for ImageTable {
    fn default() -> Self {
        let rule = |p: &str, e: &str| ImageRule {
            pattern: p.to_owned(),
            entrypoint: vec![e.to_owned()],
            lacks: Vec::new(),
        };
        let redis = |p: &str| ImageRule {
            lacks: ["valkey-server", "valkey-sentinel", "valkey-cli"]
                .map(str::to_owned)
                .to_vec(),
            ..rule(p, "redis-server")
        };
        let mut commands = BTreeMap::new();
        for (name, bin) in [
            ("valkey-server", "valkey-server"),
            ("valkey-sentinel", "valkey-server"),
            ("valkey-cli", "redis-cli"),
            ("redis-cli", "redis-cli"),
            ("redis-server", "redis-server"),
            ("redis-sentinel", "redis-server"),
            ("redis-benchmark", "redis-benchmark"),
            ("sh", "sh"),
            ("bash", "bash"),
            ("sleep", "sleep"),
            ("cat", "cat"),
            ("true", "true"),
            ("false", "false"),
            ("echo", "echo"),
        ] {
            commands.insert(name.to_owned(), bin.to_owned());
        }
        Self {
            images: vec![
                rule("valkey/valkey:*", "valkey-server"),
                rule("docker.io/valkey/valkey:*", "valkey-server"),
                redis("redis:*"),
                redis("docker.io/library/redis:*"),
                rule("busybox*", "sh"),
            ],
            commands,
        }
    }
}

impl ImageTable {
    /// The rule of `image`, if mapped.
    pub fn image(&self, image: &str) -> Option<&ImageRule> {
        self.images
            .iter()
            .find(|r| match r.pattern.strip_suffix('*') {
                Some(prefix) => image.starts_with(prefix),
                None => image == r.pattern,
            })
    }

    /// Whether `command` (a container's command[0]) can run: a mapped
    /// name, or an absolute path to a host shell.
    pub fn command_known(&self, command: &str) -> bool {
        let base = command.rsplit('/').next().unwrap_or(command);
        self.commands.contains_key(base)
    }
}

/// The directory of command links for containers of `image`, under the
/// kubelet's `bin_dir`: `bin_dir` itself, or for an image that lacks
/// commands a subdirectory without them.
pub(crate) fn image_bin_dir(table: &ImageTable, bin_dir: &Path, image: &str) -> PathBuf {
    match table.image(image) {
        Some(rule) if !rule.lacks.is_empty() => bin_dir.join(lacking_dir_name(rule)),
        _ => bin_dir.to_path_buf(),
    }
}

/// Whether containers of `image` may have the bin path on their `PATH`:
/// not when the image lacks commands, which the bin path may hold.
pub(crate) fn sees_bin_path(table: &ImageTable, image: &str) -> bool {
    table.image(image).is_none_or(|r| r.lacks.is_empty())
}

/// `without-<lacked commands>`: one directory per distinct set.
fn lacking_dir_name(rule: &ImageRule) -> String {
    let mut lacks = rule.lacks.clone();
    lacks.sort();
    lacks.dedup();
    format!("without-{}", lacks.join(","))
}

/// The link a probe's or hook's `command` runs as, in `dir` (the
/// container's [`image_bin_dir`], which has no link for what the image
/// lacks); `None` leaves the command to the container's `PATH`.
pub(crate) fn resolve_in(table: &ImageTable, dir: &Path, command: &str) -> Option<PathBuf> {
    let base = command.rsplit('/').next().unwrap_or(command);
    let link = dir.join(base);
    (table.command_known(base) && link.exists()).then_some(link)
}

/// Finds `bin` on the bin path, then `PATH`.
fn find(config: &KubeletConfig, bin: &str) -> Option<PathBuf> {
    let path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    config
        .bin_path
        .iter()
        .chain(path.iter())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")].iter())
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Links every mapped command into `bin_dir` (replacing old links), and
/// for each image that lacks commands every other one into its own
/// directory (see [`image_bin_dir`]).
pub(crate) fn link_commands(config: &KubeletConfig, bin_dir: &Path) -> std::io::Result<()> {
    link_into(config, bin_dir, &[])?;
    for rule in config.images.images.iter().filter(|r| !r.lacks.is_empty()) {
        link_into(config, &bin_dir.join(lacking_dir_name(rule)), &rule.lacks)?;
        for lacked in &rule.lacks {
            // The system directories stay on such an image's PATH.
            let seen = SYSTEM_PATH
                .iter()
                .map(|d| Path::new(d).join(lacked))
                .find(|p| p.is_file());
            if let Some(seen) = seen {
                tracing::warn!(image = %rule.pattern, command = %lacked, path = %seen.display(),
                    "kubelet: an image lacks a command the host has in a system directory; its containers will find it");
            }
        }
    }
    Ok(())
}

/// The system directories at the end of every container's `PATH`.
pub(crate) const SYSTEM_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

fn link_into(config: &KubeletConfig, dir: &Path, except: &[String]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bin) in &config.images.commands {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        if except.contains(name) {
            continue;
        }
        if let Some(target) = find(config, bin) {
            std::os::unix::fs::symlink(&target, &link)?;
        } else {
            tracing::warn!(command = %name, binary = %bin, "kubelet: no executable for command");
        }
    }
    Ok(())
}

/// The argv a container runs, or the `ErrImagePull` message.
pub(crate) fn resolve_argv(
    table: &ImageTable,
    bin_dir: &Path,
    image: &str,
    command: &[String],
    args: &[String],
) -> Result<Vec<String>, String> {
    let rule = table.image(image).ok_or_else(|| {
        format!("Failed to pull image \"{image}\": image not in the localkube image table")
    })?;
    let mut argv: Vec<String> = if command.is_empty() {
        rule.entrypoint.clone()
    } else {
        command.to_vec()
    };
    argv.extend(args.iter().cloned());
    let Some(first) = argv.first_mut() else {
        return Err(format!("image \"{image}\" has no entrypoint"));
    };
    let base = first.rsplit('/').next().unwrap_or(first).to_owned();
    if !table.command_known(first) {
        return Err(format!(
            "Failed to pull image \"{image}\": command \"{first}\" is not mapped to a local executable"
        ));
    }
    if rule.lacks.contains(&base) {
        return Err(format!(
            "exec: \"{first}\": executable file not found in $PATH (image \"{image}\" has no {base})"
        ));
    }
    let link = image_bin_dir(table, bin_dir, image).join(&base);
    if link.exists() {
        *first = link.to_string_lossy().into_owned();
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn images_match_by_prefix_and_unknown_ones_are_refused() {
        let t = ImageTable::default();
        let dir = Path::new("/nonexistent");
        assert_eq!(
            resolve_argv(
                &t,
                dir,
                "valkey/valkey:9.1",
                &[],
                &["--port".into(), "1".into()]
            )
            .unwrap(),
            vec!["valkey-server", "--port", "1"]
        );
        let e = resolve_argv(&t, dir, "nginx:1", &[], &[]).unwrap_err();
        assert!(e.contains("nginx:1"), "{e}");
        let e = resolve_argv(&t, dir, "valkey/valkey:9", &["nginx".into()], &[]).unwrap_err();
        assert!(e.contains("nginx"), "{e}");
    }

    #[test]
    fn a_redis_image_has_no_valkey_commands() {
        let t = ImageTable::default();
        let dir = Path::new("/nonexistent");
        let e = resolve_argv(&t, dir, "redis:7.0", &["valkey-server".into()], &[]).unwrap_err();
        assert!(e.contains("has no valkey-server"), "{e}");
        assert_eq!(
            resolve_argv(&t, dir, "redis:7.0", &[], &[]).unwrap(),
            vec!["redis-server"]
        );
        assert_eq!(image_bin_dir(&t, dir, "valkey/valkey:9.1"), dir);
        let own = image_bin_dir(&t, dir, "redis:7.0");
        assert_eq!(
            own,
            dir.join("without-valkey-cli,valkey-sentinel,valkey-server")
        );
        assert!(sees_bin_path(&t, "valkey/valkey:9.1") && !sees_bin_path(&t, "redis:7.0"));
    }
}
