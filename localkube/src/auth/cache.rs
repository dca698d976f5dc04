//! The compiled [`Policy`], rebuilt only after a stored change to an RBAC
//! object: an operator's end-to-end run makes thousands of requests and
//! a handful of RBAC writes, so each request costs one counter read.

use std::sync::Arc;

use parking_lot::Mutex;

use super::rbac::Policy;
use crate::store::Store;

/// The policy as of an RBAC generation of the store.
#[derive(Debug, Default)]
pub(crate) struct PolicyCache(Mutex<Option<(u64, Arc<Policy>)>>);

impl PolicyCache {
    /// The policy current for `store`'s RBAC objects.
    pub(crate) fn current(&self, store: &Store) -> Arc<Policy> {
        let generation = store.rbac_generation();
        if let Some((g, p)) = self.0.lock().as_ref()
            && *g == generation
        {
            return p.clone();
        }
        // Read the objects and their generation under one store lock, so a
        // write racing this rebuild makes the next request rebuild again.
        let (generation, objects) = store.rbac_objects();
        let policy = Arc::new(Policy::compile(&objects));
        *self.0.lock() = Some((generation, policy.clone()));
        policy
    }
}
