//! The web UI as the chart's `ui.enabled` serves it (issue 38): the
//! operator serves it with its own credentials, so every reader signs in
//! with a bearer token that the API server checks (a TokenReview) and is
//! shown a cluster only when the API server says that reader may `get` it
//! (a SubjectAccessReview). The operator runs under the chart's RBAC,
//! whose `ui.enabled` binds it `system:auth-delegator`. On localkube, and
//! on the real control plane under `make test-kubernetes`
//! (`LOGBOOK_E2E_CONTROL_PLANE=kubernetes`: the real kube-apiserver answers
//! the reviews).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use logbook::journal_store::JournalBackend;
use operator_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operators_ui_shows_each_reader_only_what_the_api_server_allows() {
    let mut env = Env::start_without_operator("ui-reviews").await;
    env.journal = JournalBackend::ConfigMap;
    let port = free_port();
    env.ui_addr = Some(([127, 0, 0, 1], port).into());
    env.start_operator();
    env.apply_yaml(&replication_yaml("demo", 2)).await;
    env.wait_ready("demo", 2, Duration::from_secs(90)).await;
    let reader = viewer(&env.client, "viewers", "reader", NS).await;
    let stranger = viewer(&env.client, "viewers", "stranger", "elsewhere").await;
    let addr = format!("127.0.0.1:{port}");
    let get = |path: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        exchange(&addr, "GET", path, &headers, "")
    };

    // Without a token: the data is refused, a page sends to the sign-in.
    let (status, _, body) = get("/api/clusters", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("sign in"), "{body}");
    assert!(!body.contains("demo"), "{body}");
    let (status, head, _) = get(&format!("/clusters/{NS}/demo"), None);
    assert_eq!(status, 303, "{head}");
    assert!(head.to_lowercase().contains("location: /login"), "{head}");
    let (status, _, body) = get("/login", None);
    assert_eq!(status, 200);
    assert!(body.contains("name=\"token\""), "{body}");
    // A token the API server does not know.
    let (status, _, body) = get("/api/clusters", Some("not-a-token"));
    assert_eq!(status, 401, "{body}");

    // The reader sees the cluster, its pods and its journal.
    let started = Instant::now();
    let (status, _, body) = get("/api/clusters", Some(&reader));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"demo\""), "{body}");
    let (status, _, body) = get(&format!("/api/clusters/{NS}/demo"), Some(&reader));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("demo-0"), "{body}");
    let (status, _, body) = get(
        &format!("/api/clusters/{NS}/demo/journal?limit=5"),
        Some(&reader),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"events\""), "{body}");
    eprintln!(
        "the reader's first three answers took {:?}",
        started.elapsed()
    );

    // The stranger may read only another namespace: an empty list, and a
    // refusal naming the user for every path of the cluster.
    let (status, _, body) = get("/api/clusters", Some(&stranger));
    assert_eq!((status, body.as_str()), (200, "[]"));
    for path in [
        format!("/api/clusters/{NS}/demo"),
        format!("/api/clusters/{NS}/demo/journal"),
        format!("/api/clusters/{NS}/demo/failovers"),
        format!("/api/clusters/{NS}/demo/reshards"),
        format!("/api/clusters/{NS}/demo/audit"),
        format!("/api/clusters/{NS}/demo/state?at=1"),
        format!("/api/clusters/{NS}/demo/live"),
        format!("/clusters/{NS}/demo/report"),
    ] {
        let (status, _, body) = get(&path, Some(&stranger));
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body.contains("forbidden") && body.contains("system:serviceaccount:viewers:stranger"),
            "{path}: {body}"
        );
        assert!(!body.contains("demo-0"), "{path} shows the cluster: {body}");
    }

    // A name in percent-encoding is not asked about as one name and
    // served as another: refused.
    let (status, _, body) = get(&format!("/api/clusters/{NS}/de%6Do"), Some(&stranger));
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("demo-0"), "{body}");

    // A browser signs in once: the token goes into an HttpOnly cookie,
    // which then reads as the token does.
    let form = format!("token={reader}");
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, _) = exchange(&addr, "POST", "/login", &form_type, &form);
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .expect("a cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let (status, _, body) = exchange(&addr, "GET", "/api/clusters", &[("Cookie", pair)], "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"demo\""), "{body}");
    let (status, _, body) = exchange(&addr, "POST", "/login", &form_type, "token=nonsense");
    assert_eq!(status, 401);
    assert!(body.contains("does not know this token"), "{body}");
    assert!(
        !body.contains("nonsense"),
        "the token is shown back: {body}"
    );

    // Nothing of either token in the operator's log.
    assert!(
        env.logs.grep(&reader).is_empty() && env.logs.grep(&stranger).is_empty(),
        "a token in the operator's log"
    );
    env.finish().await;
}
