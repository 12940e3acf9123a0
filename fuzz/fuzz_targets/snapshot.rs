#![no_main]
//! Any bytes open as a snapshot or give an error; and a valid snapshot whose
//! sections are overwritten by the input (checksums recomputed, so the damage
//! gets past them) answers every query without panicking.
use std::sync::OnceLock;

use adasid::decode::{BeamSearch, StepScorer};
use adasid::keymap::KeyMap;
use adasid::snapshot::{self, Snapshot};
use adasid::{CandidateMode, CandidateQuery, EMPTY, Index, ReadView, SidIndex, SidLayout, Token};
use libfuzzer_sys::fuzz_target;

fn valid() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let layout = SidLayout::new(2, 20, 1).unwrap();
        let mut index = Index::new(layout);
        let mut keys = KeyMap::default();
        for id in 0..24u32 {
            let t = (id % 12) as Token;
            let b = if id % 5 == 0 {
                EMPTY
            } else {
                (id % 3) as Token
            };
            let w = if b == EMPTY { 0.0 } else { 0.5 };
            index.insert(id, &[t, b, (id / 12) as Token], &[w]).unwrap();
            keys.insert(&format!("k{id}"), id);
        }
        snapshot::to_bytes(&index, &keys).unwrap()
    })
}

struct Flat;
impl StepScorer for Flat {
    fn score(&mut self, _: &[Token], _: usize, _: usize, out: &mut [f32]) -> adasid::Result<()> {
        out.iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = -((i % 7) as f32));
        Ok(())
    }
}

fn exercise(s: &Snapshot<Vec<u8>>) {
    let _ = s.verify();
    let mut mask = vec![0u64; s.layout().mask_words()];
    for a in (0..22).chain([EMPTY]) {
        for p in [
            vec![],
            vec![a],
            vec![a, 1],
            vec![a, EMPTY, 0],
            vec![a, 2, 1, 0],
        ] {
            if let Some(items) = s.items(&p) {
                items.iter().for_each(drop);
            }
            let _ = s.next_tokens(&p);
            s.write_mask(&p, &mut mask);
            for mode in [CandidateMode::Prefix, CandidateMode::Overlap] {
                let q = CandidateQuery {
                    tokens: &p,
                    weights: &[0.5],
                    k: 6,
                    mode,
                    exclude: Some(3),
                };
                let _ = s.candidates(&q);
            }
        }
    }
    for id in 0..30 {
        let _ = (s.sid(id), s.key(id));
    }
    let _ = s.id("k7");
    if let Ok(mut b) = BeamSearch::new(*s.layout(), 8) {
        let _ = b.search(s, &mut Flat);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Snapshot::new(data.to_vec()) {
        exercise(&s);
    }
    // Overwrite the bytes after the header from a fuzzer-chosen offset.
    let mut bytes = valid().to_vec();
    let Some((&at, rest)) = data.split_first() else {
        return;
    };
    let start = 392 + (at as usize * 8) % (bytes.len() - 392);
    for (b, &x) in bytes[start..].iter_mut().zip(rest) {
        *b = x;
    }
    if snapshot::reseal(&mut bytes).is_ok() {
        if let Ok(s) = Snapshot::new(bytes) {
            exercise(&s);
        }
    }
});
