//! The story-service binary: settings from flags and environment, telemetry, and
//! the shutdown signal; everything else is the library.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Fabula story-service: accounts, worlds, stories, entities, locations and events over gRPC")]
struct Cli {
    #[command(flatten)]
    settings: story_service::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fabula_proto::telemetry::init();
    let settings = Cli::parse().settings;
    let app = story_service::build(settings).await?;
    app.run_until_stopped(fabula_proto::shutdown::signal()).await?;
    Ok(())
}
