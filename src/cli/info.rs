//! `scenes info`: a summary of each bag, like `rosbag info`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{Context, Outcome};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Bag files
    #[arg(required = true)]
    pub bags: Vec<PathBuf>,
}

pub fn run(ctx: &Context, args: &InfoArgs) -> Result<Outcome> {
    let mut infos = Vec::new();
    for bag in &args.bags {
        let info = crate::info::bag_info(bag)?;
        if !ctx.json {
            if args.bags.len() > 1 {
                println!("== {}", bag.display());
            }
            print!("{}", crate::info::render(&info));
        }
        infos.push(info);
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
    }
    Ok(Outcome::Done)
}
