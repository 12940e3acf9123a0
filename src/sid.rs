//! Semantic IDs: tokens, the layout of a database's SIDs, and prefix keys.
//!
//! An item's *full SID* is `levels` semantic tokens (one per expert, in the
//! fixed order shared, content-specific, behavior) followed by one
//! disambiguation token that makes full SIDs unique. Masked behavior SIDs
//! (routing weight exactly 0) carry the distinct [`EMPTY`] token.
//!
//! Invariant of [`prefix_key`]: the key of a prefix is a byte-prefix of the key
//! of every SID under it, and byte order equals token order (big-endian u16,
//! [`EMPTY`] sorting last), so ordered stores can range-scan by prefix.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One token of a SID. Codebook tokens are `0..K`; [`EMPTY`] marks a masked behavior SID.
pub type Token = u16;

/// The "empty" token of a masked behavior SID (routing weight exactly 0).
pub const EMPTY: Token = u16::MAX;

/// Largest codebook size: every real token must stay below [`EMPTY`].
pub const MAX_CODEBOOK_SIZE: u32 = EMPTY as u32;

/// Largest number of semantic levels a database may have.
pub const MAX_LEVELS: u32 = 64;

/// How many items one semantic SID can hold: disambiguation tokens are
/// counters `0..MAX_DISAMBIGUATION`, independent of K (every `u16` but
/// [`EMPTY`]).
pub const MAX_DISAMBIGUATION: u32 = EMPTY as u32;

/// The routing weight an index holds for behavior position `b` whose token
/// is `token`, given an item's `weights`: the given one, else 1 (0 where
/// the position is masked).
pub(crate) fn held_weight(weights: &[f32], token: Token, b: usize) -> f32 {
    match weights.get(b) {
        Some(&v) => v,
        None if token == EMPTY => 0.0,
        None => 1.0,
    }
}

/// Shape of the SIDs in one database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidLayout {
    /// Semantic tokens per item (the disambiguation token comes on top).
    pub levels: u8,
    /// Codebook size K: semantic tokens are `0..K`.
    pub codebook_size: u16,
    /// How many of the last positions are behavior SIDs (these may be [`EMPTY`]
    /// and carry routing weights).
    pub behavior: u8,
}

impl SidLayout {
    /// Checks the ranges and builds a layout.
    pub fn new(levels: u32, codebook_size: u32, behavior: u32) -> Result<Self> {
        if levels == 0 || levels > MAX_LEVELS {
            return Err(Error::InvalidArgument(format!(
                "levels must be in 1..={MAX_LEVELS}, got {levels}"
            )));
        }
        if codebook_size == 0 || codebook_size > MAX_CODEBOOK_SIZE {
            return Err(Error::InvalidArgument(format!(
                "codebook size K must be in 1..={MAX_CODEBOOK_SIZE}, got {codebook_size}"
            )));
        }
        if behavior > levels {
            return Err(Error::InvalidArgument(format!(
                "{behavior} behavior positions do not fit in {levels} levels"
            )));
        }
        Ok(SidLayout {
            levels: levels as u8,
            codebook_size: codebook_size as u16,
            behavior: behavior as u8,
        })
    }

    /// Semantic levels as `usize`.
    pub fn levels(&self) -> usize {
        self.levels as usize
    }

    /// Length of a full SID: semantic levels plus the disambiguation token.
    pub fn full_len(&self) -> usize {
        self.levels as usize + 1
    }

    /// Codebook size K.
    pub fn k(&self) -> u32 {
        self.codebook_size as u32
    }

    /// Index of the first behavior position.
    pub fn first_behavior(&self) -> usize {
        (self.levels - self.behavior) as usize
    }

    /// Whether `position` holds a behavior SID.
    pub fn is_behavior(&self, position: usize) -> bool {
        position >= self.first_behavior() && position < self.levels()
    }

    /// Bits in one next-token mask: K codebook tokens plus one bit for [`EMPTY`].
    pub fn mask_bits(&self) -> usize {
        self.codebook_size as usize + 1
    }

    /// `u64` words per next-token mask.
    pub fn mask_words(&self) -> usize {
        self.mask_bits().div_ceil(64)
    }

    /// Bit of `token` in a next-token mask ([`EMPTY`] maps to bit K, and so
    /// does a disambiguation counter of K or more: see [`token_column`]).
    pub fn mask_bit(&self, token: Token) -> usize {
        token_column(self.codebook_size as usize, token)
    }

    /// A `u64` whose order agrees with the order of this layout's full
    /// SIDs: the SID's leading tokens packed in just enough bits each (a
    /// semantic token as its mask bit, so the empty token sorts last as it
    /// does in a slice), cut after 64 bits. Sorting by it first leaves only
    /// the ties to compare whole, and the narrower the tokens, the fewer ties.
    pub fn sort_key(&self, full: &[Token]) -> u64 {
        let width = u32::BITS - self.k().leading_zeros();
        let mut key = 0u128;
        let mut used = 0;
        for (pos, &t) in full.iter().enumerate() {
            if used >= 64 {
                break;
            }
            let (value, bits) = match pos < self.levels as usize {
                true => (self.mask_bit(t) as u128, width),
                false => (t as u128, Token::BITS),
            };
            key |= value << (128 - used - bits);
            used += bits;
        }
        (key >> 64) as u64
    }

    /// Token of a next-token mask bit: the inverse of [`SidLayout::mask_bit`]
    /// (bit K is [`EMPTY`]); `None` past the mask.
    pub fn token_of_bit(&self, bit: usize) -> Option<Token> {
        let k = self.codebook_size as usize;
        (bit <= k).then(|| column_token(k, bit))
    }

    /// Whether `position` holds the disambiguation token (the last of a full SID).
    pub fn is_disambiguation(&self, position: usize) -> bool {
        position == self.levels()
    }

    /// The token a file or a caller writes as `token` at `pos`: the masked
    /// behavior token has two spellings, [`EMPTY`] (`-` in token lists) and
    /// `K` (its mask column, as `export --format tokens` and the Python
    /// package write it), read alike everywhere through this one rule.
    /// Every other value is itself (`K` at a semantic non-behavior position
    /// stays out of range; a counter at the disambiguation position is a counter).
    pub fn from_spelling(&self, pos: usize, token: Token) -> Token {
        match self.is_behavior(pos) {
            true => column_token(self.k() as usize, token as usize),
            false => token,
        }
    }

    /// The inverse of [`SidLayout::from_spelling`], the spelling files and
    /// Python write: a semantic token's mask column ([`EMPTY`] is K), the
    /// disambiguation counter as it is (it may exceed K).
    pub fn spelling(&self, pos: usize, token: Token) -> usize {
        match self.is_disambiguation(pos) {
            true => token as usize,
            false => self.mask_bit(token),
        }
    }

    /// A query prefix as written ([`SidLayout::from_spelling`] per
    /// position), checked ([`SidLayout::check_prefix`]).
    pub fn read_prefix(&self, written: &[Token]) -> Result<Vec<Token>> {
        let prefix: Vec<Token> = written
            .iter()
            .enumerate()
            .map(|(pos, &t)| self.from_spelling(pos, t))
            .collect();
        self.check_prefix(&prefix)?;
        Ok(prefix)
    }

    /// The one rule for a single token: a semantic position of a full SID
    /// may hold a codebook token below K, or [`EMPTY`] at a behavior
    /// position; the disambiguation position any counter below
    /// [`MAX_DISAMBIGUATION`]. Every other check ([`SidLayout::canonical`],
    /// [`SidLayout::check_prefix`], [`SidLayout::check_full`]) applies this one.
    pub fn check_token(&self, pos: usize, token: Token) -> std::result::Result<(), String> {
        if self.is_disambiguation(pos) {
            if token as u32 >= MAX_DISAMBIGUATION {
                return Err(format!(
                    "disambiguation token {token} is out of range: not below {MAX_DISAMBIGUATION}"
                ));
            }
        } else if token == EMPTY {
            if !self.is_behavior(pos) {
                return Err(format!(
                    "position {pos} cannot be empty ('-'): only the last {} positions are behavior SIDs",
                    self.behavior
                ));
            }
        } else if token as u32 >= self.k() {
            return Err(format!(
                "token {token} at position {pos} is out of range: not below K = {}",
                self.codebook_size
            ));
        }
        Ok(())
    }

    /// Splits a token list into semantic tokens and an optional requested
    /// disambiguation token (present when the full SID, `levels + 1` tokens,
    /// is given).
    pub fn split_full<'a>(
        &self,
        tokens: &'a [Token],
    ) -> std::result::Result<(&'a [Token], Option<Token>), String> {
        if tokens.len() == self.full_len() {
            let d = tokens[self.levels()];
            self.check_token(self.levels(), d)?;
            return Ok((&tokens[..self.levels()], Some(d)));
        }
        Ok((tokens, None))
    }

    /// Checks semantic tokens and routing weights against the layout and
    /// returns the canonical token list: a behavior position whose weight is
    /// exactly 0 becomes [`EMPTY`].
    pub fn canonical(
        &self,
        tokens: &[Token],
        weights: &[f32],
    ) -> std::result::Result<Vec<Token>, String> {
        let mut out = tokens.to_vec();
        self.canonicalize(&mut out, weights)?;
        Ok(out)
    }

    /// [`SidLayout::canonical`] in place (on error `tokens` may be half done).
    pub fn canonicalize(
        &self,
        tokens: &mut [Token],
        weights: &[f32],
    ) -> std::result::Result<(), String> {
        if tokens.len() != self.levels() {
            return Err(format!(
                "expected {} tokens, found {}",
                self.levels,
                tokens.len()
            ));
        }
        self.check_weight_values(weights)?;
        let first = self.first_behavior();
        for (pos, token) in tokens.iter_mut().enumerate() {
            *token = self.from_spelling(pos, *token);
            self.check_token(pos, *token)?;
            let weight = pos.checked_sub(first).and_then(|b| weights.get(b));
            match (*token == EMPTY, weight) {
                (true, Some(&w)) if w != 0.0 => {
                    return Err(format!(
                        "position {pos} is empty but has routing weight {w}"
                    ));
                }
                (false, Some(&w)) if w == 0.0 => *token = EMPTY,
                _ => {}
            }
        }
        Ok(())
    }

    /// Weights alone: one per behavior position (or none), each finite and
    /// non-negative.
    fn check_weight_values(&self, weights: &[f32]) -> std::result::Result<(), String> {
        if !weights.is_empty() && weights.len() != self.behavior as usize {
            return Err(format!(
                "expected {} routing weights (one per behavior position), found {}",
                self.behavior,
                weights.len()
            ));
        }
        match weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            Some(w) => Err(format!(
                "routing weight {w} is not a finite non-negative number"
            )),
            None => Ok(()),
        }
    }

    /// Checks routing weights against canonical semantic tokens without
    /// allocating: [`SidLayout::canonical`]'s weight rules, and exactly 0
    /// where the token is [`EMPTY`].
    pub fn check_weights(
        &self,
        tokens: &[Token],
        weights: &[f32],
    ) -> std::result::Result<(), String> {
        self.check_weight_values(weights)?;
        let first = self.first_behavior();
        for (b, &w) in weights.iter().enumerate() {
            if (w == 0.0) != (tokens[first + b] == EMPTY) {
                return Err(format!(
                    "position {}: a routing weight of 0 and the empty token go together",
                    first + b
                ));
            }
        }
        Ok(())
    }

    /// Checks a query prefix (up to the full SID length); the last position may
    /// be any disambiguation counter below [`MAX_DISAMBIGUATION`].
    pub fn check_prefix(&self, prefix: &[Token]) -> Result<()> {
        if prefix.len() > self.full_len() {
            return Err(Error::InvalidArgument(format!(
                "prefix has {} tokens; SIDs here have {} levels plus a disambiguation token",
                prefix.len(),
                self.levels
            )));
        }
        for (pos, &token) in prefix.iter().enumerate() {
            self.check_token(pos, token)
                .map_err(Error::InvalidArgument)?;
        }
        Ok(())
    }

    /// Checks a full SID (semantic tokens plus disambiguation token, canonical)
    /// and its routing weights, as the index stores them.
    pub fn check_full(&self, full: &[Token], weights: &[f32]) -> Result<()> {
        if full.len() != self.full_len() {
            return Err(Error::InvalidArgument(format!(
                "a full SID has {} tokens here, got {}",
                self.full_len(),
                full.len()
            )));
        }
        self.check_prefix(full)?;
        self.check_weights(full, weights)
            .map_err(Error::InvalidArgument)
    }

    /// The weight a position contributes to overlap scoring: the routing weight
    /// for behavior positions, capped at 1 so no behavior position outweighs a
    /// content one (1 when the item has no weights, 0 when masked); 1 otherwise.
    pub fn position_weight(&self, tokens: &[Token], weights: &[f32], pos: usize) -> f32 {
        if tokens[pos] == EMPTY {
            return 0.0;
        }
        if self.is_behavior(pos) {
            weights
                .get(pos - self.first_behavior())
                .copied()
                .unwrap_or(1.0)
        } else {
            1.0
        }
    }
}

/// Column of `token` among the `k + 1` of a next-token mask or a decoder's
/// vocabulary (codebook size `k`): token `t < k` is column `t`, [`EMPTY`] is
/// column `k`. The one definition of that mapping, in both directions.
///
/// At the disambiguation position, where counters may exceed K, column `k`
/// is the *overflow* column: every counter `≥ k` maps to it (EMPTY never
/// occurs there). A mask bit `k` there says "some counter `≥ k`", and a
/// decoder's column `k` is their shared probability
/// (see [`crate::decode::BeamSearch`]).
#[inline]
pub fn token_column(k: usize, token: Token) -> usize {
    if token == EMPTY {
        k
    } else {
        (token as usize).min(k)
    }
}

/// Token of column `column` (at most `k`) at a semantic position: the
/// inverse of [`token_column`] there.
#[inline]
pub fn column_token(k: usize, column: usize) -> Token {
    if column == k { EMPTY } else { column as Token }
}

/// Byte key of a prefix: big-endian u16 per token.
pub fn prefix_key(tokens: &[Token]) -> Vec<u8> {
    let mut key = Vec::with_capacity(tokens.len() * 2);
    for t in tokens {
        key.extend_from_slice(&t.to_be_bytes());
    }
    key
}

/// Inverse of [`prefix_key`]; odd-length input is corrupt.
pub fn decode_prefix_key(key: &[u8]) -> Result<Vec<Token>> {
    if !key.len().is_multiple_of(2) {
        return Err(Error::corruption(
            "prefix key",
            format!("odd length {}", key.len()),
        ));
    }
    Ok(key
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

/// Parses a comma-separated token list such as `3,17,-`; `-` is [`EMPTY`].
/// An empty string is the empty prefix.
pub fn parse_tokens(text: &str) -> std::result::Result<Vec<Token>, String> {
    match parse_plain_tokens(text.as_bytes()) {
        Some(tokens) => Ok(tokens),
        None => parse_tokens_in_general(text),
    }
}

/// The common spelling — ASCII digits (at most 5) or `-` between single
/// commas, nothing else — read a byte at a time; `None` for anything else
/// (white space, an error, an empty field), which the general parser then
/// reads (a token file's lines go through here: millions per ingest).
fn parse_plain_tokens(text: &[u8]) -> Option<Vec<Token>> {
    let mut out = Vec::with_capacity(text.len() / 2 + 1);
    for field in text.split(|&b| b == b',') {
        let token = match field {
            b"-" => EMPTY,
            _ if field.is_empty() || field.len() > 5 => return None,
            _ => {
                let mut v = 0u32;
                for &b in field {
                    if !b.is_ascii_digit() {
                        return None;
                    }
                    v = v * 10 + (b - b'0') as u32;
                }
                if v >= MAX_CODEBOOK_SIZE {
                    return None;
                }
                v as Token
            }
        };
        out.push(token);
    }
    Some(out)
}

/// [`parse_tokens`] for any text: white space around fields, and the errors.
fn parse_tokens_in_general(text: &str) -> std::result::Result<Vec<Token>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|field| {
            let field = field.trim();
            if field == "-" {
                return Ok(EMPTY);
            }
            match field.parse::<u32>() {
                Ok(v) if v < MAX_CODEBOOK_SIZE => Ok(v as Token),
                Ok(v) => Err(format!(
                    "token {v} is too large (max {})",
                    MAX_CODEBOOK_SIZE - 1
                )),
                Err(_) => Err(format!("'{field}' is not a token (a number or '-')")),
            }
        })
        .collect()
}

/// Writes tokens as `parse_tokens` reads them.
pub fn format_tokens(tokens: &[Token]) -> String {
    let parts: Vec<String> = tokens
        .iter()
        .map(|&t| {
            if t == EMPTY {
                "-".to_string()
            } else {
                t.to_string()
            }
        })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> SidLayout {
        SidLayout::new(4, 256, 2).unwrap()
    }

    /// Sort keys never disagree with the order of the SIDs they stand for.
    #[test]
    fn sort_keys_agree_with_sid_order() {
        for (levels, k) in [(3, 8), (8, 300), (4, 65_535), (2, 2)] {
            let layout = SidLayout::new(levels, k, 1).unwrap();
            let mut state = 11u64;
            let mut next = |n: u64| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 33) % n
            };
            let mut sids: Vec<Vec<Token>> = (0..2_000)
                .map(|_| {
                    let choices = [0, k / 2, k - 1];
                    let mut full: Vec<Token> = (0..levels)
                        .map(|_| choices[next(3) as usize] as Token)
                        .collect();
                    if next(4) == 0 {
                        full[levels as usize - 1] = EMPTY;
                    }
                    full.push(next(70_000).min(65_534) as Token);
                    full
                })
                .collect();
            sids.sort();
            for w in sids.windows(2) {
                assert!(layout.sort_key(&w[0]) <= layout.sort_key(&w[1]), "{w:?}");
            }
        }
    }

    #[test]
    fn zero_weight_masks_behavior_token() {
        let out = layout().canonical(&[1, 2, 3, 4], &[0.5, 0.0]).unwrap();
        assert_eq!(out, vec![1, 2, 3, EMPTY]);
    }

    #[test]
    fn rejects_out_of_range_and_misplaced_empty() {
        assert!(layout().canonical(&[1, 256, 3, 4], &[]).is_err());
        assert!(layout().canonical(&[1, 2, 3, 257], &[]).is_err());
        assert!(layout().canonical(&[EMPTY, 2, 3, 4], &[]).is_err());
        assert!(layout().canonical(&[1, 2, 3], &[]).is_err());
        assert!(layout().canonical(&[1, 2, 3, EMPTY], &[0.5, 0.2]).is_err());
        assert!(layout().canonical(&[1, 2, 3, 4], &[0.5]).is_err());
        assert!(layout().canonical(&[1, 2, 3, 4], &[0.5, f32::NAN]).is_err());
    }

    #[test]
    fn k_spells_the_masked_token_at_behavior_positions_only() {
        let l = layout();
        assert_eq!(
            l.canonical(&[1, 2, 3, 256], &[]).unwrap(),
            vec![1, 2, 3, EMPTY]
        );
        assert_eq!(
            l.canonical(&[1, 2, 3, EMPTY], &[]).unwrap(),
            vec![1, 2, 3, EMPTY]
        );
        assert_eq!(l.read_prefix(&[1, 2, 256]).unwrap(), vec![1, 2, EMPTY]);
        for (pos, t) in [(0, 5), (2, EMPTY), (3, 255), (4, 300)] {
            assert_eq!(l.from_spelling(pos, l.spelling(pos, t) as Token), t);
        }
        assert_eq!((l.spelling(3, EMPTY), l.spelling(4, 300)), (256, 300));
        // A counter of K at the disambiguation position is a counter.
        assert_eq!(
            l.read_prefix(&[1, 2, 3, 4, 256]).unwrap(),
            vec![1, 2, 3, 4, 256]
        );
        let e = l.read_prefix(&[256]).unwrap_err().to_string();
        assert!(e.contains("not below K"), "{e}");
    }

    proptest::proptest! {
        /// The byte-level fast path reads exactly what the general parser reads.
        #[test]
        fn the_fast_token_parser_agrees_with_the_general_one(
            text in "[0-9, \t-]{0,24}|[0-9,-]{0,24}|([0-9]{1,6},){0,6}[0-9]{1,6}",
        ) {
            if let Some(fast) = parse_plain_tokens(text.as_bytes()) {
                proptest::prop_assert_eq!(Ok(fast), parse_tokens_in_general(&text));
            }
            proptest::prop_assert_eq!(parse_tokens(&text), parse_tokens_in_general(&text));
        }
    }

    #[test]
    fn parse_and_format_round_trip() {
        let t = parse_tokens("3, 17,-").unwrap();
        assert_eq!(t, vec![3, 17, EMPTY]);
        assert_eq!(format_tokens(&t), "3,17,-");
        assert!(parse_tokens("3,x").is_err());
        assert!(parse_tokens("70000").is_err());
        assert_eq!(parse_tokens("").unwrap(), Vec::<Token>::new());
    }

    #[test]
    fn mask_geometry() {
        let l = layout();
        assert_eq!(l.mask_bits(), 257);
        assert_eq!(l.mask_words(), 5);
        assert_eq!(l.mask_bit(EMPTY), 256);
        for bit in 0..l.mask_bits() {
            assert_eq!(l.mask_bit(l.token_of_bit(bit).unwrap()), bit);
        }
        assert_eq!(l.token_of_bit(257), None);
        // Disambiguation counters past K share the overflow column.
        assert_eq!(token_column(256, 255), 255);
        assert_eq!(token_column(256, 256), 256);
        assert_eq!(token_column(256, 9000), 256);
    }

    #[test]
    fn disambiguation_counters_do_not_depend_on_k() {
        let l = layout();
        assert!(l.check_full(&[1, 2, 3, 4, 256], &[]).is_ok());
        assert!(l.check_full(&[1, 2, 3, 4, 65534], &[]).is_ok());
        assert!(l.check_full(&[1, 2, 3, 4, EMPTY], &[]).is_err());
        assert!(l.check_prefix(&[1, 2, 256]).is_err());
        assert!(l.check_prefix(&[1, 2, 3, 4, 40000]).is_ok());
    }
}
