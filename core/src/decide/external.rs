//! What every topology that announces an external endpoint decides the
//! same way (`spec.externalAccess`): whether a pod's announcement is one
//! to judge, and the `Announce` that corrects it. What a pod should
//! announce is its topology's to say (a Cluster node's line, a Sentinel
//! cluster's `replica-announce-*`).

use logbook_journal::{ExternalEndpoint, ExternalPart, Intent, ReasonCode};

use super::Decision;

/// What `pod` was last seen announcing and the endpoint it should
/// announce, when its announcement is one to judge: it was ever journaled
/// (a cluster never exposed decides nothing), and with external access on
/// its endpoint is known (one not known yet is left as it booted, from
/// the boot ConfigMap, which the next observation confirms or corrects).
pub fn judged<'a>(
    external: &'a ExternalPart,
    pod: &str,
) -> Option<(&'a str, Option<&'a ExternalEndpoint>)> {
    let announced = external.announced.get(pod)?;
    let endpoint = external.wanted(pod);
    if external.enabled && endpoint.is_none() {
        return None;
    }
    Some((announced.as_str(), endpoint))
}

/// `Announce` of `endpoint` (`None`: its own address `pod_ip`) to `pod`,
/// which announces `announced` rather than `wanted`, for `why`.
pub fn announce(
    pod: &str,
    pod_ip: &str,
    endpoint: Option<&ExternalEndpoint>,
    announced: &str,
    wanted: String,
    why: String,
) -> Decision {
    Decision::new(
        Intent::Announce {
            pod: pod.to_owned(),
            pod_ip: pod_ip.to_owned(),
            endpoint: endpoint.cloned(),
        },
        ReasonCode::AnnouncedAddressStale {
            announced: announced.to_owned(),
            wanted,
        },
        why,
    )
}
