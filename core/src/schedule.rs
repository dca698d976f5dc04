//! The backup schedule's next fire time, as the journal says it was last
//! handled: a deadline the decisions wait for, computed, not read off a
//! clock.

use logbook_crds::v1alpha1::next_fire_ms;
use logbook_journal::ClusterState;

/// The schedule's next fire time after what was last handled, in Unix
/// milliseconds (`None`: no schedule).
pub fn next_fire(state: &ClusterState) -> Option<i64> {
    let (schedule, since) = state.backups.schedule.as_ref()?;
    let after = state
        .backups
        .last_due
        .as_ref()
        .map_or(*since, |(at, _)| (*at).max(*since));
    next_fire_ms(schedule, after.as_micros() / 1000)
}
