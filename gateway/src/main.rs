//! The gateway on its own: reads its settings, installs telemetry and serves until
//! SIGINT or SIGTERM.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Fabula's REST/JSON gateway in front of story-service and gpt-worker")]
struct Cli {
    #[command(flatten)]
    settings: gateway::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fabula_proto::telemetry::init();
    let app = gateway::build(Cli::parse().settings).await?;
    println!("Fabula's gateway: http://{}", app.local_addr());
    app.run_until_stopped(fabula_proto::shutdown::signal()).await?;
    Ok(())
}
