#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use serde_json::json;

use super::*;

// Bodies kubectl v1.35 sent (captured from a stub server).

#[test]
fn kubectl_create_token() {
    // kubectl create token op --duration=20m --audience=aud1
    //   --bound-object-kind=Pod --bound-object-name=p --bound-object-uid=u1
    let v = decode(include_bytes!("testdata/kubectl-create-token.pb")).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": ["aud1"], "expirationSeconds": 1200,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u1"}}})
    );
}

#[test]
fn kubectl_auth_can_i() {
    // kubectl auth can-i get pods --subresource=log -n ns1
    let v = decode(include_bytes!("testdata/kubectl-auth-can-i.pb")).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "ns1", "verb": "get", "resource": "pods", "subresource": "log"}}})
    );
}

#[test]
fn kubectl_create_secret() {
    // kubectl create secret generic s1 --from-literal=p=q --type=foo
    let v = decode(include_bytes!("testdata/kubectl-create-secret.pb")).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"},
            "data": {"p": "cQ=="}, "type": "foo"})
    );
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field(n: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(n << 3 | 2, &mut out);
    varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let tm = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), field(1, &tm), field(2, raw)].concat()
}

#[test]
fn repeated_strings_keep_the_core_group_and_unknown_fields_are_skipped() {
    let rule = [
        field(1, b"get"),
        field(2, b""),
        field(2, b"apps"),
        field(3, b"pods"),
        field(9, b"from a newer kubectl"),
    ]
    .concat();
    let mut fixed = vec![(7 << 3) | 5];
    fixed.extend([1, 2, 3, 4]);
    let meta = [field(1, b"r"), fixed].concat();
    let raw = [field(1, &meta), field(2, &rule)].concat();
    let v = decode(&envelope("rbac.authorization.k8s.io/v1", "Role", &raw)).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
            "rules": [{"verbs": ["get"], "apiGroups": ["", "apps"], "resources": ["pods"]}]})
    );
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    assert_eq!(decode(b"{}"), Err(ProtobufError::NoEnvelope));
    let good = envelope(
        "v1",
        "ConfigMap",
        &field(2, &[field(1, b"a"), field(2, b"b")].concat()),
    );
    for cut in 4..good.len() {
        // Every prefix decodes or fails; none panics.
        let _ = decode(good.get(..cut).unwrap());
    }
    assert_eq!(decode(&good).unwrap()["data"], json!({"a": "b"}));
    assert_eq!(
        decode(&[b"k8s\0".as_slice(), &[0x0a, 0x05, 0x01]].concat()),
        Err(ProtobufError::Truncated)
    );
    assert_eq!(
        decode(&[b"k8s\0".as_slice(), &[0xff; 11]].concat()),
        Err(ProtobufError::Overflow)
    );
    assert_eq!(
        decode(&[b"k8s\0".as_slice(), &[0x0b]].concat()),
        Err(ProtobufError::WireType(3))
    );
    let e = decode(&envelope("apps/v1", "Deployment", b"")).unwrap_err();
    assert!(matches!(e, ProtobufError::UnknownKind { .. }));
    assert!(
        e.to_string()
            .contains("send apps/v1 Deployment as application/json"),
        "{e}"
    );
}

#[test]
fn delete_options_from_a_typed_client() {
    // What helm's release storage sends with a DELETE: a grace period of
    // 0 (a varint field), a propagation policy and a precondition.
    let mut raw = vec![1 << 3];
    varint(0, &mut raw);
    raw.extend(field(2, &field(1, b"u-1")));
    raw.extend(field(4, b"Background"));
    let v = decode(&envelope("v1", "DeleteOptions", &raw)).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u-1"}, "propagationPolicy": "Background"})
    );
}
