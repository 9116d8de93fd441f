//! `cargo run --release`: Fabula's whole stack in one process, on embedded SQLite
//! under ./data, with the same flags and variables as each service's own binary.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Fabula: the whole stack in one process (SQLite under ./data by default)")]
struct Cli {
    #[command(flatten)]
    story: story_service::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fabula_proto::telemetry::init();
    let cli = Cli::parse();
    let story = story_service::build(cli.story).await?;
    let story_addr = story.local_addr();
    println!(
        "\nFabula is running.\n  story-service (gRPC): {story_addr}\n\n\
         Try it with grpcurl (reflection is on):\n  \
         grpcurl -plaintext {story_addr} list\n  \
         grpcurl -plaintext -d '{{\"username\":\"ada\",\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}}' \
         {story_addr} fabula.accounts.v1.AccountService/Register\n\nCtrl-C stops it.\n"
    );
    story.run_until_stopped(fabula_proto::shutdown::signal()).await?;
    Ok(())
}
