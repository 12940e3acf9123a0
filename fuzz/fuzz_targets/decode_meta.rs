#![no_main]
//! The small framed values of a store: layout, counter, format marker, blob,
//! as whole frames and as payloads inside valid frames.
use adasid::SidLayout;
use adasid::codec::{self, Kind, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for bytes in [data.to_vec(), frame::encode(Kind::Layout, data)] {
        let _ = codec::decode::<SidLayout>(Kind::Layout, &bytes);
    }
    let _ = codec::decode::<u32>(Kind::Counter, &frame::encode(Kind::Counter, data));
    let _ = codec::decode::<String>(Kind::Format, &frame::encode(Kind::Format, data));
    let _ = frame::decode(Kind::Blob, data);
});
