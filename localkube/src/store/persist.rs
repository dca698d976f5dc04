//! Optional sled persistence of the objects and the resourceVersion
//! counter, so a restarted localkube comes back with its objects. Watch
//! history is not kept: a watch from before the restart gets 410 Gone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::Key;

/// A persistence failure.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// sled failed.
    #[error("state store {path}: {source}")]
    Sled {
        /// The state directory.
        path: String,
        /// The cause.
        #[source]
        source: sled::Error,
    },
    /// A stored object is not JSON.
    #[error("state store: corrupt object {key}: {source}")]
    Corrupt {
        /// The object's key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The sled database of a state directory.
pub struct Persist {
    db: sled::Db,
    objects: sled::Tree,
    path: String,
}

const RV_KEY: &[u8] = b"resourceVersion";

fn encode_key(k: &Key) -> Vec<u8> {
    // NUL cannot occur in groups, resources, namespaces or names.
    format!("{}\0{}\0{}\0{}", k.0, k.1, k.2, k.3).into_bytes()
}

fn decode_key(b: &[u8]) -> Option<Key> {
    let s = std::str::from_utf8(b).ok()?;
    let mut it = s.split('\0');
    Some((
        it.next()?.to_owned(),
        it.next()?.to_owned(),
        it.next()?.to_owned(),
        it.next()?.to_owned(),
    ))
}

impl Persist {
    /// Opens (or creates) the database under `dir`.
    ///
    /// # Errors
    /// [`PersistError::Sled`] when sled cannot open it.
    pub fn open(dir: &Path) -> Result<Self, PersistError> {
        let path = dir.display().to_string();
        let err = |source| PersistError::Sled {
            path: path.clone(),
            source,
        };
        let db = sled::open(dir.join("localkube.sled")).map_err(err)?;
        let objects = db.open_tree("objects").map_err(err)?;
        Ok(Self { db, objects, path })
    }

    /// Every stored object and the resourceVersion counter.
    ///
    /// # Errors
    /// [`PersistError`] on a read failure or a corrupt object.
    pub fn load(&self) -> Result<(BTreeMap<Key, Arc<Value>>, u64), PersistError> {
        let mut out = BTreeMap::new();
        for item in self.objects.iter() {
            let (k, v) = item.map_err(|source| self.sled(source))?;
            let Some(key) = decode_key(&k) else { continue };
            let value: Value =
                serde_json::from_slice(&v).map_err(|source| PersistError::Corrupt {
                    key: format!("{key:?}"),
                    source,
                })?;
            out.insert(key, Arc::new(value));
        }
        let rv = self
            .db
            .get(RV_KEY)
            .map_err(|source| self.sled(source))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Ok((out, rv))
    }

    fn sled(&self, source: sled::Error) -> PersistError {
        PersistError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores `value` at `key` and the counter `rv`.
    ///
    /// # Errors
    /// [`PersistError::Sled`].
    pub fn put(&self, key: &Key, value: &Value, rv: u64) -> Result<(), PersistError> {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.objects
            .insert(encode_key(key), bytes)
            .map_err(|e| self.sled(e))?;
        self.db
            .insert(RV_KEY, &rv.to_be_bytes())
            .map_err(|e| self.sled(e))?;
        Ok(())
    }

    /// Removes `key` and stores the counter `rv`.
    ///
    /// # Errors
    /// [`PersistError::Sled`].
    pub fn remove(&self, key: &Key, rv: u64) -> Result<(), PersistError> {
        self.objects
            .remove(encode_key(key))
            .map_err(|e| self.sled(e))?;
        self.db
            .insert(RV_KEY, &rv.to_be_bytes())
            .map_err(|e| self.sled(e))?;
        Ok(())
    }

    /// Flushes to disk (on shutdown).
    pub fn flush(&self) {
        if let Err(e) = self.db.flush() {
            tracing::warn!(path = %self.path, error = %e, "localkube: flushing the state store failed");
        }
    }
}
