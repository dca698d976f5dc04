//! The protobuf wire format, read-only and bounds-checked: keys, varints,
//! length-delimited fields, and skipping fields a table does not name.

use super::ProtobufError;

/// A cursor over one message's bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The next (field number, wire type), or None at the end.
    pub(super) fn key(&mut self) -> Result<Option<(u64, u64)>, ProtobufError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, k & 7)))
    }

    pub(super) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut out = 0u64;
        for (i, b) in self.buf.iter().enumerate().take(10) {
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = self.buf.get(i + 1..).unwrap_or_default();
                return Ok(out);
            }
        }
        if self.buf.len() < 10 {
            Err(ProtobufError::Truncated)
        } else {
            Err(ProtobufError::Overflow)
        }
    }

    /// A length-delimited field's bytes.
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], ProtobufError> {
        let len = usize::try_from(self.varint()?).map_err(|_| ProtobufError::Truncated)?;
        let (head, rest) = self
            .buf
            .split_at_checked(len)
            .ok_or(ProtobufError::Truncated)?;
        self.buf = rest;
        Ok(head)
    }

    fn advance(&mut self, n: usize) -> Result<(), ProtobufError> {
        self.buf = self.buf.get(n..).ok_or(ProtobufError::Truncated)?;
        Ok(())
    }

    /// Skips a field of wire type `wt`.
    pub(super) fn skip(&mut self, wt: u64) -> Result<(), ProtobufError> {
        match wt {
            0 => self.varint().map(drop),
            1 => self.advance(8),
            2 => self.bytes().map(drop),
            5 => self.advance(4),
            other => Err(ProtobufError::WireType(other)),
        }
    }
}
