//! `riskgrad inspect`

use super::data_args::DataArgs;
use riskgrad::data::{inspect, inspect_bundled, render_schema, target_encoding};
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
    // The table is shown whole, then a target no model can learn from fails the
    // command (exit 3), as `train` would, so a script can check a file first.
    target_encoding(&schema).map(|_| ())
}
