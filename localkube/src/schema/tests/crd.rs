//! A realistic CRD end to end: prune, default, validate as the server does.

use serde_json::{Value, json};

use crate::schema::CompiledSchema;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: valkeyclusters.valkey.logbook.dev
spec:
  group: valkey.logbook.dev
  names: {kind: ValkeyCluster, listKind: ValkeyClusterList, plural: valkeyclusters, singular: valkeycluster}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        description: A Valkey cluster.
        required: [spec]
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.shards * (1 + self.replicasPerShard) <= 100"
              message: too many pods
            properties:
              version:
                type: string
                default: "8.0"
                enum: ["7.2", "8.0"]
                x-kubernetes-validations:
                - rule: "self >= oldSelf"
                  message: downgrades are not supported
              shards:
                type: integer
                format: int32
                minimum: 1
                default: 3
              replicasPerShard:
                type: integer
                minimum: 0
                maximum: 5
                default: 1
              storage:
                type: object
                default: {}
                properties:
                  size:
                    x-kubernetes-int-or-string: true
                    default: 1Gi
                    x-kubernetes-validations:
                    - rule: "isQuantity(string(self)) && quantity(string(self)).isGreaterThan(quantity('0'))"
                      message: size must be a positive quantity
                  storageClassName:
                    type: string
                    nullable: true
              config:
                type: object
                additionalProperties:
                  type: string
                maxProperties: 3
              users:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                maxItems: 4
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string, pattern: "^[a-z]+$"}
                    acl: {type: string, default: "+@all"}
              podTemplate:
                type: object
                x-kubernetes-embedded-resource: true
                x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

fn schema() -> CompiledSchema {
    let crd: Value = serde_yaml::from_str(CRD).unwrap();
    CompiledSchema::compile(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]).unwrap()
}

/// What the server does with a request body before storing it.
fn admit(
    s: &CompiledSchema,
    mut obj: Value,
    old: Option<&Value>,
) -> (Value, Vec<String>, Vec<crate::schema::Cause>) {
    let pruned = s.prune(&mut obj);
    s.apply_defaults(&mut obj);
    let causes = s.validate(&obj, old);
    (obj, pruned, causes)
}

#[test]
fn create_defaults_and_prunes() {
    let s = schema();
    let (obj, pruned, causes) = admit(
        &s,
        json!({"apiVersion": "valkey.logbook.dev/v1alpha1", "kind": "ValkeyCluster",
        "metadata": {"name": "v", "namespace": "default"},
        "spec": {"shards": 2, "typo": true, "users": [{"name": "app", "extra": 1}]}}),
        None,
    );
    assert!(causes.is_empty(), "{causes:?}");
    assert_eq!(pruned, vec![".spec.typo", ".spec.users[0].extra"]);
    assert_eq!(
        obj["spec"],
        json!({"version": "8.0", "shards": 2, "replicasPerShard": 1, "storage": {"size": "1Gi"},
        "users": [{"name": "app", "acl": "+@all"}]})
    );
}

#[test]
fn invalid_create() {
    let s = schema();
    let (_, _, causes) = admit(
        &s,
        json!({"apiVersion": "valkey.logbook.dev/v1alpha1", "kind": "ValkeyCluster", "metadata": {"name": "v"},
        "spec": {"version": "6.0", "shards": 50, "replicasPerShard": 9, "config": {"a": "1", "b": "2", "c": "3", "d": "4"},
                 "users": [{"name": "Bad"}, {"name": "ok"}, {"name": "ok"}], "podTemplate": {"kind": "Pod"}}}),
        None,
    );
    let got: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c.reason.as_str(), c.field.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("FieldValueTooMany", "spec.config"),
            ("FieldValueInvalid", "spec.replicasPerShard"),
            ("FieldValueInvalid", "spec.users[0].name"),
            ("FieldValueNotSupported", "spec.version"),
            ("FieldValueRequired", "spec.podTemplate.apiVersion"),
            ("FieldValueDuplicate", "spec.users[2]"),
            ("FieldValueInvalid", "spec"),
        ],
        "{causes:#?}"
    );
    assert_eq!(
        causes[6].message,
        "Invalid value: \"object\": too many pods"
    );
    let (_, _, causes) = admit(&s, json!({"spec": {"storage": {"size": 0}}}), None);
    assert_eq!(
        causes[0].message,
        "Invalid value: \"\": size must be a positive quantity"
    );
    assert_eq!(causes[0].field, "spec.storage.size");
}

#[test]
fn update_transition_rules() {
    let s = schema();
    let (old, _, causes) = admit(
        &s,
        json!({"metadata": {"name": "v"}, "spec": {"version": "8.0"}}),
        None,
    );
    assert!(causes.is_empty());
    let (_, _, causes) = admit(
        &s,
        json!({"metadata": {"name": "v"}, "spec": {"version": "7.2"}}),
        Some(&old),
    );
    assert_eq!(
        causes,
        vec![super::cause(
            "FieldValueInvalid",
            "Invalid value: \"string\": downgrades are not supported",
            "spec.version"
        )]
    );
    let (_, _, causes) = admit(
        &s,
        json!({"metadata": {"name": "v"}, "spec": {"version": "8.0", "shards": 4}}),
        Some(&old),
    );
    assert!(causes.is_empty());
}
