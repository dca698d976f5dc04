//! The rules of [`validate`] about authentication, TLS, `config`
//! directives, metrics, the disruption budget, the network policy, the
//! connection Secret, the journal and `paused`.

use super::*;

#[test]
fn auth_password_secret() {
    let mut s = spec(Topology::Replication);
    s.auth.password_secret = Some(SecretKeyRef {
        name: "valkey-pw".into(),
        key: "password".into(),
    });
    assert_valid(&s);
    s.auth.password_secret = Some(SecretKeyRef {
        name: String::new(),
        key: "password".into(),
    });
    assert_only(&s, "spec.auth.passwordSecret.name", FieldErrorKind::Invalid);
    s.auth.password_secret = Some(SecretKeyRef {
        name: "pw".into(),
        key: String::new(),
    });
    assert_only(&s, "spec.auth.passwordSecret.key", FieldErrorKind::Invalid);
    s.auth.password_secret = Some(SecretKeyRef {
        name: "pw".into(),
        key: "a/b".into(),
    });
    assert_only(&s, "spec.auth.passwordSecret.key", FieldErrorKind::Invalid);
}

#[test]
fn auth_disabled_with_password_secret_is_contradictory() {
    let mut s = spec(Topology::Replication);
    s.auth.enabled = false;
    assert_valid(&s);
    s.auth.password_secret = Some(SecretKeyRef {
        name: "pw".into(),
        key: "password".into(),
    });
    assert_only(&s, "spec.auth.passwordSecret", FieldErrorKind::Forbidden);
}

fn issuer() -> IssuerRef {
    IssuerRef {
        name: "ca".into(),
        kind: "ClusterIssuer".into(),
        group: "cert-manager.io".into(),
    }
}

#[test]
fn tls_takes_at_most_one_source() {
    let mut s = spec(Topology::Replication);
    s.tls.enabled = true;
    // Neither: the operator's own CA.
    assert_valid(&s);
    assert_eq!(s.tls.source(), Some(crate::CertSource::Internal));
    assert_eq!(
        s.tls.certificate_secret("demo").as_deref(),
        Some("demo-tls")
    );
    s.tls.issuer_ref = Some(issuer());
    assert_valid(&s);
    s.tls.secret_name = Some("valkey-tls".into());
    assert_only(&s, "spec.tls", FieldErrorKind::Forbidden);
    s.tls.issuer_ref = None;
    assert_valid(&s);
    assert_eq!(
        s.tls.certificate_secret("demo").as_deref(),
        Some("valkey-tls")
    );
    // Both set is refused even while disabled.
    s.tls.enabled = false;
    s.tls.issuer_ref = Some(issuer());
    assert_only(&s, "spec.tls", FieldErrorKind::Forbidden);
}

#[test]
fn tls_fields() {
    let mut s = spec(Topology::Replication);
    s.tls.enabled = true;
    s.tls.issuer_ref = Some(IssuerRef {
        name: String::new(),
        ..issuer()
    });
    assert_only(&s, "spec.tls.issuerRef.name", FieldErrorKind::Required);
    s.tls.issuer_ref = Some(IssuerRef {
        kind: String::new(),
        ..issuer()
    });
    assert_only(&s, "spec.tls.issuerRef.kind", FieldErrorKind::Required);
    s.tls.issuer_ref = Some(IssuerRef {
        group: "Not A Group".into(),
        ..issuer()
    });
    assert_only(&s, "spec.tls.issuerRef.group", FieldErrorKind::Invalid);
    s.tls.issuer_ref = None;
    s.tls.secret_name = Some("TLS".into());
    assert_only(&s, "spec.tls.secretName", FieldErrorKind::Invalid);
}

#[test]
fn config_accepts_ordinary_directives() {
    let mut s = spec(Topology::Replication);
    s.config = map(&[
        ("maxmemory-policy", "allkeys-lru"),
        ("maxmemory", "1gb"),
        ("notify-keyspace-events", "Ex"),
        ("hz", "20"),
        ("appendfsync", "everysec"),
        ("client-output-buffer-limit", "replica 256mb 64mb 60"),
    ]);
    assert_valid(&s);
}

#[test]
fn config_refuses_every_owned_directive() {
    let owned = OWNED_DIRECTIVES
        .iter()
        .chain(PERSISTENCE_DIRECTIVES)
        .copied()
        .chain([
            "tls-port",
            "tls-cert-file",
            "tls-replication",
            "cluster-announce-ip",
            "cluster-announce-hostname",
        ]);
    for directive in owned {
        for key in [directive.to_owned(), directive.to_ascii_uppercase()] {
            let mut s = spec(Topology::Replication);
            s.config = map(&[(&key, "x")]);
            let path = format!("spec.config[{key:?}]");
            assert_only(&s, &path, FieldErrorKind::Forbidden);
            let message = &validate(&s, None).unwrap_err()[0].message;
            assert!(
                message.contains(&format!("{:?}", key.to_ascii_lowercase())),
                "{message}"
            );
        }
    }
}

#[test]
fn config_save_and_appendonly_point_at_persistence() {
    for key in ["save", "appendonly"] {
        let mut s = spec(Topology::Replication);
        s.config = map(&[(key, "")]);
        let errs = validate(&s, None).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].message.contains("spec.storage.persistence"),
            "{}",
            errs[0].message
        );
    }
}

#[test]
fn config_refuses_injection() {
    let mut s = spec(Topology::Replication);
    s.config = map(&[("maxmemory", "1gb\nreplicaof evil 6379")]);
    assert_only(&s, "spec.config[\"maxmemory\"]", FieldErrorKind::Invalid);
    s.config = map(&[("maxmemory", "1gb\r")]);
    assert_only(&s, "spec.config[\"maxmemory\"]", FieldErrorKind::Invalid);
    s.config = map(&[("maxmemory 1gb\nport", "1")]);
    assert_only(
        &s,
        "spec.config[\"maxmemory 1gb\\nport\"]",
        FieldErrorKind::Invalid,
    );
    s.config = map(&[("max memory", "1")]);
    assert_only(&s, "spec.config[\"max memory\"]", FieldErrorKind::Invalid);
    s.config = map(&[("", "1")]);
    assert_only(&s, "spec.config[\"\"]", FieldErrorKind::Required);
    s.config = map(&[("#port", "1")]);
    assert_only(&s, "spec.config[\"#port\"]", FieldErrorKind::Invalid);
}

#[test]
fn config_refuses_case_duplicates() {
    let mut s = spec(Topology::Replication);
    s.config = map(&[("MAXMEMORY", "1gb"), ("maxmemory", "2gb")]);
    assert_only(&s, "spec.config[\"maxmemory\"]", FieldErrorKind::Duplicate);
}

#[test]
fn metrics_service_monitor_requires_enabled() {
    let mut s = spec(Topology::Replication);
    s.metrics.service_monitor = true;
    assert_only(&s, "spec.metrics.serviceMonitor", FieldErrorKind::Invalid);
    s.metrics.enabled = true;
    assert_valid(&s);
}

#[test]
fn pdb_max_unavailable_at_least_one() {
    let mut s = spec(Topology::Replication);
    s.pod_disruption_budget.max_unavailable = 0;
    assert_only(
        &s,
        "spec.podDisruptionBudget.maxUnavailable",
        FieldErrorKind::OutOfRange,
    );
    s.pod_disruption_budget.max_unavailable = 2;
    assert_valid(&s);
}

#[test]
fn network_policy_peers() {
    let mut s = spec(Topology::Replication);
    s.network_policy.enabled = true;
    s.network_policy.allow_from = vec![
        NetworkPolicyPeer {
            pod_selector: Some(LabelSelector::default()),
            ..NetworkPolicyPeer::default()
        },
        NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: "10.0.0.0/8".into(),
                except: None,
            }),
            ..NetworkPolicyPeer::default()
        },
    ];
    assert_valid(&s);
    s.network_policy
        .allow_from
        .push(NetworkPolicyPeer::default());
    assert_only(
        &s,
        "spec.networkPolicy.allowFrom[2]",
        FieldErrorKind::Required,
    );
    s.network_policy.allow_from[2] = NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: "10.0.0.0/8".into(),
            except: None,
        }),
        namespace_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    assert_only(
        &s,
        "spec.networkPolicy.allowFrom[2]",
        FieldErrorKind::Forbidden,
    );
    s.network_policy.allow_from[2] = NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: String::new(),
            except: None,
        }),
        ..NetworkPolicyPeer::default()
    };
    assert_only(
        &s,
        "spec.networkPolicy.allowFrom[2].ipBlock.cidr",
        FieldErrorKind::Required,
    );
}

#[test]
fn connection_secret_name() {
    let mut s = spec(Topology::Replication);
    s.connection_secret = Some("app-valkey".into());
    assert_valid(&s);
    s.connection_secret = Some("App_Valkey".into());
    assert_only(&s, "spec.connectionSecret", FieldErrorKind::Invalid);
    s.connection_secret = Some(String::new());
    assert_only(&s, "spec.connectionSecret", FieldErrorKind::Invalid);
}

#[test]
fn connection_secret_must_not_be_a_user_secret() {
    let mut s = spec(Topology::Replication);
    s.connection_secret = Some("shared".into());
    s.auth.password_secret = Some(SecretKeyRef {
        name: "shared".into(),
        key: "password".into(),
    });
    assert_only(&s, "spec.connectionSecret", FieldErrorKind::Invalid);
    s.auth.password_secret = None;
    s.tls.enabled = true;
    s.tls.secret_name = Some("shared".into());
    assert_only(&s, "spec.connectionSecret", FieldErrorKind::Invalid);
}

#[test]
fn journal_max_events_range() {
    let mut s = spec(Topology::Replication);
    s.journal.max_events = 1000;
    assert_valid(&s);
    s.journal.max_events = 999;
    assert_only(&s, "spec.journal.maxEvents", FieldErrorKind::OutOfRange);
    s.journal.max_events = 10_000_001;
    assert_only(&s, "spec.journal.maxEvents", FieldErrorKind::OutOfRange);
}

#[test]
fn paused_is_always_valid() {
    let mut s = spec(Topology::Cluster);
    s.paused = true;
    assert_valid(&s);
}

#[test]
fn hibernation_needs_persistence() {
    for topology in [
        Topology::Standalone,
        Topology::Replication,
        Topology::Sentinel,
        Topology::Cluster,
    ] {
        let mut s = spec(topology);
        s.hibernated = true;
        s.storage.persistence = crate::Persistence::Rdb;
        assert_valid(&s);
        s.storage.persistence = crate::Persistence::None;
        assert_only(&s, "spec.hibernated", FieldErrorKind::Invalid);
    }
}

#[test]
fn the_image_does_not_change_while_hibernated_nor_as_it_wakes() {
    let mut asleep = spec(Topology::Replication);
    asleep.hibernated = true;
    asleep.image = "valkey/valkey:9.1".into();
    let mut changed = asleep.clone();
    changed.image = "valkey/valkey:8.0".into();
    assert_only_with_old(
        &changed,
        Some(&asleep),
        "spec.image",
        FieldErrorKind::Forbidden,
    );
    // Woken with another image in the same change: refused too.
    changed.hibernated = false;
    assert_only_with_old(
        &changed,
        Some(&asleep),
        "spec.image",
        FieldErrorKind::Forbidden,
    );
    // Woken on its image, then changed: both accepted.
    let mut awake = asleep.clone();
    awake.hibernated = false;
    assert!(validate(&awake, Some(&asleep)).is_ok());
    assert!(validate(&changed, Some(&awake)).is_ok());
}

#[test]
fn an_unset_hibernated_is_not_serialized() {
    // A spec's canonical JSON (its fingerprint) is the same as before the
    // field existed, so no cluster rolls when the operator is upgraded.
    let s = spec(Topology::Replication);
    let json = serde_json::to_value(&s).unwrap();
    assert!(json.get("hibernated").is_none(), "{json}");
    let mut h = s.clone();
    h.hibernated = true;
    assert_eq!(
        serde_json::to_value(&h).unwrap().get("hibernated"),
        Some(&serde_json::Value::Bool(true))
    );
}

#[test]
fn placement_preferred_is_for_replication_and_cluster() {
    for (topology, ok) in [
        (Topology::Standalone, false),
        (Topology::Replication, true),
        (Topology::Sentinel, false),
        (Topology::Cluster, true),
    ] {
        let mut s = spec(topology);
        s.placement = Some(crate::Placement::Preferred);
        if ok {
            assert_valid(&s);
        } else {
            assert_only(&s, "spec.placement", FieldErrorKind::Invalid);
        }
        s.placement = Some(crate::Placement::Any);
        assert_valid(&s);
    }
}

fn standby_of(name: &str) -> crate::ReplicateFrom {
    crate::ReplicateFrom {
        cluster: Some(crate::SourceCluster {
            name: name.into(),
            namespace: Some("prod".into()),
        }),
        ..crate::ReplicateFrom::default()
    }
}

#[test]
fn a_standby_is_standalone_or_replication_and_names_one_source() {
    for (topology, ok) in [
        (Topology::Standalone, true),
        (Topology::Replication, true),
        (Topology::Sentinel, false),
        (Topology::Cluster, false),
    ] {
        let mut s = spec(topology);
        s.replicate_from = Some(standby_of("shop"));
        if ok {
            assert_valid(&s);
        } else {
            assert_only(&s, "spec.replicateFrom", FieldErrorKind::NotSupported);
        }
    }
    let mut s = spec(Topology::Replication);
    s.replicate_from = Some(crate::ReplicateFrom::default());
    assert_only(&s, "spec.replicateFrom", FieldErrorKind::Required);
    let endpoint = crate::SourceEndpoint {
        host: "10.1.2.3".into(),
        port: Some(6380),
        credentials_secret: "shop-credentials".into(),
    };
    s.replicate_from = Some(crate::ReplicateFrom {
        endpoint: Some(endpoint.clone()),
        ..standby_of("shop")
    });
    assert_only(&s, "spec.replicateFrom", FieldErrorKind::Invalid);
    s.replicate_from = Some(crate::ReplicateFrom {
        endpoint: Some(endpoint.clone()),
        ..crate::ReplicateFrom::default()
    });
    assert_valid(&s);
    s.replicate_from = Some(crate::ReplicateFrom {
        endpoint: Some(crate::SourceEndpoint {
            port: Some(0),
            ..endpoint.clone()
        }),
        ..crate::ReplicateFrom::default()
    });
    assert_only(
        &s,
        "spec.replicateFrom.endpoint.port",
        FieldErrorKind::OutOfRange,
    );
    s.replicate_from = Some(crate::ReplicateFrom {
        endpoint: Some(crate::SourceEndpoint {
            host: "a b".into(),
            ..endpoint
        }),
        ..crate::ReplicateFrom::default()
    });
    assert_only(
        &s,
        "spec.replicateFrom.endpoint.host",
        FieldErrorKind::Invalid,
    );
    s.replicate_from = Some(standby_of("shop"));
    s.tls.enabled = true;
    assert_only(&s, "spec.replicateFrom", FieldErrorKind::NotSupported);
}

#[test]
fn a_standby_is_made_at_creation_keeps_its_source_and_is_promoted_by_removing_it() {
    let running = spec(Topology::Replication);
    let mut standby = spec(Topology::Replication);
    standby.replicate_from = Some(standby_of("shop"));
    // A running cluster cannot become one.
    assert_only_with_old(
        &standby,
        Some(&running),
        "spec.replicateFrom",
        FieldErrorKind::Forbidden,
    );
    // Another source is refused; another lag bound is not.
    let mut other = standby.clone();
    other.replicate_from = Some(standby_of("cart"));
    assert_only_with_old(
        &other,
        Some(&standby),
        "spec.replicateFrom",
        FieldErrorKind::Immutable,
    );
    let mut bound = standby.clone();
    if let Some(from) = bound.replicate_from.as_mut() {
        from.max_lag_bytes = Some(4096);
    }
    assert!(validate(&bound, Some(&standby)).is_ok());
    // Removing it is the promotion.
    assert!(validate(&running, Some(&standby)).is_ok());
    // It neither hibernates nor is placed while it follows.
    let mut asleep = standby.clone();
    asleep.storage.persistence = crate::Persistence::Rdb;
    asleep.hibernated = true;
    assert_only(&asleep, "spec.hibernated", FieldErrorKind::Forbidden);
    let mut placed = standby;
    placed.placement = Some(crate::Placement::Preferred);
    assert_only(&placed, "spec.placement", FieldErrorKind::Forbidden);
}

#[test]
fn standby_namespaces_name_each_namespace_once_with_no_wildcard() {
    let mut s = spec(Topology::Replication);
    s.standby_namespaces = vec!["dev".into(), "staging".into()];
    assert_valid(&s);
    s.standby_namespaces = vec!["*".into()];
    assert_only(&s, "spec.standbyNamespaces[0]", FieldErrorKind::Invalid);
    s.standby_namespaces = vec!["dev".into(), "dev".into()];
    assert_only(&s, "spec.standbyNamespaces[1]", FieldErrorKind::Duplicate);
}
