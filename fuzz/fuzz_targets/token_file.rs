#![no_main]
//! Token-file parsing and validation never panic on any text.
use adasid::SidLayout;
use adasid::data::tokens;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(lines) = tokens::parse("fuzz.tsv", text) {
        if let Ok(layout) = tokens::infer_layout(&lines, 64, None) {
            let _ = tokens::validate("fuzz.tsv", lines.clone(), &layout);
        }
        let _ = tokens::validate("fuzz.tsv", lines, &SidLayout::new(3, 8, 1).unwrap());
    }
});
