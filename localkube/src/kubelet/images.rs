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
//!
//! An image that runs other binaries for some commands (`valkey/valkey:8.0`
//! runs `valkey-server-8.0`, a build with TLS, for `valkey-server`) gets a
//! directory of its own too, where those commands link to its binaries, and
//! the same `PATH` without the bin path: that holds the default
//! `valkey-server`, which must never stand in for a missing override.

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
    /// Commands of the table this image runs with other host binaries
    /// (command name to binary name, looked up like the table's): linked
    /// so in its containers' own directory. A name the table does not map
    /// is ignored, as a container could not run it anyway.
    pub binaries: BTreeMap<String, String>,
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
            binaries: BTreeMap::new(),
        };
        let redis = |p: &str| ImageRule {
            lacks: ["valkey-server", "valkey-sentinel", "valkey-cli"]
                .map(str::to_owned)
                .to_vec(),
            ..rule(p, "redis-server")
        };
        // The exporter's image has the exporter and none of the servers.
        let exporter = |p: &str| ImageRule {
            lacks: ["valkey-server", "valkey-sentinel", "valkey-cli"]
                .map(str::to_owned)
                .to_vec(),
            ..rule(p, "redis_exporter")
        };
        // Valkey 8.0 with TLS (Debian's build; `make setup` links it):
        // `valkey-sentinel` is the same binary, in Sentinel mode by argv[0].
        let valkey_8_0 = |p: &str| ImageRule {
            binaries: [
                ("valkey-server", "valkey-server-8.0"),
                ("valkey-sentinel", "valkey-server-8.0"),
                ("valkey-cli", "valkey-cli-8.0"),
            ]
            .map(|(name, bin)| (name.to_owned(), bin.to_owned()))
            .into(),
            ..rule(p, "valkey-server")
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
            ("redis_exporter", "prometheus-redis-exporter"),
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
                // Before `valkey/valkey:*`: the first match wins.
                valkey_8_0("valkey/valkey:8.0*"),
                valkey_8_0("docker.io/valkey/valkey:8.0*"),
                rule("valkey/valkey:*", "valkey-server"),
                rule("docker.io/valkey/valkey:*", "valkey-server"),
                redis("redis:*"),
                redis("docker.io/library/redis:*"),
                rule("busybox*", "sh"),
                // oliver006's redis_exporter (its entrypoint): Debian's
                // build, `prometheus-redis-exporter`, which `make setup`
                // installs.
                exporter("oliver006/redis_exporter:*"),
                exporter("docker.io/oliver006/redis_exporter:*"),
                exporter("quay.io/oliver006/redis_exporter:*"),
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
/// commands or runs other binaries for some a subdirectory of its own.
pub(crate) fn image_bin_dir(table: &ImageTable, bin_dir: &Path, image: &str) -> PathBuf {
    match table.image(image).and_then(own_dir_name) {
        Some(name) => bin_dir.join(name),
        None => bin_dir.to_path_buf(),
    }
}

/// Whether containers of `image` may have the bin path on their `PATH`:
/// not when the image has a directory of its own, since the bin path may
/// hold what it lacks or the default binary of a command it overrides.
pub(crate) fn sees_bin_path(table: &ImageTable, image: &str) -> bool {
    table.image(image).is_none_or(|r| own_dir_name(r).is_none())
}

/// The name of `rule`'s own link directory, `None` when its containers
/// share the bin directory: `without-<lacked commands>`, then
/// `with-<command>=<binary>,...` for the overrides; one directory per
/// distinct pair of sets, the same across runs.
fn own_dir_name(rule: &ImageRule) -> Option<String> {
    let mut lacks = rule.lacks.clone();
    lacks.sort();
    lacks.dedup();
    let parts: Vec<String> = [
        (!lacks.is_empty()).then(|| format!("without-{}", lacks.join(","))),
        (!rule.binaries.is_empty()).then(|| {
            let pairs: Vec<String> = rule
                .binaries
                .iter()
                .map(|(name, bin)| format!("{name}={bin}"))
                .collect();
            format!("with-{}", pairs.join(","))
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join("+"))
}

/// The link a probe's or hook's `command` runs as, in `dir` (the
/// container's [`image_bin_dir`], which has no link for what the image
/// lacks and links its overrides); `None` leaves the command to the
/// container's `PATH`.
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
/// for each image with a directory of its own (see [`image_bin_dir`])
/// every command it has there, to its override binary if it names one.
pub(crate) fn link_commands(config: &KubeletConfig, bin_dir: &Path) -> std::io::Result<()> {
    link_into(config, bin_dir, None)?;
    for rule in &config.images.images {
        let Some(name) = own_dir_name(rule) else {
            continue;
        };
        link_into(config, &bin_dir.join(name), Some(rule))?;
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

/// Links into `dir` every command of the table: for the bin directory
/// itself (`rule` `None`) to the table's binaries; for an image's own
/// directory only those it has, each to its override binary if any.
fn link_into(config: &KubeletConfig, dir: &Path, rule: Option<&ImageRule>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bin) in &config.images.commands {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        if rule.is_some_and(|r| r.lacks.contains(name)) {
            continue;
        }
        let bin = rule.and_then(|r| r.binaries.get(name)).unwrap_or(bin);
        if let Some(target) = find(config, bin) {
            std::os::unix::fs::symlink(&target, &link)?;
        } else {
            // No link: an overridden command then fails in its containers
            // rather than running the default binary (see `resolve_argv`).
            let image = rule.map(|r| r.pattern.as_str()).unwrap_or_default();
            tracing::warn!(image, command = %name, binary = %bin,
                "kubelet: no executable for command");
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
    } else if let Some(bin) = rule.binaries.get(&base) {
        // Its PATH has no bin path, but a system directory may hold a
        // default binary of the same name: never run that instead.
        return Err(format!(
            "exec: \"{first}\": executable file not found in $PATH (image \"{image}\" runs {bin}, \
             which is not on the kubelet's bin path; `make setup` installs it)"
        ));
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

    /// A kubelet config whose bin path is a fresh directory holding empty
    /// stand-ins for `bins`, and the bin directory to link into.
    fn host_with(bins: &[&str]) -> (tempfile::TempDir, KubeletConfig, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host");
        std::fs::create_dir_all(&host).unwrap();
        for bin in bins {
            std::fs::write(host.join(bin), "").unwrap();
        }
        let mut config = KubeletConfig::new(tmp.path().join("state"));
        config.bin_path = vec![host];
        let bin_dir = tmp.path().join("bin");
        (tmp, config, bin_dir)
    }

    #[test]
    fn a_valkey_8_0_image_runs_its_own_binaries_from_its_own_directory() {
        let (tmp, config, bin) = host_with(&[
            "valkey-server",
            "valkey-server-8.0",
            "valkey-cli-8.0",
            "redis-cli",
        ]);
        let host = tmp.path().join("host");
        link_commands(&config, &bin).unwrap();
        let t = &config.images;
        let own = image_bin_dir(t, &bin, "valkey/valkey:8.0.1");
        assert_eq!(
            own,
            bin.join(
                "with-valkey-cli=valkey-cli-8.0,valkey-sentinel=valkey-server-8.0,\
                 valkey-server=valkey-server-8.0"
            )
        );
        assert_eq!(image_bin_dir(t, &bin, "docker.io/valkey/valkey:8.0"), own);
        for (command, target) in [
            ("valkey-server", "valkey-server-8.0"),
            ("valkey-sentinel", "valkey-server-8.0"),
            ("valkey-cli", "valkey-cli-8.0"),
            ("redis-cli", "redis-cli"),
        ] {
            assert_eq!(
                std::fs::read_link(own.join(command)).unwrap(),
                host.join(target),
                "{command}"
            );
        }
        let link = |c: &str| own.join(c).to_string_lossy().into_owned();
        assert_eq!(
            resolve_argv(
                t,
                &bin,
                "valkey/valkey:8.0.1",
                &[],
                &["--port".into(), "1".into()]
            )
            .unwrap(),
            vec![link("valkey-server"), "--port".into(), "1".into()]
        );
        assert_eq!(
            resolve_in(t, &own, "valkey-sentinel"),
            Some(own.join("valkey-sentinel"))
        );
        // The bin path holds the default valkey-server: not on its PATH.
        assert!(!sees_bin_path(t, "valkey/valkey:8.0.1"));
    }

    #[test]
    fn a_valkey_9_1_image_keeps_the_shared_directory() {
        let (tmp, config, bin) = host_with(&["valkey-server", "valkey-server-8.0", "redis-cli"]);
        let host = tmp.path().join("host");
        link_commands(&config, &bin).unwrap();
        let t = &config.images;
        assert_eq!(image_bin_dir(t, &bin, "valkey/valkey:9.1"), bin);
        assert_eq!(image_bin_dir(t, &bin, "valkey/valkey:8.1"), bin);
        assert_eq!(
            std::fs::read_link(bin.join("valkey-server")).unwrap(),
            host.join("valkey-server")
        );
        assert_eq!(
            resolve_argv(t, &bin, "valkey/valkey:9.1", &[], &[]).unwrap(),
            vec![bin.join("valkey-server").to_string_lossy().into_owned()]
        );
        assert!(sees_bin_path(t, "valkey/valkey:9.1"));
    }

    #[test]
    fn a_missing_override_binary_fails_instead_of_running_the_default() {
        let (_tmp, mut config, bin) = host_with(&["valkey-server", "redis-cli"]);
        // A name no host has, whatever the developer's PATH holds.
        for rule in &mut config.images.images {
            for target in rule.binaries.values_mut() {
                *target = "valkey-server-nowhere".to_owned();
            }
        }
        link_commands(&config, &bin).unwrap();
        let e = resolve_argv(&config.images, &bin, "valkey/valkey:8.0", &[], &[]).unwrap_err();
        assert!(e.contains("valkey-server-nowhere"), "{e}");
    }
}
