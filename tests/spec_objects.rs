//! Objects the operator crate builds from a ValkeyCluster's spec, outside
//! the builders of `logbook-core` (whose tests sit beside them): the
//! cert-manager `Certificate` a `tls.issuerRef` asks for, and the journal's
//! ConfigMaps, owned by the cluster unless `journal.retainOnDelete`. Each
//! spec is written as a user writes it and read the way the reconcile
//! reads it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use logbook::journal_store::JournalBackend;
use logbook::operator::JournalFactory;
use logbook::resources::ClusterMeta;
use logbook_crds::{CertSource, ValkeyClusterSpec};
use logbook_journal::conformance::sample_new_event;
use logbook_journal::{StreamId, StreamWriter};
use logbook_localkube::{Config, LocalKube};
use serde_json::json;

fn meta(name: &str) -> ClusterMeta {
    ClusterMeta {
        name: name.to_owned(),
        namespace: "default".to_owned(),
        uid: format!("{name}-uid"),
    }
}

/// `tls.issuerRef` is the `issuerRef` of the Certificate the operator asks
/// cert-manager for (name, kind and group as given; `Issuer` and
/// `cert-manager.io` when left out), into the Secret the pods mount.
#[test]
fn the_issuer_ref_is_the_certificates_issuer() {
    for (given, want) in [
        (
            json!({"name": "letsencrypt", "kind": "ClusterIssuer", "group": "certs.example.com"}),
            json!({"name": "letsencrypt", "kind": "ClusterIssuer", "group": "certs.example.com"}),
        ),
        (
            json!({"name": "ca"}),
            json!({"name": "ca", "kind": "Issuer", "group": "cert-manager.io"}),
        ),
    ] {
        let spec: ValkeyClusterSpec =
            serde_json::from_value(json!({"tls": {"enabled": true, "issuerRef": given}})).unwrap();
        let Some(CertSource::CertManager(issuer)) = spec.tls.source() else {
            panic!("{:?} is not cert-manager's", spec.tls.source());
        };
        let secret = spec.tls.certificate_secret("cache").unwrap();
        assert_eq!(secret, "cache-tls");
        let certificate =
            logbook::tls::build_certificate(&meta("cache"), &spec, &issuer, &secret, &[]);
        assert_eq!(certificate.data["spec"]["issuerRef"], want);
        assert_eq!(certificate.data["spec"]["secretName"], "cache-tls");
    }
}

/// `journal.retainOnDelete: false` makes the journal's ConfigMaps owned by
/// the cluster (Kubernetes' garbage collector deletes them with it);
/// `true`, the default, leaves them unowned, so they outlive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_is_owned_by_its_cluster_unless_retained_on_delete() {
    let server = LocalKube::start(Config::default()).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let journals = JournalFactory {
        backend: JournalBackend::ConfigMap,
        client: client.clone(),
        sled: None,
        group_commit: Duration::from_secs(1),
    };
    for (name, spec) in [
        ("kept", json!({})),
        ("kept-said", json!({"journal": {"retainOnDelete": true}})),
        ("owned", json!({"journal": {"retainOnDelete": false}})),
    ] {
        let spec: ValkeyClusterSpec = serde_json::from_value(spec).unwrap();
        let meta = meta(name);
        let store = journals
            .store_for(&meta, spec.journal.retain_on_delete)
            .unwrap();
        let mut writer = StreamWriter::open(store, StreamId::new(&meta.uid).unwrap(), 1)
            .await
            .unwrap();
        writer.append(vec![sample_new_event(0)]).await.unwrap();
        let maps = Api::<ConfigMap>::namespaced(client.clone(), "default")
            .list(&ListParams::default().labels(&format!("valkey.logbook.dev/cluster={name}")))
            .await
            .unwrap()
            .items;
        assert!(!maps.is_empty(), "{name}: no journal ConfigMap");
        for map in maps {
            let owners: Vec<String> = map
                .metadata
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.uid)
                .collect();
            let want = if name == "owned" {
                vec![meta.uid.clone()]
            } else {
                Vec::new()
            };
            assert_eq!(owners, want, "{name}");
        }
    }
}
