//! Tests of what the client's errors may say: never a reply's contents,
//! never a password a command carried.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;

use redis::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::*;

const HASH: &str = "#a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3";

fn addr() -> SocketAddr {
    "127.0.0.1:6379".parse().unwrap()
}

#[test]
fn an_unexpected_acl_list_reply_is_described_without_its_hashes() {
    let line = format!("user app on {HASH} ~app:* resetchannels -@all +@read");
    let reply = Value::Array(vec![
        Value::BulkString(line.clone().into_bytes()),
        Value::SimpleString(line.clone()),
        Value::Array(vec![Value::BulkString(line.into_bytes())]),
    ]);
    let text = unexpected(addr(), "an array of strings", &reply).to_string();
    let digits = HASH.trim_start_matches('#');
    assert!(!text.contains(digits), "{text}");
    assert!(!text.contains(&digits[..8]), "{text}");
    assert!(!text.contains("app"), "{text}");
    assert!(text.contains("an array of 3 items"), "{text}");
}

#[test]
fn a_reply_is_named_by_its_type_and_size() {
    let cases = [
        (
            Value::BulkString(b"hunter2".to_vec()),
            "a bulk string of 7 bytes",
        ),
        (Value::SimpleString(HASH.to_owned()), "a status of 65 bytes"),
        (
            Value::SimpleString("hunter2".to_owned()),
            "a status of 7 bytes",
        ),
        (Value::SimpleString("QUEUED".to_owned()), "status QUEUED"),
        (Value::Int(42), "an integer"),
        (Value::Nil, "nil"),
        (
            Value::Map(vec![(Value::Nil, Value::BulkString(b"hunter2".to_vec()))]),
            "a map of 1 entry",
        ),
    ];
    for (reply, said) in cases {
        let text = unexpected(addr(), "OK", &reply).to_string();
        assert!(
            text.ends_with(&format!("expected OK, got {said}")),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn a_redacted_error_holds_no_password_whatever_its_kind() {
    let secret = "s3cr3t-Pa55";
    let errors = [
        ProbeError::Rejected {
            addr: addr(),
            command: "MIGRATE",
            message: format!("ERR syntax error near AUTH2 op {secret}"),
        },
        ProbeError::Io {
            addr: addr(),
            detail: format!("MIGRATE: broken pipe after AUTH {secret}"),
        },
        ProbeError::Protocol {
            addr: addr(),
            detail: format!("got {secret}"),
        },
    ];
    for err in errors {
        let text = err.redact(secret).to_string();
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("***"), "{text}");
    }
}

/// Reads one command (a RESP array of bulk strings).
async fn read_command<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Option<Vec<String>> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let n: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).await.ok()?;
        let len: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0; len + 2];
        r.read_exact(&mut buf).await.ok()?;
        buf.truncate(len);
        args.push(String::from_utf8_lossy(&buf).into_owned());
    }
    Some(args)
}

/// A server that answers `+OK` to everything but `MIGRATE`, which it
/// refuses quoting every argument it was sent (as a server's syntax
/// error, or a proxy's, may).
async fn echoing_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                while let Some(args) = read_command(&mut r).await {
                    let reply = if args[0].eq_ignore_ascii_case("MIGRATE") {
                        format!("-ERR syntax error in '{}'\r\n", args.join(" "))
                    } else {
                        "+OK\r\n".to_owned()
                    };
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_migrate_refusal_never_quotes_the_password() {
    let server = echoing_server().await;
    let to: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let secret = "s3cr3t-Pa55";
    // As the named user (`AUTH2`), then as `default` (`AUTH`).
    for identity in [true, false] {
        let client = ValkeyClient::new(Timeouts::default(), Some(Password::new(secret)));
        if identity {
            client
                .set_identity(Some(("op".to_owned(), Password::new(secret))))
                .await;
        }
        let err = client
            .migrate(server, to, &[b"k".to_vec()], 1000, true)
            .await
            .expect_err("the server refuses MIGRATE");
        let text = err.to_string();
        assert!(matches!(err, ProbeError::Rejected { .. }), "{text}");
        assert!(!text.contains(secret), "{text}");
        let auth = if identity { "AUTH2 op ***" } else { "AUTH ***" };
        assert!(text.contains(auth), "{text}");
    }
}

/// The effect gate counts what changes a server, never a read: a Cluster
/// pod's probe (a pipeline of reads) made outside any intent is no effect
/// (the reshard's effect sweep took every probe round for one).
#[test]
fn probes_and_reads_are_no_effect() {
    for read in [
        "CLUSTER probe",
        "CLUSTER NODES",
        "CLUSTER GETSLOTMIGRATIONS",
        "SENTINEL probe",
        "CONFIG GET",
        "INFO",
        "WAIT",
    ] {
        assert!(!changes_a_server(read), "{read}");
    }
    // Deleting keys and dropping a replica's link were once sent past
    // the gate; a command nobody listed is an effect.
    for write in [
        "CLUSTER MIGRATESLOTS",
        "CLUSTER SETSLOT",
        "REPLICAOF",
        "UNLINK",
        "CLIENT KILL",
        "SENTINEL RESET",
        "SOMETHING NEW",
    ] {
        assert!(changes_a_server(write), "{write}");
    }
}
