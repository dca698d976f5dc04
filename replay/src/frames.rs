//! Raw frame files: a stream's event frames from seq 1, concatenated
//! exactly as the store holds them. The golden journals under
//! `tests/golden/` are kept in this form, so they are the journal's own
//! bytes and every later build must read them.

use logbook_journal::codec::{self, MAX_EVENT_PAYLOAD};
use logbook_journal::{ChainHash, EncodedEvent, Envelope};

/// Walks the frames of seqs 1, 2, … in `bytes`, checking each frame
/// (length, CRC, version, seq) and its link, and hands each with its
/// decoded envelope to `each`.
fn walk(bytes: &[u8], mut each: impl FnMut(&[u8], Envelope)) -> Result<(), String> {
    let mut rest = bytes;
    let mut offset = 0usize;
    let mut prev = ChainHash::GENESIS;
    let mut seq = 1u64;
    while !rest.is_empty() {
        let (_, used) = codec::parse_frame(rest, MAX_EVENT_PAYLOAD)
            .map_err(|e| format!("frame of seq {seq} at byte {offset}: {e}"))?;
        let (frame, tail) = rest.split_at_checked(used).unwrap_or((rest, &[]));
        let envelope = codec::decode_event(frame, seq, &prev)
            .map_err(|e| format!("frame of seq {seq} at byte {offset}: {e}"))?;
        prev = envelope.hash;
        each(frame, envelope);
        rest = tail;
        offset = offset.saturating_add(used);
        seq = seq.saturating_add(1);
    }
    Ok(())
}

/// Splits `bytes` into the frames of seqs 1, 2, …, checking each frame and
/// its link.
///
/// # Errors
/// A message naming the seq and byte offset of the first bad frame.
pub fn split(bytes: &[u8]) -> Result<Vec<EncodedEvent>, String> {
    let mut events = Vec::new();
    walk(bytes, |frame, envelope| {
        events.push(EncodedEvent {
            seq: envelope.seq,
            hash: envelope.hash,
            frame: frame.to_vec(),
        });
    })?;
    Ok(events)
}

/// The events of `bytes`, decoded and checked as [`split`] checks them.
///
/// # Errors
/// As [`split`].
pub fn envelopes(bytes: &[u8]) -> Result<Vec<Envelope>, String> {
    let mut events = Vec::new();
    walk(bytes, |_, envelope| events.push(envelope))?;
    Ok(events)
}

/// Concatenates frames into a frame file's bytes.
#[must_use]
pub fn join(events: &[EncodedEvent]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|e| e.frame.iter().copied())
        .collect()
}
