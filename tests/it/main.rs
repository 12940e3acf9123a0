//! The integration tests, one binary so a test run links once. It needs the
//! default feature set (`cli`): most modules drive the `adasid` program or
//! train a tokenizer.

mod common;

mod bad_input;
mod beam;
mod cli;
mod codec;
mod collisions;
mod compat;
mod concurrency;
mod corruption;
mod crash;
mod crash_cli;
mod data;
mod disk;
mod eval;
mod filter;
mod generative;
mod model;
mod ranking;
mod readers;
mod reopen;
mod snapshot;
mod token_index;
mod topk;
mod train;
mod train_cli;
