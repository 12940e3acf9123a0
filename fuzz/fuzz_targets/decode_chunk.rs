#![no_main]
//! Any bytes decode to a chunk or an error, both as a whole frame and as a
//! payload inside a valid frame (so the fuzzer gets past the checksum); a
//! decoded chunk re-encodes to a canonical form that is stable under another
//! round trip (varints may arrive non-minimal, so the input bytes may differ).
use adasid::codec::{Chunk, Kind, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Chunk::decode(data);
    let framed = frame::encode(Kind::Chunk, data);
    if let Ok(chunk) = Chunk::decode(&framed) {
        let canonical = chunk.encode();
        assert_eq!(
            Chunk::decode(&canonical)
                .expect("canonical form decodes")
                .encode(),
            canonical
        );
    }
});
