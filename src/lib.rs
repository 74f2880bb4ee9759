//! `scenes`: a lakehouse ETL for autonomous-driving ROS bags.
//!
//! Data flows one way, and each layer imports only the layers before it:
//!
//! 1. [`source`]: where a bag's bytes come from (a local file, S3 byte ranges) and how
//!    command-line inputs become a list of bags;
//! 2. [`bag`]: bag readers (ROS1, MCAP), robust to torn and unindexed files; they hand out
//!    chunks and own their memory; plus the ROS1 writer;
//! 3. [`decode`]: message definitions and decoding messages into Arrow columns;
//! 4. [`lake`]: table layout and naming, Parquet part files, Delta commits, reading a table
//!    back; [`meta`]: the metadata store (bag, batch and scene records);
//! 5. stages: [`ingest`] (bag → one table per topic), [`sync`] (every topic on one timeline),
//!    [`detect`] (lane assignment and scenes); [`batch`] runs sync and detect over claimed
//!    batches of bags;
//! 6. [`query`]: SQL over the lake (DataFusion); [`catalog`]: Athena DDL and Glue;
//!    [`report`]: the HTML page of the scenes;
//! 7. [`config`] (settings, handing each part its own options) and [`cli`] (one file per
//!    command) on top.
//!
//! Beside the pipeline: [`info`], [`split`], [`clip`] and [`generate`] (bag tools: summaries,
//! splitting, scene clips, synthetic drives with ground truth), [`failpoint`] (test pauses) and [`fuzz_entry`] (what the
//! fuzz targets in `fuzz/` call).
//!
//! Everything but `source`, `bag`, `decode`, `lake::layout`, `info`, `split`, `generate` and
//! `fuzz_entry` needs the default `lake` feature.

pub mod bag;
#[cfg(feature = "lake")]
pub mod batch;
#[cfg(feature = "lake")]
pub mod catalog;
#[cfg(feature = "lake")]
pub mod cli;
#[cfg(feature = "lake")]
pub mod clip;
#[cfg(feature = "lake")]
pub mod config;
pub mod decode;
#[cfg(feature = "lake")]
pub mod detect;
pub mod error;
#[cfg(feature = "lake")]
pub mod failpoint;
pub mod fuzz_entry;
pub mod generate;
pub mod info;
#[cfg(feature = "lake")]
pub mod ingest;
pub mod lake;
#[cfg(feature = "lake")]
pub mod meta;
#[cfg(feature = "lake")]
pub mod query;
#[cfg(feature = "lake")]
pub mod report;
pub mod source;
pub mod split;
#[cfg(feature = "lake")]
pub mod sync;

pub use error::{Error, Result};
