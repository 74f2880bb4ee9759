//! `scenes`: a lakehouse ETL for autonomous-driving ROS bags.
//!
//! Stages, one module each:
//! - [`bag`]: reading (and writing) ROS1 bags, robust to torn and unindexed files;
//! - [`msg`]: parsing message definitions and decoding messages into Arrow columns;
//! - [`lake`]: table layout, Parquet part files and Delta commits;
//! - [`ingest`]: bag → one table per topic, in parallel over chunk ranges;
//! - [`meta`]: the metadata store (bag records);
//! - [`info`]: `scenes info`;
//! - [`detect`], [`batch`]: person-in-lane scenes, and batches of bags through sync + detect;
//! - [`lanes`]: image-space lane assignment (both detect rules);
//! - [`sync`]: every topic on one fixed-tick timeline per bag;
//! - [`query`]: SQL over the lake (DataFusion);
//! - [`generate`]: synthetic drives with ground truth;
//! - [`config`], [`cli`]: settings and the command line;
//! - [`fuzz_entry`]: what the fuzz targets in `fuzz/` call.
//!
//! Everything but `bag`, `msg`, `info`, `split`, `generate` and `lanes` needs the default
//! `lake` feature.

pub mod bag;
#[cfg(feature = "lake")]
pub mod catalog;
#[cfg(feature = "lake")]
pub mod batch;
#[cfg(feature = "lake")]
pub mod cli;
#[cfg(feature = "lake")]
pub mod config;
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
pub mod lanes;
#[cfg(feature = "lake")]
pub mod meta;
pub mod msg;
#[cfg(feature = "lake")]
pub mod query;
pub mod split;
#[cfg(feature = "lake")]
pub mod sync;

pub use error::{Error, Result};
