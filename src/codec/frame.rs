//! The envelope around every stored value.
//!
//! ```text
//! offset  size  field
//! 0       4     magic  b"ADSD"
//! 4       1     kind   (what the payload is, see [`Kind`])
//! 5       2     format version, little-endian u16
//! 7       4     payload length, little-endian u32
//! 11      n     payload
//! 11+n    4     CRC-32 (IEEE) of bytes 0..11+n, little-endian
//! ```

use crate::error::{Error, Result};

/// Magic bytes at the start of every frame.
pub const MAGIC: [u8; 4] = *b"ADSD";

/// Format version written by this build (and the only one it reads).
pub const FORMAT_VERSION: u16 = 1;

const HEADER: usize = 11;
const TRAILER: usize = 4;

/// What a frame holds; a frame decoded as the wrong kind is corrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Store format marker.
    Format = 1,
    /// [`crate::sid::SidLayout`] of a database.
    Layout = 2,
    /// A chunk of item records.
    Chunk = 3,
    /// An f32 matrix (codebooks).
    Matrix = 4,
    /// A little-endian counter (next item id).
    Counter = 5,
    /// Opaque bytes (model weights and other named blobs).
    Blob = 6,
    /// An item's metadata: one JSON object, UTF-8.
    Meta = 7,
    /// Every blob of a database, named (its published view).
    BlobSet = 8,
}

impl Kind {
    /// Human name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Format => "format marker",
            Kind::Layout => "SID layout",
            Kind::Chunk => "item chunk",
            Kind::Matrix => "matrix",
            Kind::Counter => "counter",
            Kind::Blob => "blob",
            Kind::Meta => "item metadata",
            Kind::BlobSet => "blob set",
        }
    }
}

/// Wraps `payload` in a frame of the given kind.
pub fn encode(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a stored value is below 4 GiB");
    let mut out = Vec::with_capacity(HEADER + payload.len() + TRAILER);
    out.extend_from_slice(&MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks magic, kind, version, length and checksum; returns the payload.
pub fn decode(kind: Kind, bytes: &[u8]) -> Result<&[u8]> {
    let what = kind.name();
    if bytes.len() < HEADER + TRAILER {
        return Err(Error::corruption(
            what,
            format!("{} bytes is shorter than a frame", bytes.len()),
        ));
    }
    if bytes[0..4] != MAGIC {
        return Err(Error::corruption(what, "bad magic bytes"));
    }
    let version = u16::from_le_bytes([bytes[5], bytes[6]]);
    let len = u32::from_le_bytes([bytes[7], bytes[8], bytes[9], bytes[10]]) as usize;
    if HEADER.checked_add(len).and_then(|n| n.checked_add(TRAILER)) != Some(bytes.len()) {
        return Err(Error::corruption(
            what,
            format!(
                "payload length {len} does not match frame size {}",
                bytes.len()
            ),
        ));
    }
    let body = HEADER + len;
    let stored = u32::from_le_bytes([
        bytes[body],
        bytes[body + 1],
        bytes[body + 2],
        bytes[body + 3],
    ]);
    if crc32fast::hash(&bytes[..body]) != stored {
        return Err(Error::corruption(what, "checksum mismatch"));
    }
    if version != FORMAT_VERSION {
        return Err(Error::VersionMismatch {
            what: what.to_string(),
            found: version as u32,
            supported: FORMAT_VERSION as u32,
        });
    }
    if bytes[4] != kind as u8 {
        return Err(Error::corruption(
            what,
            format!("frame holds kind {}, not {}", bytes[4], kind as u8),
        ));
    }
    Ok(&bytes[HEADER..body])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_detected() {
        let f = encode(Kind::Blob, b"hello world");
        assert_eq!(decode(Kind::Blob, &f).unwrap(), b"hello world");
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x40;
            assert!(
                decode(Kind::Blob, &g).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
        for n in 0..f.len() {
            assert!(decode(Kind::Blob, &f[..n]).is_err());
        }
    }

    #[test]
    fn newer_version_is_refused_with_version_error() {
        let mut f = encode(Kind::Blob, b"x");
        f[5] = 2;
        let body = f.len() - 4;
        let crc = crc32fast::hash(&f[..body]);
        f[body..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode(Kind::Blob, &f),
            Err(Error::VersionMismatch { found: 2, .. })
        ));
    }

    #[test]
    fn wrong_kind_is_corruption() {
        let f = encode(Kind::Blob, b"x");
        assert!(matches!(
            decode(Kind::Chunk, &f),
            Err(Error::DataCorruption { .. })
        ));
    }
}
