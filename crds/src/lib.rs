//! The ValkeyCluster API (placeholder until the crds module lands).
