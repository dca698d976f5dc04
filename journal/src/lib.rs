//! The journal engine (placeholder until the journal module lands).
