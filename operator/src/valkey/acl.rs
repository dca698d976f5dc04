//! ACL commands: `ACL SETUSER` (with `reset`, so the user is exactly what
//! is sent), `ACL DELUSER`, `ACL SAVE` and `ACL LIST`, and the keyed digest
//! of a user's `ACL LIST` line the journal keeps instead of the line.
//!
//! A password is sent as the `>password` rule and never formatted: a
//! refusal's text (which quotes the rule it refused) is redacted before it
//! leaves this module.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::client::{Resend, ValkeyClient, expect_ok, unexpected};
use super::{FingerprintKey, Password, ProbeError};

impl ValkeyClient {
    /// `ACL SETUSER <username> reset ><password> <rules>…`: the user as
    /// given and nothing else, atomically (a rule the server refuses leaves
    /// the user as it was). With `keep_other_passwords`, everything but
    /// the passwords is reset (`resetkeys resetchannels clearselectors
    /// -@all`) and the password is added beside those the user has: a
    /// rotation's window, where the old one keeps working.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; a refusal carries the server's message, with
    /// the password replaced by `***`.
    pub async fn acl_setuser(
        &self,
        addr: SocketAddr,
        username: &str,
        password: &Password,
        rules: &[String],
        keep_other_passwords: bool,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg(username);
        if keep_other_passwords {
            cmd.arg("resetkeys")
                .arg("resetchannels")
                .arg("clearselectors")
                .arg("-@all");
        } else {
            cmd.arg("reset");
        }
        cmd.arg(format!(">{}", password.expose()));
        for rule in rules {
            cmd.arg(rule);
        }
        let reply = self
            .run(addr, &cmd, "ACL SETUSER", Duration::ZERO, Resend::Safe)
            .await
            .map_err(|err| redact(err, password))?;
        expect_ok(addr, reply.0)
    }

    /// `ACL DELUSER <username>…`.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn acl_deluser(
        &self,
        addr: SocketAddr,
        usernames: &[String],
    ) -> Result<(), ProbeError> {
        if usernames.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("ACL");
        cmd.arg("DELUSER");
        for name in usernames {
            cmd.arg(name);
        }
        let (reply, _) = self
            .run(addr, &cmd, "ACL DELUSER", Duration::ZERO, Resend::Safe)
            .await?;
        match reply {
            redis::Value::Int(_) => Ok(()),
            other => Err(unexpected(addr, "an integer", &other)),
        }
    }

    /// `ACL SAVE` when the server keeps an ACL file (`aclfile` set), so that
    /// the users outlive a restart of the process; `false` when it keeps
    /// none (then nothing is saved).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn acl_save(&self, addr: SocketAddr) -> Result<bool, ProbeError> {
        let file = self.config_get(addr, "aclfile").await?;
        if file.as_deref().is_none_or(str::is_empty) {
            return Ok(false);
        }
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SAVE");
        let (reply, _) = self
            .run(addr, &cmd, "ACL SAVE", Duration::ZERO, Resend::Safe)
            .await?;
        expect_ok(addr, reply).map(|()| true)
    }

    /// `CONFIG SET <key> <secret>` for a setting whose value is a secret
    /// (`masterauth`): a refusal's text is redacted.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn config_set_secret(
        &self,
        addr: SocketAddr,
        key: &str,
        secret: &Password,
    ) -> Result<(), ProbeError> {
        self.config_set(addr, key, secret.expose())
            .await
            .map_err(|err| redact(err, secret))
    }

    /// `CONFIG GET <key>`: its value, `None` when the server has no such
    /// setting.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn config_get(
        &self,
        addr: SocketAddr,
        key: &str,
    ) -> Result<Option<String>, ProbeError> {
        Ok(self.config_get_matching(addr, key).await?.remove(key))
    }

    /// `ACL LIST`: every user's line (`user <name> on #<hash> ~* …`).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn acl_list(&self, addr: SocketAddr) -> Result<Vec<String>, ProbeError> {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("LIST");
        let (reply, _) = self
            .run(addr, &cmd, "ACL LIST", Duration::ZERO, Resend::Safe)
            .await?;
        let redis::Value::Array(items) = reply else {
            return Err(unexpected(addr, "an array", &reply));
        };
        items
            .into_iter()
            .map(|item| match item {
                redis::Value::BulkString(bytes) => {
                    String::from_utf8(bytes).map_err(|_| ProbeError::Protocol {
                        addr,
                        detail: "ACL LIST: a line is not UTF-8".to_owned(),
                    })
                }
                redis::Value::SimpleString(s) => Ok(s),
                other => Err(unexpected(addr, "a user line", &other)),
            })
            .collect()
    }
}

/// The line of each user among `wanted` that `lines` (an `ACL LIST`
/// reply) holds, by user name. A line holds the SHA-256 of each of the
/// user's passwords: it is never journaled, only its keyed digest.
pub fn acl_user_lines<'l>(lines: &'l [String], wanted: &[&str]) -> BTreeMap<String, &'l str> {
    lines
        .iter()
        .filter_map(|line| {
            let name = line.strip_prefix("user ")?.split(' ').next()?;
            wanted
                .contains(&name)
                .then(|| (name.to_owned(), line.as_str()))
        })
        .collect()
}

/// The users among `wanted` that `lines` (an `ACL LIST` reply) holds, each
/// with the digest of its line keyed with the cluster's fingerprint key
/// ([`FingerprintKey::acl_line`]): it changes with the user's rules or
/// password hashes, and reveals neither.
pub fn acl_users(
    lines: &[String],
    wanted: &[&str],
    key: &FingerprintKey,
) -> BTreeMap<String, String> {
    acl_user_lines(lines, wanted)
        .into_iter()
        .map(|(name, line)| (name, key.acl_line(line)))
        .collect()
}

/// The error with the password replaced by `***` wherever it appears.
fn redact(err: ProbeError, password: &Password) -> ProbeError {
    err.redact(password.expose())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn only_the_wanted_users_are_listed_with_keyed_digests_of_their_lines() {
        let key = FingerprintKey::from_bytes(&[7; 32]).unwrap();
        let lines = vec![
            "user app on #abc ~app:* resetchannels -@all +@all".to_owned(),
            "user default on #def ~* &* +@all".to_owned(),
            "user other off resetchannels -@all".to_owned(),
        ];
        let got = acl_users(&lines, &["app", "gone"], &key);
        assert_eq!(got.len(), 1);
        assert_eq!(got["app"], key.acl_line(&lines[0]));
        assert_eq!(got["app"].len(), 16);
        assert_ne!(got["app"], crate::credentials::unkeyed_digest(&lines[0]));
        assert_eq!(acl_user_lines(&lines, &["app"])["app"], lines[0]);
        // Another password hash, another digest.
        let changed = vec![lines[0].replace("#abc", "#abd")];
        assert_ne!(acl_users(&changed, &["app"], &key)["app"], got["app"]);
    }

    #[test]
    fn a_refusal_never_carries_the_password() {
        let addr: SocketAddr = "127.0.0.1:6379".parse().unwrap();
        let err = ProbeError::Rejected {
            addr,
            command: "ACL SETUSER",
            message: "ERR Error in ACL SETUSER modifier '>hunter2': bad".to_owned(),
        };
        let redacted = redact(err, &Password::new("hunter2")).to_string();
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(redacted.contains("'>***'"), "{redacted}");
    }
}
