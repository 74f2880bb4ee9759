//! `scenes query`: SQL over every table of the lake, or an interactive shell.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;

use super::{usage, Context, Outcome};
use crate::lake::Lake;
use crate::query::Format;

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// SQL statement (omit for an interactive shell)
    pub sql: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the result to this file instead of standard output
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: &QueryArgs) -> Result<Outcome> {
    let lake_uri = ctx.lake_uri();
    let local = Path::new(&lake_uri);
    if !lake_uri.starts_with("s3://") && !local.join("topics").is_dir() && !local.join("_scenes").is_dir() {
        usage!("{lake_uri}: no lake here yet; run `scenes ingest BAG...` first or pass --lake");
    }
    let format = if ctx.json && args.format == Format::Table { Format::Json } else { args.format };
    if format == Format::Parquet && args.output.is_none() && std::io::stdout().is_terminal() {
        usage!("--format parquet writes binary data; add --output FILE");
    }
    let (lake, store, runtime) = ctx.open_lake_and_store()?;
    let session = runtime.block_on(crate::query::lake_context(&lake, std::sync::Arc::from(store)))?;
    let Some(sql) = &args.sql else {
        crate::query::shell(&runtime, &session, &history_file(&lake))?;
        return Ok(Outcome::Done);
    };
    let batches = runtime.block_on(crate::query::run_sql(&session, sql))?;
    let bytes = crate::query::render(&batches, format)?;
    match &args.output {
        Some(path) => std::fs::write(path, bytes).with_context(|| format!("{}: cannot write the result", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(Outcome::Done)
}

/// The query shell's history: inside a local lake, else in the user's home directory.
fn history_file(lake: &Lake) -> PathBuf {
    match lake.local_root() {
        Some(root) => root.join("_scenes/query_history"),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".scenes_query_history"),
    }
}
