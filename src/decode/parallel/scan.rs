//! Exact top-k by a quantised scan of an index's [`ByteCodes`].
//!
//! Over many flat positions no item can be ruled out without reading its
//! tokens (see [`super::top_k`]), so the speed of an exact answer is the
//! speed of reading every item. This scan reads one byte per token (and a
//! bit where K ≥ 256), looks each up in a one-byte rounding of its
//! position's scores (one common
//! step for every position, so the bytes add up to a sum in steps) and
//! sums them 64 items at a time. An item can reach the top k only if its
//! sum is within [`Tables::margin`] of the k-th best sum; the few that are
//! get their exact `f32` score, the same sum [`super::brute_force`] takes.
//! Exactness is then proved, not assumed: the k-th best exact score must
//! beat [`Tables::bound`], the highest exact score any item left behind
//! could have. When it does not (a score of −∞, a filter that took most
//! candidates), the caller scans in full.

use super::best::Best;
use super::{PositionScores, Ranked, Scored};
use crate::index::{BLOCK, ByteCodes, Coded, ItemId, SidIndex, table_width};

/// Columns one byte of a code tells apart (a 64-bit plane tells the next
/// 256 from them).
const BYTE: usize = 256;

/// Each position's scores of the coded columns rounded to a byte on a
/// common step: column `c` of position `p` stands for `low[p] + q × step`.
struct Tables {
    /// The codes' width of bytes per position.
    bytes: Vec<u8>,
    positions: usize,
    step: f64,
    /// Σ over positions of `low`.
    low: f64,
    /// Σ over positions of the most any column's score exceeds what its
    /// byte stands for, plus the rounding of an `f32` sum.
    excess: f64,
}

impl Tables {
    /// Tables of `width` columns per position (the codes' width).
    fn new(scores: &PositionScores<'_>, width: usize) -> Tables {
        let columns = scores.columns.min(width);
        let rows: Vec<&[f32]> = (0..scores.positions)
            .map(|p| &scores.row(p)[..columns])
            .collect();
        let ranges: Vec<(f64, f64)> = rows.iter().map(|r| finite_range(r)).collect();
        let widest = ranges.iter().map(|(lo, hi)| hi - lo).fold(0.0, f64::max);
        let step = match widest / 255.0 {
            s if s > 0.0 && s.is_finite() => s,
            _ => 1.0,
        };
        let mut t = Tables {
            bytes: vec![0; scores.positions * width],
            positions: scores.positions,
            step,
            low: ranges.iter().map(|r| r.0).sum(),
            excess: 0.0,
        };
        for (p, (row, &(lo, _))) in rows.iter().zip(&ranges).enumerate() {
            t.excess += quantise(row, lo, step, &mut t.bytes[p * width..]);
        }
        // An f32 sum of n terms is within (n - 1)·2^-24·Σ|term| of the real
        // sum; twice that, and a little for the f64 arithmetic here.
        let n = scores.positions as f64;
        let largest = ranges
            .iter()
            .map(|(lo, hi)| lo.abs().max(hi.abs()))
            .fold(0.0, f64::max);
        t.excess += n * n * largest * 2f64.powi(-23) + 1e-9 * (1.0 + n * largest);
        t
    }

    /// Steps by which an item's sum may fall short of the k-th best sum
    /// and its exact score still beat it: half a step per position each
    /// way, and one for rounding.
    fn margin(&self) -> u16 {
        self.positions as u16 + 1
    }

    /// The highest exact score (as [`PositionScores::item_score`] sums it)
    /// of a coded item whose byte sum is at most `sum`.
    fn bound(&self, sum: u16) -> f64 {
        self.low + self.step * sum as f64 + self.excess
    }
}

/// The least and greatest finite values of `row` (0, 0 when none is).
fn finite_range(row: &[f32]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    let (lo, hi) = match wide() {
        // SAFETY: the CPU has the features `wide` asks for.
        true => unsafe { x86::finite_range(row) },
        false => finite_range_body(row),
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (lo, hi) = finite_range_body(row);
    if lo <= hi {
        (lo as f64, hi as f64)
    } else {
        (0.0, 0.0)
    }
}

/// Lanes of the loops below: each keeps its own running extreme, so the
/// loop vectorises (a single running maximum is a chain the compiler
/// must keep in order, since `>` is not associative with NaN).
const LANES: usize = 16;

/// Scores are finite or −∞ ([`PositionScores::new`]), so −∞ only needs
/// keeping out of the least (and pads the last chunk: it changes neither).
#[inline(always)]
fn finite_range_body(row: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::INFINITY; LANES], [f32::NEG_INFINITY; LANES]);
    let chunks = row.chunks_exact(LANES);
    let mut tail = [f32::NEG_INFINITY; LANES];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let whole = chunks.map(|c| <&[f32; LANES]>::try_from(c).expect("exact chunk"));
    for chunk in whole.chain([&tail]) {
        for i in 0..LANES {
            let s = chunk[i];
            hi[i] = if s > hi[i] { s } else { hi[i] };
            let finite_less = s < lo[i] && s != f32::NEG_INFINITY;
            lo[i] = if finite_less { s } else { lo[i] };
        }
    }
    (
        lo.into_iter().fold(f32::INFINITY, f32::min),
        hi.into_iter().fold(f32::NEG_INFINITY, f32::max),
    )
}

/// Rounds `row` to bytes, `low + q × step` each, into `out`, and returns the
/// most a score exceeds what its byte stands for (−∞ for a row of −∞).
fn quantise(row: &[f32], low: f64, step: f64, out: &mut [u8]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: the CPU has the features `wide` asks for.
        return unsafe { x86::quantise(row, low, step, out) };
    }
    quantise_body(row, low, step, out)
}

/// Whether the loops above may run compiled for AVX-512 (the build
/// targets baseline x86-64, whose loops run four floats wide at most).
#[cfg(target_arch = "x86_64")]
fn wide() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

#[inline(always)]
fn quantise_body(row: &[f32], low: f64, step: f64, out: &mut [u8]) -> f64 {
    let inv = 1.0 / step;
    let mut over = [f64::NEG_INFINITY; LANES];
    for (i, (byte, &s)) in out.iter_mut().zip(row).enumerate() {
        // The nearest step; `as` saturates, so −∞ is 0.
        let q = ((s as f64 - low) * inv + 0.5) as u8;
        *byte = q;
        let d = s as f64 - (low + q as f64 * step);
        let lane = &mut over[i % LANES];
        *lane = if d > *lane { d } else { *lane };
    }
    over.into_iter().fold(f64::NEG_INFINITY, f64::max)
}

/// The slots whose sums may still reach the top k, and the cutoff below
/// which a sum is dropped (it only rises).
struct Pool {
    entries: Vec<(u32, u16)>,
    /// Entries before this index passed the filter already.
    checked: usize,
    cap: usize,
    cutoff: u16,
    k: usize,
    margin: u16,
    scratch: Vec<u16>,
}

impl Pool {
    fn new(k: usize, margin: u16) -> Pool {
        let cap = (8 * k).max(1024);
        Pool {
            entries: Vec::with_capacity(cap),
            checked: 0,
            cap,
            cutoff: 0,
            k,
            margin,
            scratch: Vec::new(),
        }
    }

    /// Drops entries `keep` refuses (each is asked once) and those whose
    /// sum falls below the k-th best held less the margin.
    fn compact(&mut self, keep: &dyn Fn(u32) -> bool) {
        let mut kept = self.checked;
        for r in self.checked..self.entries.len() {
            if keep(self.entries[r].0) {
                self.entries[kept] = self.entries[r];
                kept += 1;
            }
        }
        self.entries.truncate(kept);
        if self.entries.len() >= self.k {
            self.scratch.clear();
            self.scratch.extend(self.entries.iter().map(|e| e.1));
            let (_, kth, _) = self
                .scratch
                .select_nth_unstable_by(self.k - 1, |a, b| b.cmp(a));
            self.cutoff = self.cutoff.max(kth.saturating_sub(self.margin));
            let cutoff = self.cutoff;
            self.entries.retain(|e| e.1 >= cutoff);
        }
        self.checked = self.entries.len();
        if self.entries.len() * 2 > self.cap {
            self.cap *= 2;
        }
    }
}

/// Byte sums of one block into `out` (slot `s`'s at [`sum_at`]`(s)`), and
/// which reach `cutoff` (bit `s` for slot `s`). Its arguments: the block's
/// bytes and high words ([`ByteCodes::block`], [`ByteCodes::high`]), the
/// tables (256 columns per position without high words, 512 with), the
/// positions summed and the cutoff.
type Kernel = fn(&[u8], &[u64], &[u8], usize, u16, &mut [u16; BLOCK]) -> u64;

/// Where a kernel puts slot `s`'s sum: even slots first, then odd ones
/// (the order the vector kernel widens bytes in).
#[inline]
fn sum_at(s: usize) -> usize {
    (s % 2) * (BLOCK / 2) + s / 2
}

/// The fastest kernel this CPU runs.
fn kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vbmi")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("bmi2")
    {
        return |block, high, tables, positions, cutoff, out| {
            // SAFETY: the CPU has the features `x86::sums` is compiled for.
            unsafe { x86::sums(block, high, tables, positions, cutoff, out) }
        };
    }
    portable_sums
}

/// The kernel in plain Rust (the reference the vector one is tested against).
fn portable_sums(
    block: &[u8],
    high: &[u64],
    tables: &[u8],
    positions: usize,
    cutoff: u16,
    out: &mut [u16; BLOCK],
) -> u64 {
    let width = table_width(high);
    out.fill(0);
    for p in 0..positions {
        let table = &tables[p * width..(p + 1) * width];
        let ninth = high.get(p).copied().unwrap_or(0);
        for (s, &code) in block[p * BLOCK..(p + 1) * BLOCK].iter().enumerate() {
            let column = code as usize + BYTE * ((ninth >> s) & 1) as usize;
            out[sum_at(s)] += table[column] as u16;
        }
    }
    (0..BLOCK).fold(0, |m, s| m | ((out[sum_at(s)] >= cutoff) as u64) << s)
}

#[cfg(target_arch = "x86_64")]
mod x86;

/// The `k` best items of `index` (those `keep` accepts) by the scan over
/// `coded`; `None` when the answer could not be proved exact that way.
pub(super) fn top_k(
    index: &dyn SidIndex,
    coded: Coded<'_>,
    scores: &PositionScores<'_>,
    k: usize,
    keep: Option<&dyn Fn(ItemId) -> bool>,
) -> Option<Ranked> {
    top_k_with(index, coded, scores, k, keep, kernel())
}

fn top_k_with(
    index: &dyn SidIndex,
    coded: Coded<'_>,
    scores: &PositionScores<'_>,
    k: usize,
    keep: Option<&dyn Fn(ItemId) -> bool>,
    kernel: Kernel,
) -> Option<Ranked> {
    let codes = coded.codes;
    if k == 0 || scores.positions > codes.levels() {
        return None;
    }
    let tables = Tables::new(scores, codes.width());
    let wanted = |slot: u32| {
        let item = codes.item(slot as usize);
        coded.hidden.is_none_or(|h| !h.contains(item)) && keep.is_none_or(|f| f(item))
    };
    let pool = sweep(codes, &tables, k, &wanted, kernel);
    let mut best = Best::new(k);
    let mut scored = 0u64;
    for &(slot, _) in &pool.entries {
        let item = codes.item(slot as usize);
        let (tokens, _) = index.sid(item)?;
        best.offer(Scored {
            item,
            score: scores.item_score(tokens),
        });
        scored += 1;
    }
    if let Some(rest) = coded.rest {
        let changed = super::brute_force(rest, scores, k, keep);
        changed.hits.into_iter().for_each(|h| best.offer(h));
        scored += changed.scored;
    }
    // Every slot dropped on its sum had one below the final cutoff.
    let proved = pool.cutoff == 0
        || best
            .kth()
            .is_some_and(|kth| kth as f64 > tables.bound(pool.cutoff - 1));
    proved.then(|| Ranked {
        hits: best.finish(),
        scored,
    })
}

/// Blocks ahead of the one summed whose bytes are requested from memory:
/// the sums wait on memory otherwise (at 1M items × 32 positions, 62% of
/// the kernel's samples sat on its first load).
const PREFETCH: usize = 4;

/// Asks for `bytes` to be brought into the cache, a 64-byte line at a time.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch never faults; the address is in `bytes` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Sums every coded item and keeps the slots that may reach the top k.
fn sweep(
    codes: &ByteCodes,
    tables: &Tables,
    k: usize,
    wanted: &dyn Fn(u32) -> bool,
    kernel: Kernel,
) -> Pool {
    let mut pool = Pool::new(k, tables.margin());
    let mut sums = [0u16; BLOCK];
    for b in 0..codes.blocks() {
        if let Some(ahead) = codes.rows_ahead(b, PREFETCH, tables.positions) {
            prefetch(ahead);
        }
        let mut hits = kernel(
            codes.block(b),
            codes.high(b),
            &tables.bytes,
            tables.positions,
            pool.cutoff,
            &mut sums,
        );
        let first = b * BLOCK;
        if codes.len() - first < BLOCK {
            hits &= (1u64 << (codes.len() - first)) - 1;
        }
        while hits != 0 {
            let s = hits.trailing_zeros() as usize;
            hits &= hits - 1;
            pool.entries.push(((first + s) as u32, sums[sum_at(s)]));
        }
        if pool.entries.len() >= pool.cap {
            pool.compact(wanted);
        }
    }
    pool.compact(wanted);
    pool
}

#[cfg(test)]
mod tests;
