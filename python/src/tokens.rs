//! Tokens as Python sees them: one spelling everywhere, the *column* of a
//! token among the `K + 1` of a mask. A semantic token `t < K` is `t`, the
//! masked behavior token is `K`; the disambiguation counter is itself (it
//! may exceed K).

use adasid::sid::{SidLayout, Token, token_column};

/// Python ints (column spelling) as the prefix they spell, checked against
/// the layout; the message says which position is wrong.
pub(crate) fn prefix(layout: &SidLayout, values: &[i64]) -> Result<Vec<Token>, String> {
    if values.len() > layout.full_len() {
        return Err(format!(
            "a prefix has at most {} tokens here ({} levels and a disambiguation token), got {}",
            layout.full_len(),
            layout.levels,
            values.len()
        ));
    }
    let k = layout.k() as i64;
    let tokens = values
        .iter()
        .enumerate()
        .map(|(pos, &v)| {
            let top = if layout.is_disambiguation(pos) {
                adasid::sid::MAX_DISAMBIGUATION as i64 - 1
            } else {
                k
            };
            if !(0..=top).contains(&v) {
                return Err(format!(
                    "token {v} at position {pos} is out of range 0..={top}"
                ));
            }
            Ok(v as Token)
        })
        .collect::<Result<Vec<_>, _>>()?;
    layout.read_prefix(&tokens).map_err(|e| e.to_string())
}

/// A prefix or full SID in the column spelling.
pub(crate) fn columns(layout: &SidLayout, tokens: &[Token]) -> Vec<i64> {
    (0..tokens.len())
        .flat_map(|pos| next_columns(layout, pos, &tokens[pos..pos + 1]))
        .collect()
}

/// The tokens that follow a prefix of `depth` tokens, in the column spelling.
pub(crate) fn next_columns(
    layout: &SidLayout,
    depth: usize,
    next: &[Token],
) -> impl Iterator<Item = i64> {
    let k = layout.k() as usize;
    let counters = layout.is_disambiguation(depth);
    next.iter().map(move |&t| {
        if counters {
            t as i64
        } else {
            token_column(k, t) as i64
        }
    })
}
