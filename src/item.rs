//! Items as callers hand them in, and the validated SID every later stage
//! trusts.
//!
//! A [`NewItem`] is what a token file, a tokenizer or a caller produces.
//! [`NewItem::validate`] turns it into a [`ValidSid`] by the layout's rules
//! ([`SidLayout::split_full`], then [`SidLayout::canonical`]). Token files
//! (to name the bad line) and the database's batch plan both call it; the
//! index checks the full SIDs it is given with [`SidLayout::check_full`],
//! which applies the same per-token rule ([`SidLayout::check_token`]).

use crate::sid::{SidLayout, Token};

/// An item to add or re-encode.
#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    /// The external key.
    pub key: String,
    /// Semantic tokens (`levels` of them), or the full SID with its
    /// disambiguation token on top.
    pub tokens: Vec<Token>,
    /// Routing weights of the behavior positions (may be empty).
    pub weights: Vec<f32>,
}

/// Semantic tokens and routing weights that passed the layout's checks:
/// `levels` tokens, each below K or [`crate::EMPTY`] at a behavior position
/// whose weight is 0, weights finite and non-negative.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSid {
    tokens: Vec<Token>,
    weights: Vec<f32>,
    requested: Option<Token>,
}

impl ValidSid {
    /// The parts: canonical semantic tokens (a zero-weight behavior position
    /// is EMPTY), the weights as given, the requested disambiguation token.
    pub fn into_parts(self) -> (Vec<Token>, Vec<f32>, Option<Token>) {
        (self.tokens, self.weights, self.requested)
    }
}

impl NewItem {
    /// Checks the item's tokens and weights against `layout`; the error says
    /// what is wrong, for the caller to place (file and line, item key).
    pub fn validate(&self, layout: &SidLayout) -> std::result::Result<ValidSid, String> {
        let (tokens, requested) = layout.split_full(&self.tokens)?;
        let tokens = layout.canonical(tokens, &self.weights)?;
        Ok(ValidSid {
            tokens,
            weights: self.weights.clone(),
            requested,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::EMPTY;

    fn item(tokens: Vec<Token>, weights: Vec<f32>) -> NewItem {
        NewItem {
            key: "a".into(),
            tokens,
            weights,
        }
    }

    #[test]
    fn validates_semantic_and_full_sids() {
        let layout = SidLayout::new(3, 8, 1).unwrap();
        let v = item(vec![1, 2, 3], vec![0.0]).validate(&layout).unwrap();
        assert_eq!(v.into_parts(), (vec![1, 2, EMPTY], vec![0.0], None));
        let v = item(vec![1, 2, 3, 7], vec![0.5]).validate(&layout).unwrap();
        assert_eq!(v.into_parts(), (vec![1, 2, 3], vec![0.5], Some(7)));
        assert!(item(vec![1, 2, 3, 8], vec![]).validate(&layout).is_err());
        assert!(
            item(vec![1, 2, 3, EMPTY], vec![])
                .validate(&layout)
                .is_err()
        );
        assert!(item(vec![1, 2], vec![]).validate(&layout).is_err());
        assert!(item(vec![EMPTY, 2, 3], vec![]).validate(&layout).is_err());
    }
}
