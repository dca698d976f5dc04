//! The backup tests' S3 endpoint: moto's server from the bench crate
//! (`logbook_bench::s3`), started and driven with panics instead of
//! errors. `start` listens on 127.0.0.1; `start_for_pods` on 127.0.0.3,
//! which localkube's pods reach (a pod's own 127.0.0.1 is itself).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use logbook::backup::{S3Credentials, S3Target};
#[allow(unused_imports)]
pub use logbook_bench::s3::REGION;

/// A running moto server (killed when dropped).
pub struct S3Server(logbook_bench::s3::S3Server);

impl S3Server {
    /// One on a free port of 127.0.0.1.
    pub fn start() -> S3Server {
        S3Server::start_at([127, 0, 0, 1], None, &[])
    }

    /// One on a free port of 127.0.0.3, which localkube's pods reach.
    pub fn start_for_pods() -> S3Server {
        S3Server::start_at([127, 0, 0, 3], None, &[])
    }

    /// One that checks credentials as AWS does (moto's IAM emulation:
    /// every key it has not issued is refused with `InvalidAccessKeyId`).
    pub fn start_checking_credentials() -> S3Server {
        S3Server::start_at(
            [127, 0, 0, 1],
            None,
            &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")],
        )
    }

    /// One on `ip:port`.
    pub fn start_at(ip: [u8; 4], port: Option<u16>, env: &[(&str, &str)]) -> S3Server {
        S3Server(
            logbook_bench::s3::S3Server::start_at(ip, port, env)
                .unwrap_or_else(|e| panic!("moto's S3 server: {e}")),
        )
    }

    /// `http://<address>:<port>`.
    pub fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    /// A path-style target for `bucket` on this server.
    pub fn target(&self, bucket: &str) -> S3Target {
        self.0.target(bucket)
    }

    /// Creates `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        self.0.create_bucket(bucket).unwrap();
    }

    /// Multipart uploads of `bucket` neither completed nor aborted.
    pub fn open_multipart_uploads(&self, bucket: &str) -> usize {
        self.0.open_multipart_uploads(bucket).unwrap()
    }
}

/// The key pair the tests sign with (moto takes any).
pub fn credentials() -> S3Credentials {
    logbook_bench::s3::credentials()
}
