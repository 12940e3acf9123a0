//! Items as callers hand them in, and the validated SID every later stage
//! trusts.
//!
//! A [`NewItem`] is what a token file, a tokenizer or a caller produces.
//! [`NewItem::validate`] turns it into a [`ValidSid`] by the layout's rules
//! ([`SidLayout::split_full`], then [`SidLayout::canonical`]); a [`ValidItem`]
//! pairs it with its key. A write accepts either ([`ItemInput`]): a
//! `NewItem` is validated by the database's batch plan, a `ValidItem` (token
//! files validate to name the bad line) only has its layout compared. The
//! index checks the full SIDs it is given with [`SidLayout::check_full`],
//! which applies the same per-token rule ([`SidLayout::check_token`]).

use std::borrow::Cow;

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
    layout: SidLayout,
}

/// An item whose SID passed [`NewItem::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValidItem {
    /// The external key.
    pub key: String,
    /// Its checked SID.
    pub sid: ValidSid,
}

/// Longest item key a database accepts, in bytes (keys are held in memory
/// for every item, and written into snapshots and exports).
pub const MAX_KEY_BYTES: usize = 4096;

/// What a database write accepts: an item to validate, or one already valid.
pub trait ItemInput: Sync {
    /// The external key.
    fn key(&self) -> &str;
    /// The item's SID checked against `layout`; the error says what is wrong.
    fn valid(&self, layout: &SidLayout) -> std::result::Result<Cow<'_, ValidSid>, String>;
}

impl ItemInput for NewItem {
    fn key(&self) -> &str {
        &self.key
    }

    fn valid(&self, layout: &SidLayout) -> std::result::Result<Cow<'_, ValidSid>, String> {
        self.validate(layout).map(Cow::Owned)
    }
}

impl ItemInput for ValidItem {
    fn key(&self) -> &str {
        &self.key
    }

    /// Trusted as it is when it was validated against `layout`.
    fn valid(&self, layout: &SidLayout) -> std::result::Result<Cow<'_, ValidSid>, String> {
        if self.sid.layout != *layout {
            return Err(format!(
                "validated for {:?}, the database has {layout:?}",
                self.sid.layout
            ));
        }
        Ok(Cow::Borrowed(&self.sid))
    }
}

impl ValidSid {
    /// The layout it was checked against.
    pub fn layout(&self) -> &SidLayout {
        &self.layout
    }

    /// Canonical semantic tokens (a zero-weight behavior position is EMPTY).
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The routing weights as given.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The disambiguation token asked for, if a full SID was given.
    pub fn requested(&self) -> Option<Token> {
        self.requested
    }

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
        ValidSid::check(layout, self.tokens.clone(), self.weights.clone())
    }

    /// [`NewItem::validate`], keeping the key (tokens and weights are
    /// reused, not copied).
    pub fn into_valid(self, layout: &SidLayout) -> std::result::Result<ValidItem, String> {
        self.into_valid_or_key(layout)
            .map_err(|(message, _)| message)
    }

    /// [`NewItem::into_valid`]; an error hands the key back with the
    /// message, for the caller to name the item.
    pub(crate) fn into_valid_or_key(
        self,
        layout: &SidLayout,
    ) -> std::result::Result<ValidItem, (String, String)> {
        let NewItem {
            key,
            tokens,
            weights,
        } = self;
        match ValidSid::check(layout, tokens, weights) {
            Ok(sid) => Ok(ValidItem { key, sid }),
            Err(m) => Err((m, key)),
        }
    }
}

impl ValidSid {
    /// Checks `tokens` (semantic, or a full SID with its disambiguation
    /// token) and `weights` against `layout`, in their own buffers: the one
    /// rule both [`NewItem::validate`] and [`NewItem::into_valid`] apply.
    fn check(
        layout: &SidLayout,
        mut tokens: Vec<Token>,
        weights: Vec<f32>,
    ) -> std::result::Result<ValidSid, String> {
        let (semantic, requested) = layout
            .split_full(&tokens)
            .map(|(semantic, requested)| (semantic.len(), requested))?;
        tokens.truncate(semantic);
        layout.canonicalize(&mut tokens, &weights)?;
        Ok(ValidSid {
            tokens,
            weights,
            requested,
            layout: *layout,
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
        // The disambiguation counter may reach K and beyond; semantic tokens may not.
        let v = item(vec![1, 2, 3, 800], vec![0.5])
            .validate(&layout)
            .unwrap();
        assert_eq!(v.into_parts(), (vec![1, 2, 3], vec![0.5], Some(800)));
        assert!(item(vec![1, 8, 3, 0], vec![]).validate(&layout).is_err());
        // K at the behavior position is the masked token, written as its column.
        let v = item(vec![1, 2, 8, 0], vec![]).validate(&layout).unwrap();
        assert_eq!(v.into_parts(), (vec![1, 2, EMPTY], vec![], Some(0)));
        assert!(
            item(vec![1, 2, 3, EMPTY], vec![])
                .validate(&layout)
                .is_err()
        );
        assert!(item(vec![1, 2], vec![]).validate(&layout).is_err());
        assert!(item(vec![EMPTY, 2, 3], vec![]).validate(&layout).is_err());
    }

    /// `into_valid` reuses the item's buffers; it must decide as `validate` does.
    #[test]
    fn into_valid_agrees_with_validate() {
        let layout = SidLayout::new(3, 8, 1).unwrap();
        let cases = [
            (vec![1, 2, 3], vec![0.0]),
            (vec![1, 2, 3, 7], vec![0.5]),
            (vec![1, 2, 3, 800], vec![]),
            (vec![1, 2, 8, 0], vec![]),
            (vec![1, 8, 3, 0], vec![]),
            (vec![1, 2, 3, EMPTY], vec![]),
            (vec![1, 2, 3, 4, 5], vec![]),
            (vec![1, 2], vec![]),
            (vec![EMPTY, 2, 3], vec![]),
            (vec![1, 2, EMPTY], vec![0.5]),
            (vec![1, 2, 3], vec![-1.0]),
        ];
        for (tokens, weights) in cases {
            let it = item(tokens, weights);
            let expected = it.validate(&layout);
            match it.clone().into_valid_or_key(&layout) {
                Ok(v) => assert_eq!(Ok(v.sid), expected, "{it:?}"),
                Err((m, key)) => {
                    assert_eq!(Err(m), expected, "{it:?}");
                    assert_eq!(key, "a");
                }
            }
        }
    }

    #[test]
    fn a_valid_item_is_trusted_for_its_own_layout_only() {
        let layout = SidLayout::new(3, 8, 1).unwrap();
        let valid = item(vec![1, 2, 3], vec![0.5]).into_valid(&layout).unwrap();
        assert_eq!(valid.valid(&layout).unwrap().into_owned(), valid.sid);
        let other = SidLayout::new(3, 4, 1).unwrap();
        let err = valid.valid(&other).unwrap_err();
        assert!(err.contains("validated for"), "{err}");
        // The same tokens as a NewItem are checked afresh, and fail: 5 ≥ K = 4.
        let valid = item(vec![1, 2, 5], vec![0.5]).into_valid(&layout).unwrap();
        assert!(valid.valid(&other).is_err());
        assert!(item(vec![1, 2, 5], vec![0.5]).valid(&other).is_err());
    }
}
