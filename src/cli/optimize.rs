//! `scenes optimize`: compacts the small part files of every table's bag partitions.

use anyhow::Result;
use clap::Args;

use super::{new_runtime, usage, Context, Outcome};
use crate::lake::optimize::{optimize_table, OptimizeReport};

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// Files smaller than this many MB are compacted, into files of at most this size
    #[arg(long, value_name = "MB", default_value_t = 128)]
    pub target_mb: u64,

    /// Only this table (a topic table's name, or synced, enriched, scenes)
    #[arg(long)]
    pub table: Option<String>,
}

pub fn run(ctx: &Context, args: &OptimizeArgs) -> Result<Outcome> {
    if args.target_mb == 0 {
        usage!("--target-mb 0: give a size in MB, 1 or more");
    }
    let runtime = new_runtime()?;
    let lake = ctx.open_lake(&runtime)?;
    let mut tables = runtime.block_on(lake.tables())?;
    if let Some(only) = &args.table {
        tables.retain(|t| &t.name == only);
        if tables.is_empty() {
            usage!("no table '{only}' in {}; `scenes query` with \\d lists them", lake.display());
        }
    }
    let parquet = ctx.config.parquet();
    let target = args.target_mb.saturating_mul(1 << 20);
    let mut reports: Vec<(String, OptimizeReport)> = Vec::new();
    for crate::lake::NamedTable { name, location, .. } in tables {
        let report = runtime.block_on(optimize_table(&location, target, &parquet))?;
        if ctx.prints_text() && report.files_removed > 0 {
            println!(
                "{name}: {} files of {} partitions compacted into {} ({:.1} MB → {:.1} MB), version {}",
                report.files_removed,
                report.partitions,
                report.files_added,
                report.bytes_removed as f64 / 1e6,
                report.bytes_added as f64 / 1e6,
                report.version.unwrap_or_default()
            );
        }
        reports.push((name, report));
    }
    let removed: usize = reports.iter().map(|(_, r)| r.files_removed).sum();
    let added: usize = reports.iter().map(|(_, r)| r.files_added).sum();
    if ctx.json {
        let tables: serde_json::Map<String, serde_json::Value> = reports.iter().map(|(n, r)| (n.clone(), serde_json::to_value(r).unwrap_or_default())).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "tables": tables }))?);
    } else if !ctx.quiet {
        println!("compacted {removed} files into {added}; the replaced files stay until `scenes vacuum` (older table versions read them)");
    }
    Ok(Outcome::Done)
}
