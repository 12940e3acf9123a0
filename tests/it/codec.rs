//! Property tests of the codec: round trips, prefix-key ordering, and total
//! decoding (arbitrary or damaged bytes give an error, never a panic).

use adasid::codec::{self, Chunk, ItemRecord, Kind, Matrix};
use adasid::sid::{decode_prefix_key, prefix_key};
use adasid::{SidLayout, Token};
use proptest::prelude::*;

fn record() -> impl Strategy<Value = ItemRecord> {
    (
        ".{0,12}",
        prop::collection::vec(any::<u16>(), 0..10),
        prop::collection::vec(any::<f32>(), 0..4),
    )
        .prop_map(|(key, tokens, weights)| ItemRecord {
            key,
            tokens,
            weights,
        })
}

fn chunk() -> impl Strategy<Value = Chunk> {
    prop::collection::btree_map(any::<u8>(), record(), 0..8).prop_map(|m| Chunk {
        entries: m.into_iter().collect(),
    })
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

proptest! {
    #[test]
    fn chunk_round_trip(c in chunk()) {
        let back = Chunk::decode(&c.encode()).unwrap();
        prop_assert_eq!(back.entries.len(), c.entries.len());
        for ((s1, r1), (s2, r2)) in back.entries.iter().zip(&c.entries) {
            prop_assert_eq!(s1, s2);
            prop_assert_eq!(&r1.key, &r2.key);
            prop_assert_eq!(&r1.tokens, &r2.tokens);
            prop_assert!(same_bits(&r1.weights, &r2.weights));
        }
    }

    #[test]
    fn matrix_round_trip(rows in 0u32..6, cols in 0u32..6, seed in any::<u32>()) {
        let data: Vec<f32> = (0..rows * cols).map(|i| (i ^ seed) as f32 * 0.37).collect();
        let m = Matrix::new(rows, cols, data).unwrap();
        prop_assert_eq!(Matrix::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn layout_round_trip(levels in 1u32..=64, k in 1u32..=65535, behavior in 0u32..=32) {
        if let Ok(l) = SidLayout::new(levels, k, behavior) {
            let back: SidLayout = codec::decode(Kind::Layout, &codec::encode(Kind::Layout, &l)).unwrap();
            prop_assert_eq!(back, l);
        }
    }

    #[test]
    fn prefix_keys_keep_order_and_prefixes(a in prop::collection::vec(any::<Token>(), 0..8), b in prop::collection::vec(any::<Token>(), 0..8)) {
        let (ka, kb) = (prefix_key(&a), prefix_key(&b));
        prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
        for i in 0..=a.len() {
            prop_assert!(ka.starts_with(&prefix_key(&a[..i])));
        }
        prop_assert_eq!(decode_prefix_key(&ka).unwrap(), a);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Chunk::decode(&bytes);
        let _ = Matrix::decode(&bytes);
        let _ = codec::decode::<SidLayout>(Kind::Layout, &bytes);
        let _ = decode_prefix_key(&bytes);
    }

    #[test]
    fn damaged_frames_are_errors(c in chunk(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = c.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(Chunk::decode(&bytes).is_err());
        prop_assert!(Chunk::decode(&bytes[..i]).is_err());
    }
}

#[test]
fn huge_length_prefix_does_not_allocate() {
    // A frame whose payload claims a vector of 2^60 entries must fail fast.
    let mut payload = vec![1u8, 0];
    payload.push(0xfc);
    payload.extend_from_slice(&(1u64 << 60).to_le_bytes()[..4]);
    let bytes = codec::frame::encode(Kind::Chunk, &payload);
    assert!(Chunk::decode(&bytes).is_err());
    let mut m = (u32::MAX).to_le_bytes().to_vec();
    m.extend_from_slice(&(u32::MAX).to_le_bytes());
    assert!(Matrix::decode(&codec::frame::encode(Kind::Matrix, &m)).is_err());
}
