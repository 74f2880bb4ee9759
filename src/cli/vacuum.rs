//! `scenes vacuum`: removes files no table references any more (part files of killed runs,
//! replaced files that were kept), older than a retention window.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::{new_runtime, usage, Context, Outcome};
use crate::lake::vacuum::{vacuum_table, VacuumReport};

#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// Keep unreferenced files younger than this many hours (a run in progress writes files
    /// before it commits them; 0 is safe only while no ingest or batch runs)
    #[arg(long, value_name = "HOURS", default_value_t = 24.0)]
    pub retain_hours: f64,

    /// List what would be removed without removing it
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Context, args: &VacuumArgs) -> Result<Outcome> {
    if !(args.retain_hours.is_finite() && args.retain_hours >= 0.0) {
        usage!("--retain-hours {}: give a number of hours, 0 or more", args.retain_hours);
    }
    let retain = Duration::from_secs_f64(args.retain_hours * 3600.0);
    let runtime = new_runtime()?;
    let lake = ctx.open_lake(&runtime)?;
    let mut tables: Vec<(String, crate::lake::location::TableLocation)> = Vec::new();
    for name in runtime.block_on(lake.topic_tables())? {
        tables.push((format!("topics/{name}"), lake.topic_table(&name)));
    }
    // The derived tables also without a Delta log: a batch killed before its first commit
    // leaves part files there.
    for derived in crate::lake::DERIVED_TABLES {
        tables.push((derived.to_string(), lake.table(derived)));
    }
    // The bag records `scenes catalog` exports, rewritten whole at each run.
    tables.push((crate::catalog::BAGS_TABLE_PATH.to_string(), lake.table(crate::catalog::BAGS_TABLE_PATH)));
    let mut reports: Vec<(String, VacuumReport)> = Vec::new();
    for (name, location) in tables {
        let report = runtime.block_on(vacuum_table(&location, retain, args.dry_run))?;
        reports.push((name, report));
    }
    let removed: usize = reports.iter().map(|(_, r)| r.removed.len()).sum();
    let recent: usize = reports.iter().map(|(_, r)| r.kept_recent).sum();
    if ctx.json {
        let tables: serde_json::Map<String, serde_json::Value> = reports.iter().map(|(n, r)| (n.clone(), serde_json::to_value(r).unwrap_or_default())).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "dry_run": args.dry_run, "tables": tables }))?);
    } else if !ctx.quiet {
        for (name, report) in &reports {
            for file in &report.removed {
                println!("{name}/{file}");
            }
        }
        let verb = if args.dry_run { "would remove" } else { "removed" };
        println!("{verb} {removed} unreferenced files; kept {recent} younger than {} hours", args.retain_hours);
    }
    Ok(Outcome::Done)
}
