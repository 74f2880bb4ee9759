//! The integration test suite, compiled as one test binary: every module below runs the
//! `scenes` binary or the library against real and generated bags. One binary instead of one per
//! file keeps a cold CI build to a single link of DataFusion, deltalake and the AWS SDK (each
//! test binary is ~300 MB in a debug build). Run one area with `cargo nextest run -E
//! 'test(/^robustness::/)'` or `cargo test --test suite robustness::`.

mod common;

mod aws_dynamodb;
mod aws_s3;
mod batch;
mod catalog;
mod clip;
mod crash_safety;
mod deploy;
mod detect;
mod exit_codes;
mod differential;
mod engines;
mod fleet;
mod fuzz_regressions;
mod info;
mod lake_tables;
mod mcap;
mod parquet_writers;
mod query;
mod readme_queries;
mod recovery;
mod report;
mod robustness;
mod rosbag2;
mod split;
mod structure;
mod sync;
