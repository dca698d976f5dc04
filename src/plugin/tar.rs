//! A gzipped ustar archive of in-memory files, for support bundles: one
//! 512-byte header per file (POSIX ustar, the format every `tar` reads),
//! the data padded to 512 bytes, two zero blocks at the end.
//!
//! Only what a bundle needs: regular files, mode 0644, one mtime.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

const BLOCK: usize = 512;

/// Writes `files` (`path`, contents) as a `.tar.gz` to `out`.
///
/// # Errors
/// Output errors; [`io::ErrorKind::InvalidInput`] for a path ustar cannot
/// hold (over 255 bytes, or no `/` to split it at past 100).
pub fn write_tar_gz(out: impl Write, files: &[(String, Vec<u8>)], mtime: u64) -> io::Result<()> {
    let mut gz = GzEncoder::new(out, Compression::default());
    for (path, data) in files {
        gz.write_all(&header(path, data.len(), mtime)?)?;
        gz.write_all(data)?;
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        gz.write_all(&vec![0u8; pad])?;
    }
    gz.write_all(&[0u8; 2 * BLOCK])?;
    gz.finish()?.flush()
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// Copies `bytes` into `block` at `at`; the fields are laid out so they
/// always fit.
fn put(block: &mut [u8; BLOCK], at: usize, bytes: &[u8]) -> io::Result<()> {
    block
        .get_mut(at..at.saturating_add(bytes.len()))
        .ok_or_else(|| invalid(format!("tar header field at {at} overflows")))?
        .copy_from_slice(bytes);
    Ok(())
}

/// `value` as `width - 1` octal digits and a NUL.
fn octal(value: u64, width: usize) -> Vec<u8> {
    let mut text = format!("{value:0>digits$o}", digits = width.saturating_sub(1)).into_bytes();
    text.push(0);
    text
}

/// Splits a path into ustar's `prefix` (≤ 155) and `name` (≤ 100).
fn split(path: &str) -> io::Result<(&str, &str)> {
    if path.len() <= 100 {
        return Ok(("", path));
    }
    path.char_indices()
        .filter(|(_, c)| *c == '/')
        .map(|(i, _)| i)
        .find(|&i| i <= 155 && path.len().saturating_sub(i.saturating_add(1)) <= 100)
        .and_then(|i| Some((path.get(..i)?, path.get(i.saturating_add(1)..)?)))
        .ok_or_else(|| invalid(format!("path too long for a tar archive: {path}")))
}

fn header(path: &str, size: usize, mtime: u64) -> io::Result<[u8; BLOCK]> {
    let (prefix, name) = split(path)?;
    let mut block = [0u8; BLOCK];
    put(&mut block, 0, name.as_bytes())?;
    put(&mut block, 100, &octal(0o644, 8))?;
    put(&mut block, 108, &octal(0, 8))?;
    put(&mut block, 116, &octal(0, 8))?;
    put(
        &mut block,
        124,
        &octal(u64::try_from(size).unwrap_or(u64::MAX), 12),
    )?;
    put(&mut block, 136, &octal(mtime, 12))?;
    // The checksum is computed with its own field as spaces.
    put(&mut block, 148, b"        ")?;
    put(&mut block, 156, b"0")?;
    put(&mut block, 257, b"ustar\0")?;
    put(&mut block, 263, b"00")?;
    put(&mut block, 345, prefix.as_bytes())?;
    let sum: u64 = block.iter().map(|b| u64::from(*b)).sum();
    let mut field = format!("{sum:06o}").into_bytes();
    field.extend_from_slice(&[0, b' ']);
    put(&mut block, 148, &field)?;
    Ok(block)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn system_tar_reads_it_back() {
        let long = format!("bundle/{}/file.txt", "d".repeat(120));
        let files = vec![
            ("bundle/a.txt".to_owned(), b"hello\n".to_vec()),
            ("bundle/empty".to_owned(), Vec::new()),
            (long.clone(), vec![b'x'; 1500]),
        ];
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("b.tar.gz");
        write_tar_gz(
            std::fs::File::create(&archive).unwrap(),
            &files,
            1_700_000_000,
        )
        .unwrap();
        let status = std::process::Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read(dir.path().join("bundle/a.txt")).unwrap(),
            b"hello\n"
        );
        assert!(
            std::fs::read(dir.path().join("bundle/empty"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(std::fs::read(dir.path().join(&long)).unwrap().len(), 1500);
    }

    #[test]
    fn a_path_that_cannot_be_split_is_refused() {
        let path = "x".repeat(300);
        assert!(header(&path, 0, 0).is_err());
    }
}
