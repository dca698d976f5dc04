//! The external-access family: where clients outside Kubernetes reach
//! each data pod.

use crate::event::Event;
use crate::external::ExternalPart;
use crate::projection::ClusterState;
use crate::time::Timestamp;

impl ClusterState {
    /// Folds `AnnouncedAddressObserved` (kept by pod), and
    /// `ExternalEndpointsObserved`: the endpoints replace the last
    /// ones (notable: clients and announcements follow them).
    pub(super) fn fold_external(&mut self, seq: u64, at: Timestamp, body: &Event) {
        if let Event::AnnouncedAddressObserved { pod, announced } = body {
            self.observed();
            self.external
                .announced
                .insert(pod.clone(), announced.clone());
            return;
        }
        let Event::ExternalEndpointsObserved {
            enabled,
            pods,
            primary,
            waiting,
        } = body
        else {
            return;
        };
        self.observed();
        let summary = if *enabled {
            let mut parts: Vec<String> = pods
                .iter()
                .map(|(pod, e)| format!("{pod} at {}", e.describe()))
                .collect();
            if let Some(p) = primary {
                parts.push(format!("the primary at {}", p.describe()));
            }
            parts.extend(waiting.iter().map(|(what, why)| format!("{what}: {why}")));
            format!("external access: {}", parts.join(", "))
        } else {
            "external access off".to_owned()
        };
        self.history(seq, at, body, summary);
        let before = std::mem::take(&mut self.external);
        let mut now = ExternalPart {
            enabled: *enabled,
            pods: pods.clone(),
            primary: primary.clone(),
            waiting: waiting.clone(),
            announced: before.announced.clone(),
            unpublished: before.unpublished,
            uncertified: before.uncertified,
        };
        if now.pods != before.pods || now.primary != before.primary {
            now.unpublished = true;
        }
        if now.hosts() != before.hosts() {
            now.uncertified = true;
        }
        self.external = now;
    }
}
