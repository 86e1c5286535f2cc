//! The guided demo (being written).
use crate::settings::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {}

pub async fn run(_settings: &Settings, _args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("the demo is being written")
}
