//! The benchmark (being written).
use crate::settings::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {}

pub async fn run(_settings: &Settings, _args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the benchmark is being written")
}
