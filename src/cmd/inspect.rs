//! `riskgrad inspect`

use super::data_args::DataArgs;
use riskgrad::data::{inspect, inspect_bundled, render_schema};
use riskgrad::Result;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: &InspectArgs) -> Result<()> {
    let opts = args.data.options(0.2, 0)?;
    let schema = match &args.data.data {
        None => inspect_bundled(&opts)?,
        Some(path) => inspect(path, &opts)?,
    };
    println!("{}", args.data.name());
    print!("{}", render_schema(&schema));
    super::data_args::report_odd_cells(&schema);
    Ok(())
}
