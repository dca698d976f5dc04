//! The stand-in for cluster DNS: Service names as a pod looks them up.
//!
//! An application finds its Valkey by the name the operator's connection
//! Secret gives (`demo.shop.svc.cluster.local`), which on a real cluster
//! CoreDNS answers with the Service's ClusterIP. Pods here run in the
//! host's network namespace with the host's resolver, which knows no such
//! name. So the kubelet keeps `<state dir>/hosts`, one line per Service
//! with a ClusterIP (`<ip> <name>.<ns>.svc.cluster.local <name>.<ns>.svc`),
//! rewritten (whole, by rename) whenever a Service changes, and the pod
//! network shim (`localkube/shim/podnet.c`) answers a pod's `getaddrinfo`
//! of a name under `.svc` or `.svc.cluster.local` from it, reading it at
//! each lookup, so a Service made after the pod started is found as it
//! would be by DNS.
//!
//! Left out: headless Services and the pod names under them
//! (`demo-0.demo-headless.shop.svc.cluster.local`), the search path of
//! the pod's namespace (a short name like `demo`), and every record type
//! but A. Every other name goes to the host's resolver as before.
//!
//! Must not: write anything but that file, or resolve a Service of
//! another API server (the file lists this kubelet's API server's only).

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Notify;

use super::Shared;

/// The file's name in the kubelet's state dir (the shim finds it there
/// through the pods' `LOCALKUBE_KUBELET`).
pub(crate) const HOSTS_FILE: &str = "hosts";

/// Keeps the hosts file current with the Services until the kubelet
/// shuts down.
pub(crate) async fn keep_hosts_file(shared: Arc<Shared>) {
    let changed = Arc::new(Notify::new());
    let mut stop = shared.shutdown.clone();
    let follow = tokio::spawn(crate::node_api::follow(
        shared.api.clone(),
        "v1",
        "services",
        changed.clone(),
        stop.clone(),
    ));
    let path = shared.config.state_dir.join(HOSTS_FILE);
    let mut written: Option<String> = None;
    loop {
        tokio::select! {
            () = changed.notified() => {}
            _ = stop.changed() => break,
        }
        let services = match shared.api.list("v1", "services", None, None).await {
            Ok(services) => services,
            Err(e) => {
                // The next change (or the watch starting again) retries.
                tracing::warn!(error = %e, "kubelet: cannot list Services for the hosts file");
                continue;
            }
        };
        let text = render_hosts(&services);
        if written.as_deref() == Some(text.as_str()) {
            continue;
        }
        match write_whole(&path, &text) {
            Ok(()) => written = Some(text),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "kubelet: cannot write the hosts file");
            }
        }
    }
    follow.abort();
    let _ = follow.await;
}

/// The hosts file of `services`: one line per Service with an IPv4
/// ClusterIP that is not being deleted, sorted, so that the same
/// Services always give the same text.
pub(crate) fn render_hosts(services: &[Value]) -> String {
    let mut lines: Vec<String> = services
        .iter()
        .filter(|svc| !crate::obj::is_deleting(svc))
        .filter_map(|svc| {
            let ip = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())?;
            let (ns, name) = (crate::obj::namespace(svc), crate::obj::name(svc));
            (!ns.is_empty() && !name.is_empty())
                .then(|| format!("{ip} {name}.{ns}.svc.cluster.local {name}.{ns}.svc"))
        })
        .collect();
    lines.sort();
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Replaces `path` by `text` at once: a temporary file renamed over it, so
/// a pod's lookup reads either the old file or the new one, never half.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(ns: &str, name: &str, ip: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}, "spec": {"clusterIP": ip}})
    }

    #[test]
    fn each_service_with_a_cluster_ip_is_named_in_full_and_under_svc() {
        let text = render_hosts(&[
            service("shop", "demo", "127.5.200.7"),
            service("default", "kubernetes", "127.5.200.1"),
        ]);
        assert_eq!(
            text,
            "127.5.200.1 kubernetes.default.svc.cluster.local kubernetes.default.svc\n\
             127.5.200.7 demo.shop.svc.cluster.local demo.shop.svc\n"
        );
    }

    #[test]
    fn headless_and_deleting_services_are_left_out() {
        let deleting = json!({
            "metadata": {"namespace": "shop", "name": "old", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"clusterIP": "127.5.200.9"},
        });
        let text = render_hosts(&[
            service("shop", "demo-headless", "None"),
            json!({"metadata": {"namespace": "shop", "name": "pending"}, "spec": {}}),
            deleting,
        ]);
        assert_eq!(text, "\n");
    }
}
