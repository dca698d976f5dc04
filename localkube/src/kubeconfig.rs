//! The kubeconfig that points kubectl and kube-rs at a running localkube.

use std::path::Path;

/// A kubeconfig for `url` with the bearer `token`, if any.
pub fn render(url: &str, token: Option<&str>) -> String {
    let user = match token {
        Some(t) => format!("    token: {}\n", serde_json::Value::from(t)),
        None => "    {}\n".to_owned(),
    };
    let user_block = if token.is_some() {
        format!("  user:\n{user}")
    } else {
        "  user: {}\n".to_owned()
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: localkube\n  cluster:\n    server: {url}\nusers:\n- name: localkube\n{user_block}contexts:\n- name: localkube\n  context:\n    cluster: localkube\n    user: localkube\n    namespace: default\ncurrent-context: localkube\npreferences: {{}}\n"
    )
}

/// Writes `yaml` to `path`, readable by the owner only (it may hold the
/// token).
///
/// # Errors
/// The I/O error.
pub fn write(path: &Path, yaml: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, yaml)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
