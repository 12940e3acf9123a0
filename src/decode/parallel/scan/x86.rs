//! The scan's loops compiled for AVX-512 (see `super`).

use std::arch::x86_64::*;

use super::{BLOCK, BYTE, finite_range_body, quantise_body, table_width};

/// [`super::finite_range_body`] compiled for AVX-512.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
pub(super) fn finite_range(row: &[f32]) -> (f32, f32) {
    finite_range_body(row)
}

/// [`super::quantise_body`] compiled for AVX-512.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
pub(super) fn quantise(row: &[f32], low: f64, step: f64, out: &mut [u8]) -> f64 {
    quantise_body(row, low, step, out)
}

/// Looks up 64 codes in a 256-entry byte table: four registers, two
/// two-register permutes and a blend on the code's top bit.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn lookup(table: *const u8, codes: __m512i) -> __m512i {
    let load = |p: *const u8| unsafe { _mm512_loadu_si512(p.cast()) };
    let (t0, t1, t2, t3) = unsafe {
        (
            load(table),
            load(table.add(64)),
            load(table.add(128)),
            load(table.add(192)),
        )
    };
    let first = _mm512_permutex2var_epi8(t0, codes, t1);
    let second = _mm512_permutex2var_epi8(t2, codes, t3);
    _mm512_mask_blend_epi8(_mm512_movepi8_mask(codes), first, second)
}

/// [`super::portable_sums`] with AVX-512: each position's 64 codes are
/// looked up in its table ([`lookup`]); with high words, in both halves of
/// a 512-entry table, the word choosing per slot. The bytes are widened
/// without shuffles: even slots by masking, odd ones by shifting.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI, and BMI2.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
pub(super) unsafe fn sums(
    block: &[u8],
    high: &[u64],
    tables: &[u8],
    positions: usize,
    cutoff: u16,
    out: &mut [u16; BLOCK],
) -> u64 {
    let width = table_width(high);
    assert!(block.len() >= positions * BLOCK && tables.len() >= positions * width);
    assert!(high.is_empty() || high.len() >= positions);
    let (mut even, mut odd) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let low_bytes = _mm512_set1_epi16(0xff);
    for p in 0..positions {
        let t = tables[p * width..].as_ptr();
        let codes = unsafe { _mm512_loadu_si512(block[p * BLOCK..].as_ptr().cast()) };
        let v = match high.get(p) {
            None => unsafe { lookup(t, codes) },
            Some(&ninth) => unsafe {
                _mm512_mask_blend_epi8(ninth, lookup(t, codes), lookup(t.add(BYTE), codes))
            },
        };
        even = _mm512_add_epi16(even, _mm512_and_si512(v, low_bytes));
        odd = _mm512_add_epi16(odd, _mm512_srli_epi16::<8>(v));
    }
    unsafe {
        _mm512_storeu_si512(out.as_mut_ptr().cast(), even);
        _mm512_storeu_si512(out.as_mut_ptr().add(BLOCK / 2).cast(), odd);
    }
    let c = _mm512_set1_epi16(cutoff as i16);
    let (me, mo) = (
        _mm512_cmpge_epu16_mask(even, c),
        _mm512_cmpge_epu16_mask(odd, c),
    );
    // Bit i of each mask is slot 2i (even) or 2i + 1 (odd).
    _pdep_u64(me as u64, 0x5555_5555_5555_5555) | _pdep_u64(mo as u64, 0xaaaa_aaaa_aaaa_aaaa)
}
