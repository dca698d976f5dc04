//! Bad input gets the status a real server gives, and the server keeps
//! serving after each; discovery answers in the shapes kubectl reads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use serde_json::Value;

async fn still_serves(server: &logbook_localkube::RunningServer) {
    let (code, _, _) = common::raw(
        server.addr(),
        "GET",
        "/api/v1/namespaces/default/configmaps",
        &[],
        b"",
    )
    .await;
    assert_eq!(code, 200);
}

fn status(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn bad_requests_are_answered() {
    let server = common::start_with(logbook_localkube::Config {
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let a = server.addr();
    let json_ct = [("Content-Type", "application/json")];
    let cms = "/api/v1/namespaces/default/configmaps";

    let big = vec![b' '; 4096];
    let (code, _, body) = common::raw(a, "POST", cms, &json_ct, &big).await;
    assert_eq!(code, 413);
    assert_eq!(status(&body)["reason"], "RequestEntityTooLarge");
    still_serves(&server).await;

    let (code, _, body) = common::raw(a, "POST", cms, &json_ct, b"{not json").await;
    assert_eq!(code, 400);
    assert_eq!(status(&body)["reason"], "BadRequest");
    still_serves(&server).await;

    let (code, _, body) = common::raw(
        a,
        "POST",
        cms,
        &[("Content-Type", "application/yaml")],
        b"a: [unclosed",
    )
    .await;
    assert_eq!(
        (code, status(&body)["reason"].as_str()),
        (400, Some("BadRequest"))
    );
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    let (code, _, _) = common::raw(
        a,
        "POST",
        cms,
        &[("Content-Type", "application/yaml")],
        yaml,
    )
    .await;
    assert_eq!(code, 201);

    let (code, _, body) =
        common::raw(a, "POST", cms, &[("Content-Type", "text/plain")], b"{}").await;
    assert_eq!(
        (code, status(&body)["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, _, _) = common::raw(a, "PATCH", &format!("{cms}/from-yaml"), &json_ct, b"{}").await;
    assert_eq!(code, 415);

    let (code, _, body) =
        common::raw(a, "GET", "/apis/nope.example.com/v1/widgets", &[], b"").await;
    assert_eq!(code, 404);
    assert_eq!(
        status(&body)["message"],
        "the server could not find the requested resource"
    );

    let pod = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}"#;
    let (code, _, _) = common::raw(a, "POST", cms, &json_ct, pod).await;
    assert_eq!(code, 400, "kind does not match the URL");

    let (code, _, _) = common::raw(
        a,
        "GET",
        &format!("{cms}?watch=true&resourceVersion=abc"),
        &[],
        b"",
    )
    .await;
    assert_eq!(code, 400);
    let (code, _, _) = common::raw(a, "PUT", cms, &json_ct, b"{}").await;
    assert_eq!(code, 405);
    still_serves(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn discovery_shapes() {
    let server = common::start().await;
    let a = server.addr();
    let (code, _, body) = common::raw(a, "GET", "/version", &[], b"").await;
    assert_eq!(
        (code, status(&body)["gitVersion"].as_str()),
        (200, Some("v1.35.0"))
    );
    let (_, _, body) = common::raw(a, "GET", "/api/v1", &[], b"").await;
    let list = status(&body);
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for n in [
        "pods",
        "pods/status",
        "pods/log",
        "pods/eviction",
        "namespaces",
        "services",
        "configmaps",
        "secrets",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let (_, _, body) = common::raw(a, "GET", "/apis/apps/v1", &[], b"").await;
    let scale = status(&body)["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "statefulsets/scale")
        .cloned()
        .unwrap();
    assert_eq!(
        (scale["group"].as_str(), scale["kind"].as_str()),
        (Some("autoscaling"), Some("Scale"))
    );
    let accept = [(
        "Accept",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    )];
    let (code, head, body) = common::raw(a, "GET", "/apis", &accept, b"").await;
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase().contains(
            "content-type: application/json;g=apidiscovery.k8s.io;v=v2;as=apigroupdiscoverylist"
        ),
        "{head}"
    );
    assert_eq!(status(&body)["kind"], "APIGroupDiscoveryList");
    // An empty Swagger document: kubectl validates against v3, and reads
    // v2 only for a kind the server does not serve.
    let (code, _, body) = common::raw(a, "GET", "/openapi/v2", &[], b"").await;
    let v2 = status(&body);
    assert_eq!((code, v2["swagger"].as_str()), (200, Some("2.0")));
    assert_eq!(v2["definitions"], serde_json::json!({}));
    let protobuf = [(
        "Accept",
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    )];
    let (code, head, body) = common::raw(a, "GET", "/openapi/v2", &protobuf, b"").await;
    assert_eq!((code, body.as_str()), (200, "\n\u{3}2.0"));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
        "{head}"
    );
    let (code, _, body) = common::raw(a, "GET", "/openapi/v3", &[], b"").await;
    assert_eq!((code, status(&body)["paths"].is_object()), (200, true));

    // Tables for kubectl get.
    let table = [(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let (code, _, body) = common::raw(a, "GET", "/api/v1/namespaces", &table, b"").await;
    let t = status(&body);
    assert_eq!((code, t["kind"].as_str()), (200, Some("Table")));
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    server.shutdown().await;
}
