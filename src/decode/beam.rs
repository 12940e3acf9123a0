//! Trie-constrained beam search over SIDs.
//!
//! Every step asks the scorer for next-token log-probabilities of all live
//! beams at once, asks the index which tokens may follow each beam
//! ([`SidIndex::allowed_mask_flat`]), and keeps the `width` best extensions. A
//! beam therefore always spells a prefix that exists, and after
//! `levels + 1` steps (the disambiguation token included) a full SID, which
//! names exactly one item.
//!
//! The last step chooses among the items under each beam's semantic prefix
//! (its disambiguation counters, which may exceed K), not among mask bits:
//! a counter `d < K` scores the scorer's column `d`, and the `n` counters
//! of K or more share the overflow column K, each scoring its
//! log-probability minus `ln n` (see [`crate::sid::token_column`]). The
//! item scores under a prefix thus still sum to at most its probability.
//!
//! All buffers live in [`BeamSearch`] and are sized once; a step allocates
//! nothing. Ties are broken by parent beam, then token, so results are
//! deterministic.

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::index::{ItemId, Postings, SidIndex};
use crate::sid::{SidLayout, Token, column_token, token_column};

/// Scores the next token for a batch of prefixes.
pub trait StepScorer {
    /// Writes log-probabilities of the next token for `beams` prefixes of
    /// length `depth`, stored back to back in `tokens`, into `out`
    /// (`beams × vocab`, row-major). The vocabulary is `K + 1` wide: column
    /// `t < K` is token `t`, column `K` is [`crate::EMPTY`].
    fn score(
        &mut self,
        tokens: &[Token],
        depth: usize,
        beams: usize,
        out: &mut [f32],
    ) -> Result<()>;
}

/// A scorer whose log-probabilities were computed elsewhere (for instance
/// for many searches in one model call): it hands out `logits` as they are.
pub struct Precomputed<'a>(pub &'a [f32]);

impl StepScorer for Precomputed<'_> {
    fn score(&mut self, _: &[Token], _: usize, beams: usize, out: &mut [f32]) -> Result<()> {
        if self.0.len() != out.len() {
            return Err(Error::InvalidArgument(format!(
                "{} precomputed log-probabilities for {beams} beams that need {}",
                self.0.len(),
                out.len()
            )));
        }
        out.copy_from_slice(self.0);
        Ok(())
    }
}

/// One decoded item.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The item whose full SID the beam spelled.
    pub item: ItemId,
    /// Sum of the log-probabilities of its tokens.
    pub score: f32,
}

#[derive(Clone, Copy, Debug)]
struct Extension {
    score: f32,
    beam: u32,
    token: Token,
}

/// Best first; equal scores by parent beam, then token (a total order,
/// since a (beam, token) pair occurs once).
fn better(a: &Extension, b: &Extension) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.beam.cmp(&b.beam))
        .then(a.token.cmp(&b.token))
}

/// Reusable beam-search state for one SID layout and beam width.
pub struct BeamSearch {
    width: usize,
    vocab: usize,
    words: usize,
    steps: usize,
    beams: usize,
    tokens: Vec<Token>,
    next_tokens: Vec<Token>,
    scores: Vec<f32>,
    logits: Vec<f32>,
    masks: Vec<u64>,
    extensions: Vec<Extension>,
}

impl BeamSearch {
    /// Buffers for decoding full SIDs of `layout` with up to `width` beams.
    pub fn new(layout: SidLayout, width: usize) -> Result<BeamSearch> {
        if width == 0 {
            return Err(Error::InvalidArgument(
                "beam width must be at least 1".into(),
            ));
        }
        let (vocab, words, steps) = (layout.mask_bits(), layout.mask_words(), layout.full_len());
        Ok(BeamSearch {
            width,
            vocab,
            words,
            steps,
            beams: 0,
            tokens: Vec::with_capacity(width * steps),
            next_tokens: Vec::with_capacity(width * steps),
            scores: Vec::with_capacity(width),
            logits: vec![0.0; width * vocab],
            masks: vec![0; width * words],
            extensions: Vec::with_capacity(width * vocab),
        })
    }

    /// The beam width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Decodes up to `width` items, best first.
    pub fn search<S: StepScorer + ?Sized>(
        &mut self,
        index: &dyn SidIndex,
        scorer: &mut S,
    ) -> Result<Vec<Hit>> {
        if index.layout().mask_bits() != self.vocab || index.layout().full_len() != self.steps {
            return Err(Error::InvalidArgument(
                "the beam search was sized for another SID layout".into(),
            ));
        }
        self.start();
        for depth in 0..self.steps {
            self.step(Some(index), scorer, depth)?;
            if self.beams == 0 {
                break;
            }
        }
        self.finish(index)
    }

    /// Steps per full SID (semantic levels + disambiguation).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The items the live beams spell, best first (after the last step).
    pub fn finish(&self, index: &dyn SidIndex) -> Result<Vec<Hit>> {
        let mut hits = Vec::with_capacity(self.beams);
        for b in 0..self.beams {
            let sid = &self.tokens[b * self.steps..(b + 1) * self.steps];
            let item = match index.items(sid) {
                Some(Postings::One(item)) => item,
                Some(p) if p.len() == 1 => p.iter().next().expect("one item"),
                _ => {
                    return Err(Error::corruption(
                        "index",
                        "a full SID does not name exactly one item",
                    ));
                }
            };
            hits.push(Hit {
                item,
                score: self.scores[b],
            });
        }
        Ok(hits)
    }

    /// Resets to one empty beam with score 0.
    pub fn start(&mut self) {
        self.tokens.clear();
        self.scores.clear();
        self.scores.push(0.0);
        self.beams = 1;
    }

    /// Live beams after the last step.
    pub fn beams(&self) -> usize {
        self.beams
    }

    /// For each live beam, the beam it extended at the last step (its
    /// index among that step's beams); a decoder with per-beam state
    /// reorders it by these.
    pub fn parents(&self) -> impl Iterator<Item = usize> + '_ {
        self.extensions[..self.beams.min(self.extensions.len())]
            .iter()
            .map(|e| e.beam as usize)
    }

    /// The live beams' tokens, back to back, best beam first.
    pub fn prefixes(&self) -> &[Token] {
        &self.tokens
    }

    /// One decoding step from beams of length `depth` to `depth + 1`. With
    /// `index`, only tokens the trie allows are kept; without, every column
    /// is (the unconstrained baseline the benchmark compares against).
    pub fn step<S: StepScorer + ?Sized>(
        &mut self,
        index: Option<&dyn SidIndex>,
        scorer: &mut S,
        depth: usize,
    ) -> Result<()> {
        let (beams, vocab) = (self.beams, self.vocab);
        let logits = &mut self.logits[..beams * vocab];
        scorer.score(&self.tokens, depth, beams, logits)?;
        self.extensions.clear();
        let k = vocab - 1;
        match index {
            Some(index) if depth + 1 == self.steps => {
                let beams = Beams {
                    tokens: &self.tokens,
                    scores: &self.scores,
                    depth,
                    vocab,
                };
                beams.extend_to_items(index, logits, &mut self.extensions);
            }
            Some(index) => {
                let masks = &mut self.masks[..beams * self.words];
                index.allowed_mask_flat(&self.tokens, depth, beams, masks)?;
                for b in 0..beams {
                    let row = &masks[b * self.words..(b + 1) * self.words];
                    for (w, &word) in row.iter().enumerate() {
                        let mut bits = word;
                        while bits != 0 {
                            let column = w * 64 + bits.trailing_zeros() as usize;
                            bits &= bits - 1;
                            if column >= vocab {
                                // Padding bits: only a damaged index sets them.
                                break;
                            }
                            self.extensions.push(Extension {
                                score: self.scores[b] + logits[b * vocab + column],
                                beam: b as u32,
                                token: column_token(k, column),
                            });
                        }
                    }
                }
            }
            None => {
                for b in 0..beams {
                    for column in 0..vocab {
                        self.extensions.push(Extension {
                            score: self.scores[b] + logits[b * vocab + column],
                            beam: b as u32,
                            token: column_token(k, column),
                        });
                    }
                }
            }
        }
        if self.extensions.len() > self.width {
            self.extensions
                .select_nth_unstable_by(self.width - 1, better);
            self.extensions.truncate(self.width);
        }
        self.extensions.sort_unstable_by(better);
        self.next_tokens.clear();
        self.scores.clear();
        for e in &self.extensions {
            let parent = e.beam as usize * depth;
            self.next_tokens
                .extend_from_slice(&self.tokens[parent..parent + depth]);
            self.next_tokens.push(e.token);
            self.scores.push(e.score);
        }
        std::mem::swap(&mut self.tokens, &mut self.next_tokens);
        self.beams = self.extensions.len();
        Ok(())
    }
}

/// The live beams of one step, as the last step reads them.
struct Beams<'a> {
    tokens: &'a [Token],
    scores: &'a [f32],
    depth: usize,
    vocab: usize,
}

impl Beams<'_> {
    /// The last step: every item under each beam's semantic prefix, by its
    /// disambiguation counter (overflow counters share column K).
    fn extend_to_items(&self, index: &dyn SidIndex, logits: &[f32], out: &mut Vec<Extension>) {
        let (depth, vocab) = (self.depth, self.vocab);
        let k = vocab - 1;
        for (b, &score) in self.scores.iter().enumerate() {
            let prefix = &self.tokens[b * depth..(b + 1) * depth];
            let counters = index.next_tokens(prefix).unwrap_or_default();
            let first_over = counters.partition_point(|&d| (d as usize) < k);
            let over = counters.len() - first_over;
            let share = if over > 1 { (over as f32).ln() } else { 0.0 };
            for (i, &d) in counters.iter().enumerate() {
                let penalty = if i >= first_over { share } else { 0.0 };
                out.push(Extension {
                    score: score + logits[b * vocab + token_column(k, d)] - penalty,
                    beam: b as u32,
                    token: d,
                });
            }
        }
    }
}
