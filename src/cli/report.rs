//! `scenes report`: one static HTML page of the lake's scenes, with pictures.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{select_bags, Context, Outcome};
use crate::clip::ClipOptions;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Directory for index.html and its frames/ (and clips/ with --clips)
    #[arg(long, default_value = "report")]
    pub out: PathBuf,

    /// Only this bag: its key, name or source [default: every bag]
    #[arg(long)]
    pub bag: Option<String>,

    /// Also write each scene's clip into <out>/clips/ (scenes clip), linked from its card
    #[arg(long)]
    pub clips: bool,
}

pub fn run(ctx: &Context, args: &ReportArgs) -> Result<Outcome> {
    let (lake, store, runtime) = ctx.open_lake_and_store()?;
    let bags = select_bags(store.list_bags()?, args.bag.as_deref(), &lake)?;
    let keys: Vec<String> = bags.iter().map(|b| b.bag_file.clone()).collect();
    let mut failed = 0;
    if args.clips {
        let ids: Vec<String> = store.list_scenes()?.into_iter().filter(|s| keys.contains(&s.bag_file)).map(|s| s.scene_id).collect();
        let pad_ns = (ctx.config.clip.pad_s * 1e9) as u64;
        let opts = ClipOptions {
            format: None,
            compression: crate::bag::Compression::Lz4,
            out: args.out.join("clips").display().to_string(),
            latched_topics: ctx.config.clip.latched_topics.clone(),
            presign: None,
            replay_url: None,
            s3: ctx.config.s3.clone(),
        };
        for target in super::clip::scene_targets(store.as_ref(), &bags, &ids, pad_ns)? {
            if let Err(line) = target.and_then(|t| crate::clip::clip(&t, &opts, &runtime).map(|_| ()).map_err(|e| format!("{}: {e}", t.name))) {
                eprintln!("error: {line}");
                failed += 1;
            }
        }
    }
    let summary = runtime.block_on(crate::report::write_report(&lake, store.as_ref(), &ctx.config.detect, &args.out, Some(&keys)))?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if ctx.prints_text() {
        println!("{}: {} bags, {} scenes, {} camera frames", summary.page.display(), summary.bags, summary.scenes, summary.frames);
    }
    Ok(if failed == 0 { Outcome::Done } else { Outcome::SomeFailed { failed, total: summary.scenes } })
}
