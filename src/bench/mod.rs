//! `logbook bench`: failover and switchover measurements with references.
