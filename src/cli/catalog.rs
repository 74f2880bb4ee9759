//! `scenes catalog athena`: catalog DDL for the lake's tables.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{new_runtime, usage, Context, Outcome};

#[derive(Debug, Subcommand)]
pub enum CatalogTarget {
    /// DDL for Amazon Athena (Delta tables: TBLPROPERTIES ('table_type'='DELTA'))
    Athena(AthenaArgs),
}

#[derive(Debug, Args)]
pub struct AthenaArgs {
    /// S3 URI of the lake (where its tables are, or will be copied to) [default: the lake, when it is s3://]
    #[arg(long)]
    pub location: Option<String>,

    /// Glue database to create the tables in
    #[arg(long, default_value = "scenes")]
    pub database: String,
}

pub fn run(ctx: &Context, target: &CatalogTarget) -> Result<Outcome> {
    let CatalogTarget::Athena(args) = target;
    let lake_uri = ctx.lake_uri();
    let location = match &args.location {
        Some(l) => l.clone(),
        None if lake_uri.starts_with("s3://") => lake_uri.clone(),
        None => usage!("{lake_uri} is a local lake: pass --location s3://bucket/prefix/ naming where its tables are on S3"),
    };
    let runtime = new_runtime()?;
    let lake = ctx.open_lake(&runtime)?;
    let tables = runtime.block_on(crate::catalog::lake_tables(&lake))?;
    if tables.is_empty() {
        usage!("{}: no tables yet; run `scenes ingest` first", lake.display());
    }
    print!("{}", crate::catalog::athena_ddl(&tables, &location, &args.database)?);
    Ok(Outcome::Done)
}
