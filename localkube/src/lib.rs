//! localkube: an embedded Kubernetes API server for local runs and tests of
//! Logbook. A test and local-run harness only: the operator never depends on
//! it and must behave the same against a real cluster.

pub mod listtype;
pub mod patch;
pub mod schema;
