//! The CRC-64 an RDB ends with (`crc64.c`: the Jones polynomial
//! 0xad93d23594c935a9, reflected, no initial or final XOR; the catalogue's
//! CRC-64/REDIS), computed fast enough to run beside a download.
//!
//! A table-driven CRC-64 (the `crc` crate's, sliced by 16) does well under
//! 1 GiB/s here, about what SHA-256 with the SHA extensions does: checking a
//! restore's RDB cost as much CPU as hashing it. `crc-fast` folds the
//! bytes with carry-less multiplies (PCLMULQDQ, or VPCLMULQDQ on AVX-512;
//! PMULL on ARM), which it detects at run time, and falls back to a table
//! elsewhere: some ten times faster, so the CRC no longer counts beside the
//! hash. It is already linked (object_store's checksums), and it keeps the
//! `unsafe` those instructions need out of this workspace, which forbids it.
//!
//! This module only computes the value; what a mismatch means is the RDB
//! check's concern (`rdb_stream`).

use crc_fast::{CrcAlgorithm, Digest};

/// A CRC-64 (Jones) fed piece by piece. Any split of the bytes gives the
/// same value.
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest,
}

impl std::fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crc64")
            .field("value", &self.value())
            .finish()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Crc64::new()
    }
}

impl Crc64 {
    /// The CRC of no bytes (0).
    pub fn new() -> Self {
        Crc64 {
            digest: Digest::new(CrcAlgorithm::Crc64Redis),
        }
    }

    /// Adds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The CRC of everything added so far (more may still be added).
    pub fn value(&self) -> u64 {
        self.digest.finalize()
    }
}

/// The CRC-64 (Jones) of `bytes`.
pub fn crc64(bytes: &[u8]) -> u64 {
    let mut crc = Crc64::new();
    crc.update(bytes);
    crc.value()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crc::{CRC_64_REDIS, Crc, NoTable};

    /// The reference: the `crc` crate's bit-at-a-time CRC-64/REDIS, which
    /// shares no code with the folding one.
    static REFERENCE: Crc<u64, NoTable> = Crc::<u64, NoTable>::new(&CRC_64_REDIS);

    /// Pseudo-random bytes (xorshift64), reproducible.
    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn the_check_value_is_crc64_c_s() {
        // `crc64.c`'s own test and the catalogue's check value.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn every_length_up_to_a_few_folds_matches_the_reference() {
        // Below, at and above each width the folding works in (16, 64,
        // 128, 256 bytes and their neighbours), where a tail or a head
        // goes the table's way.
        let data = bytes(4096 + 64, 1);
        for len in 0..=2048 {
            let slice = &data[..len];
            assert_eq!(crc64(slice), REFERENCE.checksum(slice), "length {len}");
        }
        for len in [4095, 4096, 4097, 4096 + 63] {
            let slice = &data[..len];
            assert_eq!(crc64(slice), REFERENCE.checksum(slice), "length {len}");
        }
    }

    #[test]
    fn every_alignment_matches_the_reference() {
        // The same lengths starting at every offset within a cache line
        // and a 64-byte vector, so unaligned loads are exercised.
        let data = bytes(8192, 2);
        for offset in 0..64 {
            for len in [
                0, 1, 7, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 1000, 4097,
            ] {
                let slice = &data[offset..offset + len];
                assert_eq!(
                    crc64(slice),
                    REFERENCE.checksum(slice),
                    "offset {offset}, length {len}"
                );
            }
        }
    }

    #[test]
    fn any_split_into_pieces_gives_the_whole_value() {
        let data = bytes(3 * 4096 + 5, 3);
        let whole = REFERENCE.checksum(&data);
        for piece in [1, 3, 8, 15, 16, 17, 64, 100, 128, 129, 1000, 4096, 5000] {
            let mut crc = Crc64::new();
            for chunk in data.chunks(piece) {
                crc.update(chunk);
            }
            assert_eq!(crc.value(), whole, "pieces of {piece}");
        }
        // Uneven pieces, as a network stream hands them out.
        let mut crc = Crc64::new();
        let mut rest = data.as_slice();
        let mut size = 1;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at(size.min(rest.len()));
            crc.update(head);
            rest = tail;
            size = size * 7 % 1531 + 1;
        }
        assert_eq!(crc.value(), whole);
    }

    #[test]
    fn a_large_buffer_matches_the_table_driven_crc() {
        // Big enough for the widest folding loops to run many rounds.
        let data = bytes(3 << 20, 4);
        let table = Crc::<u64, crc::Table<16>>::new(&CRC_64_REDIS);
        assert_eq!(crc64(&data), table.checksum(&data));
    }

    #[test]
    fn a_single_flipped_bit_changes_the_value() {
        let mut data = bytes(100_000, 5);
        let before = crc64(&data);
        data[54_321] ^= 0x10;
        assert_ne!(crc64(&data), before);
        assert_eq!(crc64(&data), REFERENCE.checksum(&data));
    }
}
