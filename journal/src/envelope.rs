//! `Envelope`: one event with its position, identity, time, cause, writer
//! epoch and chain links.
//!
//! Only the *core* (`seq`, `id`, `at`, `cause`, `epoch`, `body`, in that
//! order) is encoded; `hash` follows it in the frame and `prev` is never
//! stored — it is the previous frame's hash (or the snapshot's / the
//! genesis), which the reader already holds.

use uuid::Uuid;

use crate::event::Event;
use crate::ids::ChainHash;
use crate::time::Timestamp;

/// An event as stored in, and read from, a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Position in the stream: gapless, strictly increasing, from 1.
    pub seq: u64,
    /// UUID v7 of this event (time-ordered).
    pub id: Uuid,
    /// When it was appended.
    pub at: Timestamp,
    /// The event that caused this one (observation → decision → outcome).
    pub cause: Option<Uuid>,
    /// Leadership epoch of the writer, for fencing.
    pub epoch: u64,
    /// The fact itself.
    pub body: Event,
    /// Chain hash of the previous event ([`ChainHash::GENESIS`] for seq 1).
    pub prev: ChainHash,
    /// Chain hash of this event.
    pub hash: ChainHash,
}
