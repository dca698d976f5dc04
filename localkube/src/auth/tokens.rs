//! ServiceAccount tokens, as the TokenRequest API issues them: random,
//! opaque (not JWTs: nothing but this server reads them), held in memory
//! only (a restarted server has forgotten them, as if its signing key had
//! rotated) and bound to the ServiceAccount's uid, so deleting — or
//! deleting and recreating — the ServiceAccount invalidates them, as it
//! does a real bound token.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::UserInfo;
use crate::error::ApiError;
use crate::obj;
use crate::store::Store;

/// A token the TokenRequest API handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// When it stops being accepted.
    pub expires: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Entry {
    namespace: String,
    name: String,
    uid: String,
    expires: DateTime<Utc>,
}

/// The live tokens (cheap to clone; clones share them).
#[derive(Debug, Clone, Default)]
pub struct TokenStore(Arc<Mutex<HashMap<String, Entry>>>);

fn service_account(store: &Store, namespace: &str, name: &str) -> Result<String, ApiError> {
    let sa = store.get("v1", "serviceaccounts", Some(namespace), name)?;
    Ok(obj::uid(&sa).to_owned())
}

impl TokenStore {
    /// Issues a token for the ServiceAccount `name` of `namespace`, valid
    /// for `seconds` from `now`.
    ///
    /// # Errors
    /// 404 (`serviceaccounts "x" not found`) when it does not exist.
    pub fn issue(
        &self,
        store: &Store,
        namespace: &str,
        name: &str,
        seconds: i64,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, ApiError> {
        let uid = service_account(store, namespace, name)?;
        let token = format!(
            "localkube-sa.{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let expires = now + chrono::Duration::seconds(seconds);
        let mut tokens = self.0.lock();
        // Forget dead tokens as new ones come, so the map stays bounded
        // by the tokens alive at once.
        tokens.retain(|_, e| e.expires > now);
        tokens.insert(
            token.clone(),
            Entry {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                uid,
                expires,
            },
        );
        Ok(IssuedToken { token, expires })
    }

    /// The ServiceAccount `token` authenticates as, if it is live: issued
    /// here, not expired, and its ServiceAccount still the one it was
    /// issued for.
    pub fn resolve(&self, store: &Store, token: &str, now: DateTime<Utc>) -> Option<UserInfo> {
        let entry = self.0.lock().get(token).cloned()?;
        if entry.expires <= now {
            self.0.lock().remove(token);
            return None;
        }
        match service_account(store, &entry.namespace, &entry.name) {
            Ok(uid) if uid == entry.uid => {
                Some(UserInfo::service_account(&entry.namespace, &entry.name))
            }
            _ => {
                self.0.lock().remove(token);
                None
            }
        }
    }
}
