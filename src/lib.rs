//! Logbook, the operator library.
