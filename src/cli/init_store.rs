//! `scenes init-store`: creates the DynamoDB tables of the metadata store when they are missing.

use anyhow::Result;

use super::{Context, Outcome};

pub fn run(ctx: &Context) -> Result<Outcome> {
    let settings = &ctx.config.metadata_store;
    if !settings.is_dynamodb() {
        println!("metadata_store.kind is \"{}\": the store is created on first use, nothing to do", settings.kind);
        return Ok(Outcome::Done);
    }
    create_tables(settings)
}

#[cfg(feature = "aws")]
fn create_tables(settings: &crate::meta::MetadataStoreConfig) -> Result<Outcome> {
    let created = crate::meta::connect_dynamo(settings)?.create_missing_tables()?;
    if created.is_empty() {
        println!("all three DynamoDB tables exist");
    } else {
        println!("created {}", created.join(", "));
    }
    Ok(Outcome::Done)
}

#[cfg(not(feature = "aws"))]
fn create_tables(_settings: &crate::meta::MetadataStoreConfig) -> Result<Outcome> {
    anyhow::bail!("metadata_store.kind \"dynamodb\" needs a build with the `aws` feature (the default)")
}
