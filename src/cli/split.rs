//! `scenes split`: a bag into valid smaller bags by size and/or duration.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::{usage, Context, Outcome};
use crate::bag::Compression;

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Bag to split
    pub bag: PathBuf,

    /// Largest message payload per output, e.g. 10GiB, 500MB
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,

    /// Longest time span per output, in seconds
    #[arg(long, value_name = "SECONDS")]
    pub max_duration: Option<f64>,

    /// Directory for the outputs [default: beside the input]
    #[arg(long)]
    pub out_dir: Option<PathBuf>,

    /// Chunk compression of the outputs [default: the input's]
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
}

/// Chunk compression of bags this tool writes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    None,
    Bz2,
    Lz4,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Bz2 => Compression::Bz2,
            CompressionArg::Lz4 => Compression::Lz4,
        }
    }
}

pub fn run(ctx: &Context, args: &SplitArgs) -> Result<Outcome> {
    let max_duration_ns = match args.max_duration {
        Some(s) if s.is_finite() && s > 0.0 => Some((s * 1e9) as u64),
        Some(s) => usage!("--max-duration {s}: give a positive number of seconds"),
        None => None,
    };
    let max_bytes = match args.max_size.as_deref().map(crate::split::parse_size).transpose() {
        Ok(bytes) => bytes,
        Err(e) => usage!("{e}"),
    };
    let opts = crate::split::SplitOptions { max_bytes, max_duration_ns, compression: args.compression.map(Into::into), out_dir: args.out_dir.clone() };
    let parts = crate::split::split_bag(&args.bag, &opts)?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&parts)?);
    } else {
        for p in &parts {
            println!("{}: {} messages, {}", p.path.display(), p.messages, crate::info::human_bytes(p.payload_bytes));
        }
    }
    Ok(Outcome::Done)
}
