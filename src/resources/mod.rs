//! Object builders: the Kubernetes objects of one ValkeyCluster, rendered
//! from its spec. Pure: no client, no I/O.
