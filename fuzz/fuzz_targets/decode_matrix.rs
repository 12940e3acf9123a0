#![no_main]
//! Any bytes decode to a matrix or an error (whole frame, or payload in a valid
//! frame); a decoded matrix round-trips exactly.
use adasid::codec::{Kind, Matrix, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Matrix::decode(data);
    let framed = frame::encode(Kind::Matrix, data);
    if let Ok(m) = Matrix::decode(&framed) {
        assert_eq!(m.encode(), framed);
    }
});
