//! Images and commands to local executables: which images a pod may name,
//! each image's default entrypoint, and which command names resolve to
//! which host binary. The mapped commands are linked into `<state>/bin`,
//! which heads every container's `PATH`, so `sh -c 'valkey-cli ...'`
//! works inside a pod as it does in the image.

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
                rule("redis:*", "redis-server"),
                rule("docker.io/library/redis:*", "redis-server"),
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

/// Links every mapped command into `bin_dir` (replacing old links).
pub(crate) fn link_commands(config: &KubeletConfig, bin_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(bin_dir)?;
    for (name, bin) in &config.images.commands {
        let link = bin_dir.join(name);
        let _ = std::fs::remove_file(&link);
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
    let link = bin_dir.join(&base);
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
}
