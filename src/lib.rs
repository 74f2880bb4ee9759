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
//! - [`config`], [`cli`]: settings and the command line.

pub mod bag;
pub mod batch;
pub mod cli;
pub mod config;
pub mod detect;
pub mod error;
pub mod generate;
pub mod info;
pub mod ingest;
pub mod lake;
pub mod lanes;
pub mod meta;
pub mod msg;
pub mod query;
pub mod split;
pub mod sync;

pub use error::{Error, Result};
