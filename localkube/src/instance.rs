//! A localkube instance's share of the machine, so that several instances
//! (parallel tests, a demo beside a test run) never collide.
//!
//! An instance holds an exclusive `flock` on `<lock dir>/instance-<n>.lock`
//! for a number `n` in [`FIRST`]..=[`LAST`] for as long as it lives; the lock
//! is released by the kernel when the process exits, even on a crash, so a
//! stale file never blocks a later run. Instance `n` owns the loopback
//! block `127.n.0.0/16`: pod addresses `127.n.1.1`–`127.n.199.254`,
//! ClusterIPs `127.n.200.1`–`127.n.253.254`, load-balancer addresses
//! `127.n.254.1`–`127.n.254.253` and the node's own address
//! `127.n.255.254` (where NodePorts listen; not `127.0.0.1`, which every
//! instance shares). The first numbers are skipped
//! because `127.0.0.1`, `127.0.1.1` (Debian's hostname entry) and
//! `127.0.0.53` (a stub resolver) are in use on ordinary machines.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// The lowest instance number handed out.
pub const FIRST: u8 = 16;
/// The highest instance number handed out.
pub const LAST: u8 = 250;

/// How many pod addresses an instance has.
pub const POD_ADDRESSES: u32 = 199 * 254;
/// How many ClusterIPs an instance has.
pub const SERVICE_ADDRESSES: u32 = 54 * 254;

/// An inclusive range of IPv4 addresses (an instance's load-balancer
/// addresses), handed to whatever assigns from it as a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressBlock {
    first: u32,
    last: u32,
}

impl AddressBlock {
    /// `first`..=`last`; None when `last` comes before `first`.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Option<Self> {
        let (first, last) = (u32::from(first), u32::from(last));
        (first <= last).then_some(Self { first, last })
    }

    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip))
    }

    /// Its addresses, lowest first.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        (self.first..=self.last).map(Ipv4Addr::from)
    }

    /// Its first address.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first)
    }

    /// Its last address.
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.last)
    }
}

/// Why no instance number could be had.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The lock directory cannot be created or a lock file opened.
    #[error("cannot use the lock directory {dir}: {source}")]
    LockDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Every instance number is held by a running localkube.
    #[error("all {} localkube instance numbers are in use (locks in {dir})", LAST - FIRST + 1)]
    Exhausted {
        /// The directory holding the locks.
        dir: PathBuf,
    },
}

/// Which addresses an instance's pods and Services get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// `127.n.0.0/16` (localkube; see the module docs).
    Loopback,
    /// Pods in `198.18.n.0/24` (`.254` is the API server's), ClusterIPs
    /// in `198.19.n.0/25`, load-balancer addresses `198.19.n.129`–`.253`
    /// and the node's address `198.19.n.254`, all added to `lo` while the
    /// node runs ([`Instance::add_addresses`]): a real
    /// API server refuses loopback addresses in EndpointSlices
    /// (`ValidateEndpointIP`), so a node of a real control plane takes its
    /// addresses from the benchmarking block (RFC 2544), which no real
    /// network routes. 253 pods (a real node's default capacity is 110).
    Benchmark,
}

/// A held instance number; dropping it releases the number.
#[derive(Debug)]
pub struct Instance {
    number: u8,
    network: Network,
    _lock: Flock<File>,
}

impl Instance {
    /// The default lock directory: `$LOCALKUBE_LOCK_DIR`, else
    /// `/run/localkube` when writable, else the temp dir.
    pub fn default_lock_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("LOCALKUBE_LOCK_DIR") {
            return PathBuf::from(dir);
        }
        let run = Path::new("/run/localkube");
        if std::fs::create_dir_all(run).is_ok() {
            return run.to_path_buf();
        }
        std::env::temp_dir().join("localkube-locks")
    }

    /// Takes the first free instance number.
    ///
    /// # Errors
    /// [`InstanceError`] when the lock directory is unusable or every
    /// number is taken.
    pub fn acquire(lock_dir: &Path) -> Result<Self, InstanceError> {
        std::fs::create_dir_all(lock_dir).map_err(|source| InstanceError::LockDir {
            dir: lock_dir.to_path_buf(),
            source,
        })?;
        for number in FIRST..=LAST {
            let path = lock_dir.join(format!("instance-{number}.lock"));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|source| InstanceError::LockDir {
                    dir: lock_dir.to_path_buf(),
                    source,
                })?;
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                return Ok(Self {
                    number,
                    network: Network::Loopback,
                    _lock: lock,
                });
            }
        }
        Err(InstanceError::Exhausted {
            dir: lock_dir.to_path_buf(),
        })
    }

    /// The instance number (the second octet of every address it owns).
    pub fn number(&self) -> u8 {
        self.number
    }

    /// The same instance with its pods and Services in `network`.
    #[must_use]
    pub fn with_network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Where its pods and Services live.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Pod address number `index` (0-based), or `None` past the block.
    pub fn pod_ip(&self, index: u32) -> Option<Ipv4Addr> {
        match self.network {
            Network::Loopback => (index < POD_ADDRESSES).then(|| {
                let third = 1 + index / 254;
                let fourth = 1 + index % 254;
                Ipv4Addr::new(127, self.number, octet(third), octet(fourth))
            }),
            // .254 is the API server's (see `api_address`).
            Network::Benchmark => {
                (index < 253).then(|| Ipv4Addr::new(198, 18, self.number, octet(1 + index)))
            }
        }
    }

    /// Where a real API server whose node this instance is listens, so
    /// that its `kubernetes` Service has an endpoint (the API server
    /// refuses a loopback one) and pods reach it (their own `127.0.0.1` is
    /// themselves): `198.18.n.254` with [`Network::Benchmark`]; none with
    /// [`Network::Loopback`].
    pub fn api_address(&self) -> Option<Ipv4Addr> {
        match self.network {
            Network::Loopback => None,
            Network::Benchmark => Some(Ipv4Addr::new(198, 18, self.number, 254)),
        }
    }

    /// The blocks of [`Network::Benchmark`] (pods, then Services), as
    /// `ip addr` takes them; none for [`Network::Loopback`], which `lo`
    /// holds already.
    pub fn blocks(&self) -> Vec<String> {
        match self.network {
            Network::Loopback => Vec::new(),
            Network::Benchmark => vec![
                format!("198.18.{}.0/24", self.number),
                format!("198.19.{}.0/24", self.number),
            ],
        }
    }

    /// Adds [`Instance::blocks`] to `lo` (needs CAP_NET_ADMIN); an address
    /// already there is fine.
    ///
    /// # Errors
    /// `ip` failed, with its message.
    pub fn add_addresses(&self) -> Result<(), String> {
        for block in self.blocks() {
            let out = std::process::Command::new("ip")
                .args(["addr", "replace", &block, "dev", "lo"])
                .output()
                .map_err(|e| format!("cannot run `ip addr replace {block} dev lo`: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "`ip addr replace {block} dev lo` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    }

    /// Removes [`Instance::blocks`] from `lo`.
    pub fn remove_addresses(&self) {
        for block in self.blocks() {
            let _ = std::process::Command::new("ip")
                .args(["addr", "del", &block, "dev", "lo"])
                .output();
        }
    }

    /// The address prefixes (up to a dot) of its pods and ClusterIPs, as
    /// a client tells this instance's hosts from another's.
    pub fn host_prefixes(&self) -> Vec<String> {
        match self.network {
            Network::Loopback => vec![format!("127.{}.", self.number)],
            Network::Benchmark => vec![
                format!("198.18.{}.", self.number),
                format!("198.19.{}.", self.number),
            ],
        }
    }

    /// Whether `ip` is one of its ClusterIPs.
    pub fn owns_service_ip(&self, ip: Ipv4Addr) -> bool {
        let [a, b, c, d] = ip.octets();
        match self.network {
            Network::Loopback => a == 127 && b == self.number && (200..=253).contains(&c),
            Network::Benchmark => a == 198 && b == 19 && c == self.number && d < 128,
        }
    }

    /// The node's address: where NodePort Services listen, the Node's
    /// InternalIP (ExternalIP beside a kubelet API on `127.0.0.1`) and
    /// pods' `status.hostIP`. Neither a pod's address, a ClusterIP nor a
    /// load-balancer address: `127.n.255.254` ([`Network::Loopback`]),
    /// `198.19.n.254` ([`Network::Benchmark`]; `198.18.n.254` is the API
    /// server's).
    pub fn node_ip(&self) -> Ipv4Addr {
        match self.network {
            Network::Loopback => Ipv4Addr::new(127, self.number, 255, 254),
            Network::Benchmark => Ipv4Addr::new(198, 19, self.number, 254),
        }
    }

    /// The addresses `type: LoadBalancer` Services get:
    /// `127.n.254.1`–`127.n.254.253` ([`Network::Loopback`]),
    /// `198.19.n.129`–`198.19.n.253` ([`Network::Benchmark`]).
    pub fn load_balancer_block(&self) -> AddressBlock {
        let (first, last) = match self.network {
            Network::Loopback => (
                Ipv4Addr::new(127, self.number, 254, 1),
                Ipv4Addr::new(127, self.number, 254, 253),
            ),
            Network::Benchmark => (
                Ipv4Addr::new(198, 19, self.number, 129),
                Ipv4Addr::new(198, 19, self.number, 253),
            ),
        };
        AddressBlock {
            first: u32::from(first),
            last: u32::from(last),
        }
    }

    /// ClusterIP number `index` (0-based), or `None` past the block.
    pub fn service_ip(&self, index: u32) -> Option<Ipv4Addr> {
        (index < SERVICE_ADDRESSES).then(|| {
            let third = 200 + index / 254;
            let fourth = 1 + index % 254;
            Ipv4Addr::new(127, self.number, octet(third), octet(fourth))
        })
    }

    /// The ClusterIP range to give a real API server whose node this
    /// instance is (`--service-cluster-ip-range`): the first 8 × 256
    /// addresses of the instance's ClusterIP block ([`Network::Loopback`]),
    /// the lower half of `198.19.n.0/24` ([`Network::Benchmark`]; the upper
    /// half holds the load-balancer and node addresses).
    pub fn service_cidr(&self) -> String {
        match self.network {
            Network::Loopback => format!("127.{}.200.0/21", self.number),
            Network::Benchmark => format!("198.19.{}.0/25", self.number),
        }
    }

    /// Whether `ip` is a pod address of this instance.
    pub fn owns_pod_ip(&self, ip: Ipv4Addr) -> bool {
        let [a, b, c, d] = ip.octets();
        match self.network {
            Network::Loopback => {
                a == 127 && b == self.number && (1..200).contains(&c) && (1..255).contains(&d)
            }
            Network::Benchmark => a == 198 && b == 18 && c == self.number && (1..254).contains(&d),
        }
    }
}

fn octet(v: u32) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn two_instances_never_share_a_number_and_a_dropped_one_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Instance::acquire(dir.path()).unwrap();
        let b = Instance::acquire(dir.path()).unwrap();
        assert_ne!(a.number(), b.number());
        let freed = a.number();
        drop(a);
        let c = Instance::acquire(dir.path()).unwrap();
        assert_eq!(c.number(), freed);
    }

    #[test]
    fn addresses_stay_in_the_instance_block() {
        let dir = tempfile::tempdir().unwrap();
        let i = Instance::acquire(dir.path()).unwrap();
        let n = i.number();
        assert_eq!(i.pod_ip(0), Some(Ipv4Addr::new(127, n, 1, 1)));
        assert_eq!(i.pod_ip(254), Some(Ipv4Addr::new(127, n, 2, 1)));
        assert_eq!(
            i.pod_ip(POD_ADDRESSES - 1),
            Some(Ipv4Addr::new(127, n, 199, 254))
        );
        assert_eq!(i.pod_ip(POD_ADDRESSES), None);
        assert_eq!(i.service_ip(0), Some(Ipv4Addr::new(127, n, 200, 1)));
        assert_eq!(
            i.service_ip(SERVICE_ADDRESSES - 1),
            Some(Ipv4Addr::new(127, n, 253, 254))
        );
        assert!(i.owns_pod_ip(Ipv4Addr::new(127, n, 3, 9)));
        assert!(!i.owns_pod_ip(Ipv4Addr::new(127, n, 200, 9)));
    }

    #[test]
    fn the_node_and_load_balancer_addresses_are_nobody_elses() {
        let dir = tempfile::tempdir().unwrap();
        let loopback = Instance::acquire(dir.path()).unwrap();
        let bench = Instance::acquire(dir.path())
            .unwrap()
            .with_network(Network::Benchmark);
        for i in [&loopback, &bench] {
            let node = i.node_ip();
            let lb = i.load_balancer_block();
            assert_ne!(node, Ipv4Addr::LOCALHOST);
            assert!(!i.owns_pod_ip(node) && !i.owns_service_ip(node) && !lb.contains(node));
            assert!(Some(node) != i.api_address());
            for ip in lb.addresses() {
                assert!(!i.owns_pod_ip(ip) && !i.owns_service_ip(ip), "{ip}");
                assert!(Some(ip) != i.api_address());
            }
            assert!(
                i.host_prefixes()
                    .iter()
                    .any(|p| node.to_string().starts_with(p))
            );
        }
        assert_eq!(lb_count(&loopback), 253);
        assert_eq!(lb_count(&bench), 125);
        // The real API server's range holds only ClusterIPs.
        assert_eq!(
            bench.service_cidr(),
            format!("198.19.{}.0/25", bench.number())
        );
        let n = loopback.number();
        assert!(loopback.owns_service_ip(Ipv4Addr::new(127, n, 253, 254)));
        assert!(!loopback.owns_service_ip(Ipv4Addr::new(127, n, 254, 1)));
    }

    fn lb_count(i: &Instance) -> usize {
        i.load_balancer_block().addresses().count()
    }
}
