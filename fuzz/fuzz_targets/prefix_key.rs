#![no_main]
//! Prefix keys round-trip, keep token order, and are byte-prefixes of longer SIDs.
use adasid::sid::{decode_prefix_key, prefix_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tokens) = decode_prefix_key(data) else {
        return;
    };
    assert_eq!(prefix_key(&tokens), data);
    let half = tokens.len() / 2;
    let (a, b) = (&tokens[..half], &tokens[half..]);
    assert_eq!(a.cmp(b), prefix_key(a).cmp(&prefix_key(b)));
    assert!(data.starts_with(&prefix_key(a)));
});
