//! What a ranking model knows of each catalogue item: its row (for an
//! item-id embedding) and its semantic tokens with their weights (for a SID
//! embedding): mask columns, EMPTY its own column, each behavior token
//! weighted by its routing weight and each content token (and each EMPTY,
//! which says "no behavior evidence" by itself) by 1 — the paper's
//! "weighted SIDs".

use serde::Serialize;

use crate::error::{Error, Result};
use crate::sid::{EMPTY, SidLayout, token_column};
use crate::view::ReadView;

/// Which item representation a ranking model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureSet {
    /// A learned embedding per item id.
    Id,
    /// The weighted sum of its SID tokens' embeddings.
    Sid,
    /// Both, added.
    Both,
}

impl FeatureSet {
    /// Whether the item-id embedding is used.
    pub fn uses_ids(self) -> bool {
        self != FeatureSet::Sid
    }

    /// Whether the SID tokens are used.
    pub fn uses_sids(self) -> bool {
        self != FeatureSet::Id
    }
}

/// Every catalogue row's semantic token columns and weights.
pub struct ItemFeatures {
    /// Semantic positions per item.
    pub positions: usize,
    /// Columns per position (K tokens and EMPTY).
    pub vocab: usize,
    /// `rows × positions` mask columns.
    pub columns: Vec<u32>,
    /// `rows × positions` weights.
    pub weights: Vec<f32>,
}

impl ItemFeatures {
    /// The features of every key (catalogue row order) held by `view`;
    /// every key must be held.
    pub fn new(view: &dyn ReadView, keys: &[String]) -> Result<Self> {
        let layout: SidLayout = *view.layout();
        let (p, k) = (layout.levels(), layout.k() as usize);
        let mut columns = Vec::with_capacity(keys.len() * p);
        let mut weights = Vec::with_capacity(keys.len() * p);
        let ids: Vec<Option<u32>> = keys.iter().map(|key| view.id(key).ok()).collect();
        let missing = ids.iter().filter(|id| id.is_none()).count();
        if let Some(first) = ids.iter().position(Option::is_none) {
            return Err(Error::InvalidArgument(format!(
                "the database holds no SID for {missing} of the {} items of the data folder \
                 (first: '{}'); rank-eval needs them all",
                keys.len(),
                keys[first]
            )));
        }
        let first_behavior = layout.first_behavior();
        for id in ids.into_iter().flatten() {
            let (sid, routed) = view.sid(id).expect("ids name held items");
            for (pos, &t) in sid[..p].iter().enumerate() {
                columns.push(token_column(k, t) as u32);
                weights.push(match pos.checked_sub(first_behavior) {
                    Some(b) if t != EMPTY => routed[b],
                    _ => 1.0,
                });
            }
        }
        Ok(ItemFeatures {
            positions: p,
            vocab: layout.mask_bits(),
            columns,
            weights,
        })
    }

    /// Catalogue rows described.
    pub fn rows(&self) -> usize {
        self.columns.len() / self.positions.max(1)
    }
}
