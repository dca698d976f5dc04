//! Faults on the pods of the node a test runs on: localkube's kubelet
//! (host processes) or the real node (containers), shared with the soak.

pub use logbook::local::pod_faults::PodFaults;
