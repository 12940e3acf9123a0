#![no_main]
//! Token-file and token-index parsing and validation never panic on any text.
use adasid::SidLayout;
use adasid::data::{token_index, tokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = if token_index::is_token_index(data) {
        token_index::parse("fuzz.json", text)
    } else {
        tokens::parse("fuzz.tsv", text)
    };
    if let Ok(lines) = parsed {
        if let Ok(layout) = tokens::infer_layout(&lines, 64, None, None) {
            let _ = tokens::validate("fuzz.tsv", lines.clone(), &layout);
        }
        let _ = tokens::validate("fuzz.tsv", lines, &SidLayout::new(3, 8, 1).unwrap());
    }
});
