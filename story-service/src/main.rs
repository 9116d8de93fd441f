//! The story-service binary: settings from flags and environment, telemetry, and
//! the shutdown signal; everything else is the library.

use std::{process::ExitCode, time::Duration};

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Fabula story-service: accounts, worlds, stories, entities, locations and events over gRPC")]
struct Cli {
    /// Ask the service already running at the listen address whether it is SERVING,
    /// and exit 0 if so, 1 if not (a container health check).
    #[arg(long)]
    health_check: bool,
    #[command(flatten)]
    settings: story_service::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if cli.health_check {
        let serving = fabula_runtime::server::is_serving(cli.settings.listen, "", Duration::from_secs(3)).await;
        return Ok(if serving { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    fabula_runtime::telemetry::init();
    let app = story_service::build(cli.settings).await?;
    app.run_until_stopped(fabula_runtime::shutdown::signal()).await?;
    Ok(ExitCode::SUCCESS)
}
