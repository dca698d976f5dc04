//! The plans of the kinds users and backups come from: Secrets (a
//! ValkeyUser's password), ValkeyUsers and ValkeyBackups.

#[allow(unused_imports)]
use super::*;

// ---- Secret ----------------------------------------------------------------

/// Hold: the user's password Secret changed while its events (and GETs)
/// are withheld: the nodes keep the password the operator last saw; once
/// released they take the new one.
pub(crate) async fn secret_hold(b: &mut Bench) -> String {
    let before = b.seq().await;
    let next = format!("rotated-{}", b.starts);
    b.proxy
        .hold(&b.env.client, Target::secrets().named(APP_SECRET))
        .await;
    put_password(&b.env, APP_SECRET, &next).await;
    let seen = b.window(before).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(&e.body, Event::UserObserved { user } if user.object == "app")),
        "the held Secret was journaled\n{}",
        summary(&seen)
    );
    assert!(
        !b.auth_anywhere("app", &next).await,
        "a node takes the password of the held Secret\n{}",
        b.dump().await
    );
    let withheld = b.proxy.withheld();
    b.proxy.release();
    b.wait_auth(APP_SECRET, "app", &next, true).await;
    b.check(before).await;
    format!(
        "the new password reached no node while held ({withheld} events withheld), every node after"
    )
}

/// Stale: after a rotation, the operator restarted onto an API server
/// whose Secret still holds the older password: the nodes keep the new
/// one, and the older one is not journaled.
pub(crate) async fn secret_stale(b: &mut Bench) -> String {
    let view = b.proxy.record(&b.env.client, Target::secrets()).await;
    let next = format!("rotated-{}", b.starts + 100);
    let seq = b.seq().await;
    put_password(&b.env, APP_SECRET, &next).await;
    b.wait_auth(APP_SECRET, "app", &next, true).await;
    b.check(seq).await;
    let before = b.seq().await;
    let instance = b.restart(Some(view)).await;
    let started = b.wait_takeover(&instance, before).await;
    let deadline = Instant::now() + WINDOW;
    while Instant::now() < deadline {
        assert!(
            b.auth_everywhere("app", &next).await,
            "the new password stopped working while the Secret was stale\n{}",
            b.dump().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = b.window(started).await;
    assert_nothing_decided(b, &seen, "secret-stale").await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(&e.body, Event::UserObserved { user } if user.object == "app")),
        "the older Secret was journaled\n{}",
        summary(&seen)
    );
    b.proxy.reconnect();
    b.check(0).await;
    b.wait_auth(APP_SECRET, "app", &next, true).await;
    "the older password neither journaled nor given to a node".to_owned()
}

// ---- ValkeyUser ------------------------------------------------------------

/// The ValkeyUser `extra` of the cluster, its password in Secret
/// `extra-password`.
pub(crate) async fn create_extra(env: &Env, password: &str) {
    put_password(env, "extra-password", password).await;
    let user: ValkeyUser = serde_yaml::from_str(&format!(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyUser\nmetadata:\n  name: extra\nspec:\n  cluster: {NAME}\n  passwordSecret:\n    name: extra-password\n    key: password\n  commands: [\"+@read\"]\n  keys: [\"extra:*\"]\n"
    ))
    .unwrap();
    let users: Api<ValkeyUser> = env.api();
    users.create(&PostParams::default(), &user).await.unwrap();
}

/// Hold: a new ValkeyUser created while the ValkeyUsers' events (and
/// lists) are withheld: no node has the user; once released, every node.
pub(crate) async fn user_hold(b: &mut Bench) -> String {
    let before = b.seq().await;
    b.proxy.hold(&b.env.client, Target::valkey_users()).await;
    create_extra(&b.env, "extra-password-1").await;
    let seen = b.window(before).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(&e.body, Event::UserObserved { user } if user.object == "extra")),
        "the held ValkeyUser was journaled\n{}",
        summary(&seen)
    );
    assert!(
        !b.auth_anywhere("extra", "extra-password-1").await,
        "a node has the held user\n{}",
        b.dump().await
    );
    let withheld = b.proxy.withheld();
    b.proxy.release();
    b.wait_auth("extra-password", "extra", "extra-password-1", true)
        .await;
    b.check(before).await;
    format!("the user reached no node while held ({withheld} events withheld), every node after")
}

/// Stale: a ValkeyUser deleted (its user removed from every node), then
/// the operator restarted onto an API server that still lists it: the
/// user does not come back.
pub(crate) async fn user_stale(b: &mut Bench) -> String {
    let users: Api<ValkeyUser> = b.env.api();
    if users.get_opt("extra").await.unwrap().is_none() {
        create_extra(&b.env, "extra-password-1").await;
        b.wait_auth("extra-password", "extra", "extra-password-1", true)
            .await;
    }
    let view = b.proxy.record(&b.env.client, Target::valkey_users()).await;
    assert!(view.names().contains(&"extra".to_owned()));
    let seq = b.seq().await;
    users
        .delete("extra", &DeleteParams::default())
        .await
        .unwrap();
    b.wait_auth("extra-password", "extra", "extra-password-1", false)
        .await;
    b.wait_event(
        seq,
        "the user forgotten",
        |e| matches!(e, Event::UserForgotten { object } if object == "extra"),
    )
    .await;
    let gone = Instant::now() + Duration::from_secs(20);
    while users.get_opt("extra").await.unwrap().is_some() {
        assert!(Instant::now() < gone, "ValkeyUser extra not released");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.check(seq).await;
    let before = b.seq().await;
    let instance = b.restart(Some(view)).await;
    let started = b.wait_takeover(&instance, before).await;
    let deadline = Instant::now() + WINDOW;
    while Instant::now() < deadline {
        assert!(
            !b.auth_anywhere("extra", "extra-password-1").await,
            "the deleted user is back on a node\n{}",
            b.dump().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = b.window(started).await;
    assert_nothing_decided(b, &seen, "valkeyuser-stale").await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(&e.body, Event::UserObserved { user } if user.object == "extra")),
        "the deleted ValkeyUser was journaled again\n{}",
        summary(&seen)
    );
    b.proxy.reconnect();
    b.check(0).await;
    assert!(!b.auth_anywhere("extra", "extra-password-1").await);
    "the deleted user neither journaled again nor put back on a node".to_owned()
}

// ---- ValkeyBackup ----------------------------------------------------------

pub(crate) async fn create_backup(b: &mut Bench, name: &str) {
    if b.s3.is_none() {
        let s3 = s3_server::S3Server::start_for_pods();
        s3.create_bucket(BUCKET);
        put_s3_secret(&b.env, &s3).await;
        b.s3 = Some(s3);
    }
    let backup: ValkeyBackup = serde_json::from_value(serde_json::json!({
        "apiVersion": "valkey.logbook.dev/v1alpha1", "kind": "ValkeyBackup",
        "metadata": {"name": name},
        "spec": {"cluster": NAME, "destination": {"bucket": BUCKET, "prefix": "stale", "credentialsSecret": S3_SECRET}},
    }))
    .unwrap();
    let api: Api<ValkeyBackup> = b.env.api();
    api.create(&PostParams::default(), &backup).await.unwrap();
}

pub(crate) async fn wait_backup(b: &Bench, name: &str) {
    let api: Api<ValkeyBackup> = b.env.api();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let phase = api
            .get_opt(name)
            .await
            .unwrap()
            .and_then(|v| v.status)
            .and_then(|s| s.phase);
        if phase == Some(BackupPhase::Completed) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "backup {name} not completed: {phase:?}\n{}",
            b.dump().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether `event` starts or asks for backup `name`.
pub(crate) fn backup_event(event: &Event, name: &str) -> bool {
    match event {
        Event::BackupRequested { backup } => backup.object == name,
        Event::BackupStarted { object, .. } => object == name,
        _ => false,
    }
}

/// Hold: a ValkeyBackup created while the ValkeyBackups' events (and
/// lists) are withheld: no backup starts; once released, it completes.
pub(crate) async fn backup_hold(b: &mut Bench) -> String {
    let before = b.seq().await;
    b.proxy.hold(&b.env.client, Target::valkey_backups()).await;
    create_backup(b, "held").await;
    let seen = b.window(before).await;
    assert!(
        !seen.iter().any(|e| backup_event(&e.body, "held")),
        "the held ValkeyBackup was journaled\n{}",
        summary(&seen)
    );
    let withheld = b.proxy.withheld();
    b.proxy.release();
    wait_backup(b, "held").await;
    b.check(before).await;
    format!("no backup while held ({withheld} events withheld); completed after")
}

/// Stale: a completed ValkeyBackup deleted, then the operator restarted
/// onto an API server that still lists it: it is not taken again.
pub(crate) async fn backup_stale(b: &mut Bench) -> String {
    let api: Api<ValkeyBackup> = b.env.api();
    if api.get_opt("held").await.unwrap().is_none() {
        create_backup(b, "held").await;
        wait_backup(b, "held").await;
    }
    let view = b
        .proxy
        .record(&b.env.client, Target::valkey_backups())
        .await;
    let seq = b.seq().await;
    api.delete("held", &DeleteParams::default()).await.unwrap();
    b.wait_event(
        seq,
        "the backup forgotten",
        |e| matches!(e, Event::BackupForgotten { object } if object == "held"),
    )
    .await;
    b.check(seq).await;
    let before = b.seq().await;
    let instance = b.restart(Some(view)).await;
    let started = b.wait_takeover(&instance, before).await;
    let seen = b.window(started).await;
    assert_nothing_decided(b, &seen, "valkeybackup-stale").await;
    assert!(
        !seen.iter().any(|e| backup_event(&e.body, "held")),
        "the deleted ValkeyBackup was journaled again\n{}",
        summary(&seen)
    );
    b.proxy.reconnect();
    b.check(0).await;
    "the deleted backup neither journaled again nor taken".to_owned()
}
