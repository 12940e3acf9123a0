//! The network's own checks: tied tables and stacked heads.

use super::*;
use rand::SeedableRng;

#[test]
fn sid_output_ties_the_item_table_to_each_items_tokens() {
    let shape = ParallelShape {
        positions: 2,
        vocab: 5,
        d: 4,
        heads: 1,
        layers: 1,
        ff: 8,
        history: 3,
        dropout: 0.0,
        temperature: 0.07,
        items: 3,
        sid_output: true,
        repeat_bias: false,
    };
    let params = ParamStore::new(Device::Cpu, rand_chacha::ChaCha8Rng::seed_from_u64(4));
    let net = ParallelNet::new(shape, params).unwrap();
    let columns = [1u32, 4, 0, 2, 3, 3];
    net.set_item_sids(&columns).unwrap();
    let ids = net.params.flat("item_embedding").unwrap();
    let tokens = net.params.flat("token_embedding").unwrap();
    let table = net.item_table().unwrap().to_vec2::<f32>().unwrap();
    for (item, row) in table.iter().enumerate() {
        for (j, got) in row.iter().enumerate() {
            let token = |p: usize| tokens[(p * 5 + columns[item * 2 + p] as usize) * 4 + j];
            let sid = (token(0) + token(1)) / 2f32.sqrt();
            let want = (ids[item * 4 + j] + sid) / 2f32.sqrt();
            assert!(
                (got - want).abs() < 1e-6,
                "item {item}, {j}: {got} vs {want}"
            );
        }
    }
    let plain = ParallelNet::new(
        ParallelShape {
            sid_output: false,
            ..shape
        },
        ParamStore::new(Device::Cpu, rand_chacha::ChaCha8Rng::seed_from_u64(4)),
    )
    .unwrap();
    let alone = plain.item_table().unwrap().flatten_all().unwrap();
    assert_eq!(
        alone.to_vec1::<f32>().unwrap(),
        plain.params.flat("item_embedding").unwrap()
    );
}

#[test]
fn stacked_heads_score_as_each_head_alone() {
    let shape = ParallelShape {
        positions: 5,
        vocab: 9,
        d: 8,
        heads: 2,
        layers: 1,
        ff: 16,
        history: 4,
        dropout: 0.0,
        temperature: 0.07,
        items: 0,
        sid_output: false,
        repeat_bias: false,
    };
    let params = ParamStore::new(Device::Cpu, rand_chacha::ChaCha8Rng::seed_from_u64(3));
    let net = ParallelNet::new(shape, params).unwrap();
    let columns: Vec<u32> = (0..3 * 2 * 5).map(|i| (i * 7 % 9) as u32).collect();
    let h = net.states(&columns, &[], 3, 2).unwrap();
    let h = h.reshape((6, 8)).unwrap();
    let table = net.score_table().unwrap();
    let all = net.log_probs(&h, Some(&table), &[]).unwrap();
    assert_eq!(
        all.to_vec2::<f32>().unwrap(),
        net.log_probs(&h, None, &[])
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
    );
    let all = all.to_vec2::<f32>().unwrap();
    for p in 0..5 {
        let one = candle_nn::ops::log_softmax(&net.logits(&h, p).unwrap(), D::Minus1)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (row, want) in all.iter().zip(&one) {
            for (c, w) in want.iter().enumerate() {
                assert!((row[p * 9 + c] - w).abs() < 1e-5, "{p} {c}");
            }
        }
    }
}
