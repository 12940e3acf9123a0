//! Tokens as Python sees them: one spelling everywhere, the *column* of a
//! token among the `K + 1` of a mask. A semantic token `t < K` is `t`, the
//! masked behavior token is `K`; the disambiguation counter is itself (it
//! may exceed K).

use adasid::sid::{EMPTY, SidLayout, Token};

/// Python ints (column spelling) as the prefix they spell, checked against
/// the layout (`SidLayout::read_prefix`); the message says which position
/// is wrong.
pub(crate) fn prefix(layout: &SidLayout, values: &[i64]) -> Result<Vec<Token>, String> {
    let tokens = values
        .iter()
        .enumerate()
        .map(|(pos, &v)| {
            Token::try_from(v)
                .ok()
                .filter(|&t| t != EMPTY)
                .ok_or_else(|| format!("token {v} at position {pos} is out of range"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    layout.read_prefix(&tokens).map_err(|e| e.to_string())
}

/// A prefix or full SID in the column spelling.
pub(crate) fn columns(layout: &SidLayout, tokens: &[Token]) -> Vec<i64> {
    (tokens.iter().enumerate())
        .map(|(pos, &t)| layout.spelling(pos, t) as i64)
        .collect()
}

/// The tokens that follow a prefix of `depth` tokens, in the column spelling.
pub(crate) fn next_columns(
    layout: &SidLayout,
    depth: usize,
    next: &[Token],
) -> impl Iterator<Item = i64> {
    next.iter().map(move |&t| layout.spelling(depth, t) as i64)
}
