//! `scenes catalog athena|glue`: registers the lake's tables, its bag records and the
//! ready-made views for Athena, as DDL text or in the Glue Data Catalog.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{usage, Context, Outcome};
use crate::catalog::{catalog_entries, export_bags, CatalogEntry};

#[derive(Debug, Subcommand)]
pub enum CatalogTarget {
    /// Print DDL for Amazon Athena: CREATE DATABASE, one CREATE EXTERNAL TABLE per table
    /// (TBLPROPERTIES ('table_type'='DELTA')) and one CREATE OR REPLACE VIEW per view
    Athena(CatalogArgs),
    /// Create or update every table and view in the AWS Glue Data Catalog (what the deploy
    /// runs after each batch, so new topic tables appear in Athena by themselves)
    Glue(GlueArgs),
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// S3 URI of the lake (where its tables are, or will be copied to) [default: the lake, when it is s3://]
    #[arg(long)]
    pub location: Option<String>,

    /// Glue database to create the tables in
    #[arg(long, default_value = "scenes")]
    pub database: String,
}

#[derive(Debug, Args)]
pub struct GlueArgs {
    #[command(flatten)]
    pub catalog: CatalogArgs,

    /// Glue endpoint override (a local Glue such as moto); AWS_ENDPOINT_URL_GLUE works too
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

pub fn run(ctx: &Context, target: &CatalogTarget) -> Result<Outcome> {
    let args = match target {
        CatalogTarget::Athena(args) => args,
        CatalogTarget::Glue(glue) => &glue.catalog,
    };
    let lake_uri = ctx.lake_uri();
    let location = match &args.location {
        Some(l) => l.clone(),
        None if lake_uri.starts_with("s3://") => lake_uri.clone(),
        None => usage!("{lake_uri} is a local lake: pass --location s3://bucket/prefix/ naming where its tables are on S3"),
    };
    crate::catalog::check_identifier(&args.database)?;
    let (lake, store, runtime) = ctx.open_lake_and_store()?;
    let entries = runtime.block_on(async {
        export_bags(&lake, store.as_ref()).await?;
        catalog_entries(&lake, &location).await
    })?;
    if entries.iter().all(|e| e.name == "bags") {
        usage!("{}: no tables yet; run `scenes ingest` first", lake.display());
    }
    match target {
        CatalogTarget::Athena(args) => print!("{}", crate::catalog::athena_ddl(&entries, &args.database)?),
        CatalogTarget::Glue(glue) => runtime.block_on(register_in_glue(ctx, glue, &entries))?,
    }
    Ok(Outcome::Done)
}

#[cfg(feature = "aws")]
async fn register_in_glue(ctx: &Context, glue: &GlueArgs, entries: &[CatalogEntry]) -> Result<()> {
    use crate::catalog::glue;
    let database = &glue.catalog.database;
    let client = glue::client(glue.endpoint_url.as_deref()).await;
    glue::ensure_database(&client, database).await?;
    for entry in entries {
        let done = glue::register(&client, database, entry).await?;
        if !ctx.quiet {
            println!("{done} {database}.{} ({})", entry.name, match entry.kind {
                crate::catalog::EntryKind::Table { .. } => "Delta table",
                crate::catalog::EntryKind::View { .. } => "view",
            });
        }
    }
    Ok(())
}

#[cfg(not(feature = "aws"))]
async fn register_in_glue(_ctx: &Context, _glue: &GlueArgs, _entries: &[CatalogEntry]) -> Result<()> {
    anyhow::bail!("this build of scenes has no AWS support (feature `aws`): use `scenes catalog athena`")
}
