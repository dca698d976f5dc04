//! Backups: the S3 bucket they live in (`store`) and the data paths that
//! stream a node's RDB into it and back out, checked (`transfer`, with the
//! workers that check and write beside a download, `piece_workers`, and
//! the writer's early writeback, `writeback`); a destination's Secret
//! (`credentials`), one shard of an attempt (`run`) and the manifest that
//! proves a backup whole (`manifest`); the continuous archive's format
//! (`segment`) and its writer (`archiver`).

pub mod archiver;
pub mod credentials;
pub mod manifest;
pub mod piece_workers;
pub mod pitr;
pub mod run;
pub mod segment;
pub mod store;
pub mod transfer;
mod writeback;

pub use run::NodeAccess;

pub use store::{
    BackupStore, Download, ObjectInfo, PART_SIZE, S3Credentials, S3Target, StoreError, Upload,
    UploadReceipt,
};
pub use transfer::{
    NodeBackup, NodeVerified, TransferError, backup_node, fetch_to_file, verify_object,
};
