//! The gpt-worker binary: settings from flags and environment, telemetry, and the
//! shutdown signal; everything else is the library.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Fabula gpt-worker: AI jobs in a durable queue, run against a language model")]
struct Cli {
    #[command(flatten)]
    settings: gpt_worker::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fabula_proto::telemetry::init();
    let app = gpt_worker::build(Cli::parse().settings).await?;
    app.run_until_stopped(fabula_proto::shutdown::signal()).await?;
    Ok(())
}
