//! The metrics exporter (`spec.metrics`): oliver006's `redis_exporter` as
//! a sidecar of every data pod and every Sentinel, and the headless
//! Service `<name>-metrics` a ServiceMonitor or a scrape config selects.
//!
//! The exporter is what every Redis and Valkey chart runs, so dashboards
//! and alerts written for it work unchanged. What it may do on the server
//! is the internal `logbook-metrics` user's (server facts only: no key, no
//! setting, see [`super::internal_users`]); its password reaches it
//! through the environment (`REDIS_PASSWORD`, which the exporter reads as
//! the default of `--redis.password`), never on its command line.
//!
//! The exporter dials its own pod's address (`$(POD_IP)`): on Kubernetes
//! the containers of a pod share one network namespace, so that
//! connection never leaves the pod. Over TLS it presents the cluster's
//! certificate (a server asking for client certificates gets one) and
//! skips verifying the server's name: the certificate names the cluster's
//! DNS names, never a pod's IP, and the peer is its own pod, which nobody
//! on the pod network can stand in for. It reads no setting
//! (`--config-command=-`: `CONFIG GET` would show `masterauth`) and does
//! not name its connection (`CLIENT SETNAME`, which the user may not run).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, ResourceRequirements, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use logbook_crds::ValkeyClusterSpec;

use super::internal_users::{METRICS_USER, internal_env};
use super::labels::{CLUSTER, COMPONENT, COMPONENT_METRICS, INSTANCE};
use super::statefulset::{field_env, tcp_served, tls_mount};
use super::{ClusterMeta, POD_IP_ENV, TLS_DIR};

/// The exporter container's name.
pub const EXPORTER_CONTAINER_NAME: &str = "metrics";
/// The exporter's port (redis_exporter's own default).
pub const EXPORTER_PORT: u16 = 9121;
/// The exporter port's name, on the containers and the metrics Service.
pub const EXPORTER_PORT_NAME: &str = "metrics";
/// The environment variable the exporter reads its user from.
const USER_ENV: &str = "REDIS_USER";
/// The environment variable the exporter reads its password from.
const PASSWORD_ENV: &str = "REDIS_PASSWORD";

/// `<name>-metrics`, the metrics Service.
pub fn metrics_service_name(cluster: &str) -> String {
    format!("{cluster}-metrics")
}

/// The exporter sidecar for a server on `port` of the pod (6379 for a data
/// node, 26379 for a Sentinel), or `None` when `spec.metrics.enabled` is
/// off.
pub fn exporter_container(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    port: u16,
) -> Option<Container> {
    if !spec.metrics.enabled {
        return None;
    }
    let tls = spec.tls.enabled;
    let scheme = if tls { "rediss://" } else { "" };
    let mut args = vec![
        format!("--redis.addr={scheme}$({POD_IP_ENV}):{port}"),
        format!("--web.listen-address=$({POD_IP_ENV}):{EXPORTER_PORT}"),
        "--config-command=-".to_owned(),
        "--set-client-name=false".to_owned(),
    ];
    if tls {
        args.push("--skip-tls-verification".to_owned());
        args.push(format!("--tls-ca-cert-file={TLS_DIR}/ca.crt"));
        args.push(format!("--tls-client-cert-file={TLS_DIR}/tls.crt"));
        args.push(format!("--tls-client-key-file={TLS_DIR}/tls.key"));
    }
    let mut env = vec![
        field_env(POD_IP_ENV, "status.podIP"),
        EnvVar {
            name: USER_ENV.to_owned(),
            value: Some(METRICS_USER.to_owned()),
            value_from: None,
        },
    ];
    // The metrics user's password, under the exporter's own name for it.
    env.extend(
        internal_env(meta, &[METRICS_USER])
            .into_iter()
            .map(|mut e| {
                e.name = PASSWORD_ENV.to_owned();
                e
            }),
    );
    Some(Container {
        name: EXPORTER_CONTAINER_NAME.to_owned(),
        image: Some(spec.metrics.effective_image().to_owned()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_owned()),
        args: Some(args),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("10m".to_owned())),
                ("memory".to_owned(), Quantity("16Mi".to_owned())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity("64Mi".to_owned()),
            )])),
            ..ResourceRequirements::default()
        }),
        volume_mounts: tls.then(|| vec![tls_mount()]),
        security_context: spec.security_context.clone(),
        ..tcp_served(EXPORTER_PORT_NAME, EXPORTER_PORT, 5)
    })
}

/// The headless Service `<name>-metrics` on every exporter of the cluster
/// (data pods and Sentinels: the selector is the labels both carry), or
/// `None` when the exporter is off.
pub fn build_metrics_service(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Option<Service> {
    if !spec.metrics.enabled {
        return None;
    }
    let mut metadata = meta.object_meta(metrics_service_name(&meta.name), spec);
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(COMPONENT.to_owned(), COMPONENT_METRICS.to_owned());
    Some(Service {
        metadata,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(BTreeMap::from([
                (INSTANCE.to_owned(), meta.name.clone()),
                (CLUSTER.to_owned(), meta.name.clone()),
            ])),
            ports: Some(vec![ServicePort {
                name: Some(EXPORTER_PORT_NAME.to_owned()),
                port: i32::from(EXPORTER_PORT),
                target_port: Some(IntOrString::String(EXPORTER_PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::test_support::meta;
    use super::*;

    fn enabled() -> ValkeyClusterSpec {
        let mut spec = ValkeyClusterSpec::default();
        spec.metrics.enabled = true;
        spec
    }

    #[test]
    fn no_exporter_and_no_service_unless_enabled() {
        let spec = ValkeyClusterSpec::default();
        assert!(exporter_container(&meta(), &spec, 6379).is_none());
        assert!(build_metrics_service(&meta(), &spec).is_none());
    }

    #[test]
    fn the_exporter_dials_its_own_pod_as_the_metrics_user_with_no_password_on_argv() {
        let mut spec = enabled();
        spec.metrics.image = Some("registry.local/redis_exporter:v1.67.0".to_owned());
        let c = exporter_container(&meta(), &spec, 26379).unwrap();
        assert_eq!(c.name, "metrics");
        assert_eq!(
            c.image.as_deref(),
            Some("registry.local/redis_exporter:v1.67.0")
        );
        assert!(c.command.is_none(), "the image's entrypoint runs it");
        let args = c.args.unwrap();
        assert_eq!(args[0], "--redis.addr=$(POD_IP):26379");
        assert_eq!(args[1], "--web.listen-address=$(POD_IP):9121");
        assert!(args.contains(&"--config-command=-".to_owned()));
        assert!(
            !args
                .iter()
                .any(|a| a.contains("password") || a.contains("tls"))
        );
        let env = c.env.unwrap();
        assert_eq!(env[0].name, "POD_IP");
        assert_eq!(env[1].value.as_deref(), Some("logbook-metrics"));
        let pw = env[2]
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(env[2].name, "REDIS_PASSWORD");
        assert_eq!(
            (pw.name.as_str(), pw.key.as_str()),
            ("cache-internal", "metrics")
        );
        assert_eq!(c.ports.unwrap()[0].container_port, 9121);
        assert!(c.volume_mounts.is_none());
    }

    #[test]
    fn over_tls_the_exporter_presents_the_cluster_certificate() {
        let mut spec = enabled();
        spec.tls.enabled = true;
        let c = exporter_container(&meta(), &spec, 6379).unwrap();
        let args = c.args.unwrap();
        assert_eq!(args[0], "--redis.addr=rediss://$(POD_IP):6379");
        for want in [
            "--tls-client-cert-file=/etc/valkey-tls/tls.crt",
            "--tls-client-key-file=/etc/valkey-tls/tls.key",
            "--tls-ca-cert-file=/etc/valkey-tls/ca.crt",
        ] {
            assert!(args.contains(&want.to_owned()), "{want} in {args:?}");
        }
        assert_eq!(c.volume_mounts.unwrap()[0].mount_path, "/etc/valkey-tls");
        assert_eq!(c.image.as_deref(), Some("oliver006/redis_exporter:v1.45.0"));
    }

    #[test]
    fn the_metrics_service_selects_data_pods_and_sentinels_by_name() {
        let s = build_metrics_service(&meta(), &enabled()).unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("cache-metrics"));
        let spec = s.spec.unwrap();
        let selector = spec.selector.unwrap();
        for labels in [
            super::super::labels::selector("cache"),
            super::super::labels::sentinel_selector("cache"),
        ] {
            assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
        }
        assert_eq!(spec.ports.unwrap()[0].name.as_deref(), Some("metrics"));
    }
}
