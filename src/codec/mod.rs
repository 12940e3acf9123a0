//! Binary encodings of everything adasid stores.
//!
//! Every stored value is a [`frame`]: magic, kind, format version, length,
//! payload, CRC-32. Payloads are bincode (varint integers) or hand-rolled
//! where that is tighter (f32 matrices).
//!
//! Invariant: decoding is total. Any byte string yields `Ok` or a typed
//! error, never a panic, and never allocates more than the input's length
//! justifies (bincode runs with a byte limit equal to the payload length).

pub mod frame;
pub mod matrix;
pub mod record;

use bincode::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub use frame::{FORMAT_VERSION, Kind};
pub use matrix::Matrix;
pub use record::{Chunk, ItemRecord};

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(limit)
}

/// Serialises `value` as a bincode payload (varint integers).
pub fn to_payload<T: Serialize>(value: &T) -> Vec<u8> {
    options(u64::MAX)
        .serialize(value)
        .expect("serialising plain data into a Vec cannot fail")
}

/// Deserialises a bincode payload; trailing bytes and oversized lengths are errors.
pub fn from_payload<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    options(bytes.len() as u64)
        .deserialize(bytes)
        .map_err(|e| Error::corruption(what, e.to_string()))
}

/// Frames a serialisable value.
pub fn encode<T: Serialize>(kind: Kind, value: &T) -> Vec<u8> {
    frame::encode(kind, &to_payload(value))
}

/// Checks the frame and decodes its payload.
pub fn decode<T: DeserializeOwned>(kind: Kind, bytes: &[u8]) -> Result<T> {
    let payload = frame::decode(kind, bytes)?;
    from_payload(kind.name(), payload)
}
