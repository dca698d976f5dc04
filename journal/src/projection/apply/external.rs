//! The external-access family: where clients outside Kubernetes reach
//! each data pod.

use crate::event::Event;
use crate::external::{ExternalEndpoint, ExternalPart};
use crate::projection::ClusterState;
use crate::time::Timestamp;

impl ClusterState {
    /// Folds `ExternalSentinelsObserved` (the connection Secret carries
    /// them), `AnnouncedAddressObserved` (kept by pod), and
    /// `ExternalEndpointsObserved`: the endpoints replace the last
    /// ones (notable: clients and announcements follow them).
    pub(super) fn fold_external(&mut self, seq: u64, at: Timestamp, body: &Event) {
        if let Event::ExternalSentinelsObserved { sentinels } = body {
            self.observed();
            let summary = if sentinels.is_empty() {
                "no external address of the Sentinels".to_owned()
            } else {
                let at: Vec<String> = sentinels.iter().map(ExternalEndpoint::address).collect();
                format!("clients outside reach the Sentinels at {}", at.join(", "))
            };
            self.history(seq, at, body, summary);
            if self.external.sentinels != *sentinels {
                let hosts = self.external.hosts();
                self.external.sentinels.clone_from(sentinels);
                self.external.unpublished = true;
                if self.external.hosts() != hosts {
                    self.external.uncertified = true;
                }
            }
            return;
        }
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
            sentinels: before.sentinels.clone(),
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
