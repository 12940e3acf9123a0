//! The key hash table of a snapshot (format 3): a key's id in a few memory
//! reads, where a binary search over the keys in key order reads about
//! three scattered places per step (the order, the key's offset, its bytes),
//! some 26 steps at 50M items. perf put 15% of a 2M-line ingest's samples
//! in those searches (planning looks up every key of a batch).
//!
//! Two sections: `hashes`, one u64 per held item, `hash << 32 | id`, sorted
//! (so by hash, ties by id); `buckets`, u32 × (2^B + 1), where entry `b` is
//! the first index of `hashes` whose hash's top B bits are `b` or more. B
//! grows with the item count so that a bucket holds about four entries.
//! The hash is this module's own and part of the format: it must never
//! change for a format version.

use rayon::prelude::*;

use crate::index::ItemId;

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// The format's 32-bit hash of a key's bytes: eight bytes at a time into a
/// multiply-xor state seeded with the length, then MurmurHash3's 64-bit
/// finaliser; the top 32 bits.
pub(crate) fn key_hash(key: &[u8]) -> u32 {
    let mut h = (key.len() as u64).wrapping_mul(MUL) ^ 0x5851_F42D_4C95_7F2D;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(last));
    }
    (fmix64(h) >> 32) as u32
}

fn mix(h: u64, word: u64) -> u64 {
    let h = (h ^ word).wrapping_mul(MUL);
    h ^ (h >> 29)
}

/// MurmurHash3's 64-bit finaliser (also the synthetic catalogue's mixer).
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// B for `items` held: the fewest bits with 2^B ≥ items / 4.
pub(crate) fn bucket_bits(items: u64) -> u32 {
    let target = items.div_ceil(4).max(1);
    u64::BITS - (target - 1).leading_zeros()
}

/// The bucket of a hash under B bits.
fn bucket(hash: u32, bits: u32) -> usize {
    match bits {
        0 => 0,
        b => (hash >> (32 - b)) as usize,
    }
}

/// The two sections for the held items `live`, whose keys `key` gives:
/// (buckets, hashes).
pub(crate) fn build<'k>(
    live: &[ItemId],
    key: impl Fn(ItemId) -> &'k [u8] + Sync,
) -> (Vec<u32>, Vec<u64>) {
    let mut hashes: Vec<u64> = live
        .par_iter()
        .map(|&i| (u64::from(key_hash(key(i))) << 32) | u64::from(i))
        .collect();
    hashes.par_sort_unstable();
    let bits = bucket_bits(live.len() as u64);
    let mut buckets = Vec::with_capacity((1usize << bits) + 1);
    let mut at = 0;
    for b in 0..1usize << bits {
        while at < hashes.len() && bucket((hashes[at] >> 32) as u32, bits) < b {
            at += 1;
        }
        buckets.push(at as u32);
    }
    buckets.push(hashes.len() as u32);
    (buckets, hashes)
}

/// The ids whose key hashes as `key` does, from the two sections of a
/// snapshot holding `items` (bounds-checked: damaged sections give no or
/// wrong candidates, never a panic). The caller compares the keys.
pub(crate) fn candidates<'s>(
    buckets: &[u32],
    hashes: &'s [u64],
    items: u64,
    key: &[u8],
) -> impl Iterator<Item = ItemId> + 's {
    let hash = key_hash(key);
    let b = bucket(hash, bucket_bits(items));
    let run = match (buckets.get(b), buckets.get(b + 1)) {
        (Some(&lo), Some(&hi)) => hashes.get(lo as usize..hi as usize).unwrap_or(&[]),
        _ => &[],
    };
    run.iter()
        .skip_while(move |&&e| ((e >> 32) as u32) < hash)
        .take_while(move |&&e| (e >> 32) as u32 == hash)
        .map(|&e| e as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash is part of the file format: these values must never change
    /// (they agree with an independent implementation of FORMAT.md's
    /// definition).
    #[test]
    fn the_hash_is_fixed() {
        let got: Vec<u32> = ["", "a", "alpha", "0123456789abcdef", "ключ"]
            .iter()
            .map(|k| key_hash(k.as_bytes()))
            .collect();
        assert_eq!(got, FIXED, "the key hash changed: that is a format change");
    }

    const FIXED: [u32; 5] = [
        641_926_353,
        1_953_209_437,
        1_739_840_572,
        2_938_673_983,
        4_049_310_615,
    ];

    #[test]
    fn trailing_zero_bytes_and_length_change_the_hash() {
        assert_ne!(key_hash(b"a"), key_hash(b"a\0"));
        assert_ne!(key_hash(b"abcdefgh"), key_hash(b"abcdefgh\0"));
        assert_ne!(key_hash(b""), key_hash(b"\0"));
    }

    #[test]
    fn bucket_bits_keep_about_four_per_bucket() {
        assert_eq!(bucket_bits(0), 0);
        assert_eq!(bucket_bits(4), 0);
        assert_eq!(bucket_bits(5), 1);
        assert_eq!(bucket_bits(16), 2);
        assert_eq!(bucket_bits(17), 3);
        assert_eq!(bucket_bits(50_000_000), 24);
        assert_eq!(bucket_bits(1 << 31), 29);
    }

    /// Every held key is found, a key not held finds none, at sizes around
    /// the bucket-count steps; ids not in order and with gaps.
    #[test]
    fn every_key_is_a_candidate_of_its_own_lookup() {
        for n in [0usize, 1, 3, 4, 5, 17, 100, 1000] {
            let live: Vec<ItemId> = (0..n as u32).map(|i| i * 3 + 1).collect();
            let keys: Vec<String> = live.iter().map(|i| format!("item-{i}")).collect();
            let key = |id: ItemId| keys[(id as usize - 1) / 3].as_bytes();
            let (buckets, hashes) = build(&live, key);
            assert_eq!(buckets.len(), (1 << bucket_bits(n as u64)) + 1);
            assert!(hashes.windows(2).all(|w| w[0] < w[1]));
            for &id in &live {
                let found: Vec<ItemId> = candidates(&buckets, &hashes, n as u64, key(id)).collect();
                assert!(found.contains(&id), "n {n}: item {id}");
                assert!(found.iter().all(|&f| key_hash(key(f)) == key_hash(key(id))));
            }
            let missing: Vec<_> = candidates(&buckets, &hashes, n as u64, b"absent").collect();
            assert!(
                missing
                    .iter()
                    .all(|&f| key_hash(key(f)) == key_hash(b"absent"))
            );
        }
    }

    #[test]
    fn damaged_sections_give_no_candidates_rather_than_a_panic() {
        let hashes = [u64::MAX, 1];
        for buckets in [&[][..], &[5, 1][..], &[0][..], &[2, 9][..]] {
            let _ = candidates(buckets, &hashes, 3, b"k").count();
        }
    }
}
