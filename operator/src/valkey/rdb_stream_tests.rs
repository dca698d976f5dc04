//! The RDB check on handcrafted bytes, the payload framing at every split,
//! and the handshake against a scripted fake server (keepalives, both
//! framings, the `SYNC` fallback, refusals, truncation, a stall). The real
//! server is in `tests/backup_transfer.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

/// The reference CRC the check must agree with: the `crc` crate's
/// table-driven CRC-64/REDIS, which shares no code with the check's.
static REFERENCE_CRC: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

/// An empty RDB written by Redis 7.2 (version 11), checksum included.
const REDIS_7_2_EMPTY: &str = "524544495330303131fa0972656469732d76657205372e322e30fa0a72656469732d62697473c040fa056374696d65c26d08bc65fa08757365642d6d656dc2b0c41000fa08616f662d62617365c000fff06e3bfec0ff5aa2";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// An RDB with `magic`, some body, the EOF opcode and its CRC-64.
fn rdb(magic: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(body);
    out.push(0xFF);
    let crc = REFERENCE_CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn check_all(bytes: &[u8]) -> Result<RdbReport, RdbCheckError> {
    let mut check = RdbCheck::new();
    check.feed(bytes)?;
    check.finish()
}

#[test]
fn the_crc_is_redis_crc64_jones() {
    // The check value of crc64.c's own test.
    assert_eq!(REFERENCE_CRC.checksum(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    assert_eq!(crate::valkey::crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
}

#[test]
fn a_real_redis_rdb_verifies() {
    let bytes = hex(REDIS_7_2_EMPTY);
    let report = check_all(&bytes).unwrap();
    assert_eq!(report.rdb_version, 11);
    assert_eq!(report.bytes, 88);
    assert_eq!(report.crc, RdbCrc::Verified(0xa25a_ffc0_fe3b_6ef0));
}

#[test]
fn valkey_9_magic_is_read_as_version_80() {
    let bytes = rdb(b"VALKEY080", b"\xfa\x0avalkey-ver\x059.1.0");
    let report = check_all(&bytes).unwrap();
    assert_eq!(report.rdb_version, 80);
    assert!(matches!(report.crc, RdbCrc::Verified(_)));
}

#[test]
fn any_chunking_gives_the_same_verdict() {
    let bytes = rdb(b"REDIS0011", &[7u8; 100]);
    let whole = check_all(&bytes).unwrap();
    for size in [1, 2, 8, 9, 10, 17, 33, 200] {
        let mut check = RdbCheck::new();
        for piece in bytes.chunks(size) {
            check.feed(piece).unwrap();
        }
        check.feed(&[]).unwrap();
        assert_eq!(check.finish().unwrap(), whole, "chunks of {size}");
    }
}

#[test]
fn a_large_rdb_in_uneven_pieces_verifies_with_the_reference_crc() {
    // Large enough for the folding CRC's widest loops, in pieces of
    // irregular sizes such as a socket hands out, so that the trailer
    // held back straddles pieces of every kind.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let body: Vec<u8> = (0..(1 << 20) + 77)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    let bytes = rdb(b"VALKEY080", &body);
    let stored = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
    for step in [1usize, 7, 4093, 65_536] {
        let mut check = RdbCheck::new();
        let mut rest = bytes.as_slice();
        let mut size = step;
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            check.feed(piece).unwrap();
            rest = tail;
            size = size * 31 % 70_001 + 1;
        }
        let report = check.finish().unwrap();
        assert_eq!(report.crc, RdbCrc::Verified(stored), "first piece {step}");
        assert_eq!(report.rdb_version, 80);
    }
}

#[test]
fn a_zero_checksum_is_not_checksummed_rather_than_a_failure() {
    let mut bytes = rdb(b"REDIS0011", b"body");
    let n = bytes.len();
    bytes[n - 8..].fill(0);
    assert_eq!(check_all(&bytes).unwrap().crc, RdbCrc::NotChecksummed);
}

#[test]
fn a_flipped_byte_is_a_checksum_mismatch_with_both_values() {
    let mut bytes = rdb(b"REDIS0011", &[1u8; 64]);
    bytes[20] ^= 0x01;
    let err = check_all(&bytes).unwrap_err();
    let RdbCheckError::ChecksumMismatch { stored, computed } = err else {
        panic!("{err:?}");
    };
    assert_ne!(stored, computed);
    let text = err.to_string();
    assert!(text.contains(&format!("{stored:#018x}")), "{text}");
    assert!(text.contains(&format!("{computed:#018x}")), "{text}");
}

#[test]
fn a_bad_magic_is_refused_as_soon_as_it_is_in() {
    let mut check = RdbCheck::new();
    check.feed(b"HTTP/1.1 ").unwrap_err();
    let err = check.finish().unwrap_err();
    assert!(err.to_string().contains("HTTP/1.1"), "{err}");
    assert!(matches!(
        check_all(b"REDIS00x1aaaaaaaaaaaaaaaaaaaa"),
        Err(RdbCheckError::BadMagic { .. })
    ));
    assert_eq!(
        check_all(&rdb(b"REDIS0004", b"")),
        Err(RdbCheckError::TooOld { version: 4 })
    );
}

#[test]
fn a_truncated_rdb_is_refused() {
    let bytes = rdb(b"REDIS0011", &[3u8; 50]);
    assert_eq!(
        check_all(&bytes[..10]),
        Err(RdbCheckError::Truncated { bytes: 10, min: 18 })
    );
    // Cut anywhere else, the EOF opcode is not where the checksum begins.
    let err = check_all(&bytes[..40]).unwrap_err();
    assert!(
        matches!(err, RdbCheckError::NoEofOpcode { found: 3 }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("truncated"), "{err}");
}

fn mark() -> [u8; EOF_MARK_LEN] {
    let mut mark = [b'a'; EOF_MARK_LEN];
    mark[7] = b'7';
    mark
}

#[test]
fn the_end_mark_is_found_and_stripped_at_every_split() {
    let rdb_bytes = rdb(b"REDIS0011", b"0123456789abcdef");
    let mut wire = rdb_bytes.clone();
    wire.extend_from_slice(&mark());
    for split in 0..=wire.len() {
        let mut payload = Payload::Mark { mark: mark() };
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut done = false;
        for piece in [&wire[..split], &wire[split..]] {
            buf.extend_from_slice(piece);
            let taken = payload.take(&mut buf);
            out.extend_from_slice(&taken.bytes.unwrap_or_default());
            done = taken.done;
        }
        assert!(done, "split at {split}");
        assert_eq!(out, rdb_bytes, "split at {split}");
        assert!(buf.is_empty());
    }
}

#[test]
fn a_length_framed_payload_stops_at_its_length() {
    let mut payload = Payload::Length { remaining: 5 };
    let mut buf = BytesMut::from(&b"abc"[..]);
    assert_eq!(
        payload.take(&mut buf),
        Taken {
            bytes: Some(Bytes::from_static(b"abc")),
            done: false
        }
    );
    buf.extend_from_slice(b"deXYZ");
    assert_eq!(
        payload.take(&mut buf),
        Taken {
            bytes: Some(Bytes::from_static(b"de")),
            done: true
        }
    );
    assert_eq!(&buf[..], b"XYZ");
}

#[test]
fn sync_lines_parse() {
    let replid = "8371b4fb1155b71f4a04d3e1bc3e18c4a990aeeb";
    assert_eq!(
        parse_sync_line(format!("+FULLRESYNC {replid} 1234").as_bytes()),
        SyncLine::FullResync(FullResync {
            replid: replid.to_owned(),
            offset: 1234
        })
    );
    let mut eof = b"$EOF:".to_vec();
    eof.extend_from_slice(&mark());
    assert_eq!(parse_sync_line(&eof), SyncLine::EofMark(mark()));
    assert_eq!(
        parse_sync_line(b"$EOF:short"),
        SyncLine::Other("$EOF:short".into())
    );
    assert_eq!(parse_sync_line(b"$175"), SyncLine::Length(175));
    assert_eq!(
        parse_sync_line(b"-NOMASTERLINK Can't SYNC"),
        SyncLine::Error("NOMASTERLINK Can't SYNC".into())
    );
    assert_eq!(
        parse_sync_line(b"+FULLRESYNC abc -1"),
        SyncLine::Other("+FULLRESYNC abc -1".into())
    );
    assert_eq!(
        parse_sync_line(b"+CONTINUE"),
        SyncLine::Other("+CONTINUE".into())
    );
}

/// What the fake server does in answer to one command.
enum Step {
    Send(Vec<u8>),
    Pause(Duration),
    Close,
}

/// A one-connection server that answers each command it reads with the
/// steps `respond` gives; the handle returns the commands it read.
async fn fake_server(
    respond: impl Fn(&[Vec<u8>]) -> Vec<Step> + Send + 'static,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut socket = BufReader::new(socket);
        let mut seen = Vec::new();
        loop {
            let mut header = String::new();
            if socket.read_line(&mut header).await.unwrap() == 0 {
                return seen;
            }
            let count: usize = header.trim()[1..].parse().unwrap();
            let mut args = Vec::new();
            for _ in 0..count {
                let mut len = String::new();
                socket.read_line(&mut len).await.unwrap();
                let len: usize = len.trim()[1..].parse().unwrap();
                let mut arg = vec![0; len + 2];
                socket.read_exact(&mut arg).await.unwrap();
                arg.truncate(len);
                args.push(arg);
            }
            let steps = respond(&args);
            seen.push(args);
            for step in steps {
                match step {
                    Step::Send(bytes) => socket.get_mut().write_all(&bytes).await.unwrap(),
                    Step::Pause(d) => tokio::time::sleep(d).await,
                    Step::Close => return seen,
                }
            }
        }
    });
    (addr, handle)
}

fn ok() -> Vec<Step> {
    vec![Step::Send(b"+OK\r\n".to_vec())]
}

const REPLID: &str = "8371b4fb1155b71f4a04d3e1bc3e18c4a990aeeb";

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        command: Duration::from_secs(2),
    }
}

async fn drain(stream: &mut RdbStream) -> Result<Vec<u8>, ProbeError> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next_chunk().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[tokio::test]
async fn an_eof_framed_rdb_after_keepalives_arrives_whole() {
    let body = rdb(b"VALKEY080", &[9u8; 300]);
    let wire_rdb = body.clone();
    let (addr, server) = fake_server(move |args| match args[0].as_slice() {
        b"PSYNC" => {
            let mut preamble = b"$EOF:".to_vec();
            preamble.extend_from_slice(&mark());
            preamble.extend_from_slice(b"\r\n");
            let mut end = wire_rdb[100..].to_vec();
            end.extend_from_slice(&mark()[..10]);
            vec![
                Step::Send(b"\n".to_vec()),
                Step::Pause(Duration::from_millis(30)),
                Step::Send(format!("\n+FULLRESYNC {REPLID} 1234\r\n").into_bytes()),
                Step::Send(preamble),
                Step::Send(wire_rdb[..100].to_vec()),
                Step::Pause(Duration::from_millis(30)),
                Step::Send(end),
                Step::Pause(Duration::from_millis(30)),
                Step::Send(mark()[10..].to_vec()),
                Step::Pause(Duration::from_millis(30)),
                Step::Close,
            ]
        }
        _ => ok(),
    })
    .await;
    let password = Password::new("hunter2");
    let mut stream = open_rdb_stream(addr, Some((Some("backup"), &password)), None, timeouts())
        .await
        .unwrap();
    assert_eq!(
        stream.snapshot(),
        &RdbSnapshot {
            resync: Some(FullResync {
                replid: REPLID.to_owned(),
                offset: 1234
            }),
            framing: RdbFraming::EofMark,
        }
    );
    assert_eq!(stream.total(), None);
    assert_eq!(drain(&mut stream).await.unwrap(), body);
    assert_eq!(stream.total(), Some(u64::try_from(body.len()).unwrap()));
    let seen = server.await.unwrap();
    let seen: Vec<Vec<&[u8]>> = seen
        .iter()
        .map(|c| c.iter().map(Vec::as_slice).collect())
        .collect();
    assert_eq!(
        seen,
        vec![
            vec![&b"AUTH"[..], b"backup", b"hunter2"],
            vec![&b"REPLCONF"[..], b"rdb-only", b"1"],
            vec![&b"REPLCONF"[..], b"capa", b"eof", b"capa", b"psync2"],
            vec![&b"REPLCONF"[..], b"version", b"255.255.255"],
            vec![&b"PSYNC"[..], b"?", b"-1"],
        ]
    );
}

#[tokio::test]
async fn a_length_framed_rdb_with_keepalives_before_its_length() {
    let body = rdb(b"REDIS0011", b"some keys");
    let wire_rdb = body.clone();
    let (addr, _server) = fake_server(move |args| match args[0].as_slice() {
        b"PSYNC" => vec![
            Step::Send(format!("+FULLRESYNC {REPLID} 0\r\n\n\n").into_bytes()),
            Step::Send(format!("${}\r\n", wire_rdb.len()).into_bytes()),
            Step::Send(wire_rdb.clone()),
            // A server that is not asked for rdb-only goes on replicating.
            Step::Send(b"*1\r\n$4\r\nPING\r\n".to_vec()),
        ],
        _ => ok(),
    })
    .await;
    let mut stream = open_rdb_stream(addr, None, None, timeouts()).await.unwrap();
    assert_eq!(
        stream.snapshot().framing,
        RdbFraming::Length(u64::try_from(body.len()).unwrap())
    );
    assert_eq!(drain(&mut stream).await.unwrap(), body);
}

#[tokio::test]
async fn psync_refused_by_acl_falls_back_to_sync() {
    let body = rdb(b"REDIS0011", b"x");
    let wire_rdb = body.clone();
    let (addr, server) = fake_server(move |args| match args[0].as_slice() {
        b"PSYNC" => vec![Step::Send(
            b"-NOPERM User backup has no permissions to run the 'psync' command\r\n".to_vec(),
        )],
        b"SYNC" => {
            let mut reply = format!("${}\r\n", wire_rdb.len()).into_bytes();
            reply.extend_from_slice(&wire_rdb);
            vec![Step::Send(reply), Step::Close]
        }
        _ => ok(),
    })
    .await;
    let mut stream = open_rdb_stream(addr, None, None, timeouts()).await.unwrap();
    assert_eq!(stream.snapshot().resync, None);
    assert_eq!(drain(&mut stream).await.unwrap(), body);
    let seen = server.await.unwrap();
    assert_eq!(seen.last().unwrap(), &vec![b"SYNC".to_vec()]);
}

#[tokio::test]
async fn a_refused_password_is_auth_failed_and_never_shown() {
    let (addr, _server) = fake_server(|_| {
        vec![Step::Send(
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n".to_vec(),
        )]
    })
    .await;
    let password = Password::new("hunter2");
    let err = open_rdb_stream(addr, Some((None, &password)), None, timeouts())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProbeError::AuthFailed { code, .. } if code == "WRONGPASS"),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[tokio::test]
async fn a_replica_without_its_primary_is_rejected() {
    let (addr, _server) = fake_server(|args| match args[0].as_slice() {
        b"PSYNC" => vec![Step::Send(
            b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n".to_vec(),
        )],
        _ => ok(),
    })
    .await;
    let err = open_rdb_stream(addr, None, None, timeouts())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProbeError::Rejected { command: "PSYNC", message, .. } if message.starts_with("NOMASTERLINK")),
        "{err:?}"
    );
    assert!(err.to_string().contains(&addr.to_string()));
}

#[tokio::test]
async fn a_connection_closed_before_the_end_is_a_truncation() {
    let body = rdb(b"REDIS0011", &[5u8; 64]);
    for eof_framed in [true, false] {
        let wire_rdb = body.clone();
        let (addr, _server) = fake_server(move |args| match args[0].as_slice() {
            b"PSYNC" => {
                let mut reply = format!("+FULLRESYNC {REPLID} 7\r\n").into_bytes();
                if eof_framed {
                    reply.extend_from_slice(b"$EOF:");
                    reply.extend_from_slice(&mark());
                    reply.extend_from_slice(b"\r\n");
                } else {
                    reply.extend_from_slice(format!("${}\r\n", wire_rdb.len()).as_bytes());
                }
                reply.extend_from_slice(&wire_rdb[..50]);
                vec![Step::Send(reply), Step::Close]
            }
            _ => ok(),
        })
        .await;
        let mut stream = open_rdb_stream(addr, None, None, timeouts()).await.unwrap();
        let err = drain(&mut stream).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&addr.to_string()), "{text}");
        if eof_framed {
            assert!(
                text.contains("50 bytes of the RDB, before its end mark"),
                "{text}"
            );
        } else {
            assert!(
                text.contains(&format!("50 of the announced {} bytes", body.len())),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn a_stalled_transfer_times_out() {
    let (addr, _server) = fake_server(|args| match args[0].as_slice() {
        b"PSYNC" => vec![
            Step::Send(format!("+FULLRESYNC {REPLID} 7\r\n$100\r\nREDIS0011").into_bytes()),
            Step::Pause(Duration::from_secs(5)),
        ],
        _ => ok(),
    })
    .await;
    let mut stream =
        open_rdb_stream_with_idle(addr, None, None, timeouts(), Duration::from_millis(200))
            .await
            .unwrap();
    let err = drain(&mut stream).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("stalled: nothing received for 200ms after 9 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let err = open_rdb_stream(addr, None, None, timeouts())
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Refused { .. }), "{err:?}");
}
