//! `cargo run --release`: Fabula's whole stack in one process — story-service,
//! gpt-worker and the REST gateway, each on its own port, talking real gRPC over
//! loopback — on embedded SQLite under ./data and the offline model, with the same
//! flags and variables as each service's own binary.

use clap::Parser;
use fabula_proto::keys;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    version,
    about = "Fabula: the whole stack in one process (SQLite under ./data, the offline model by default)"
)]
struct Cli {
    #[command(flatten)]
    story: story_service::Settings,
    #[command(flatten)]
    worker: gpt_worker::Settings,
    #[command(flatten)]
    gateway: gateway::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fabula_proto::telemetry::init();
    let Cli { story, mut worker, mut gateway } = Cli::parse();
    // The worker acts for users with the key story-service trusts: the development key
    // beside story-service's own unless a trusted key file was given to both.
    let worker_key = match &story.trusted_worker_key_file {
        Some(_) => keys::read_signing_key(&worker.private_key_file)?,
        None => keys::development_key(&story.data_dir, keys::WORKER_KEY_FILE)?,
    };
    let story = story_service::build(story).await?;
    worker.story_service_url = format!("http://{}", story.local_addr());
    let worker = gpt_worker::build_with_keys(worker, story.verifying_key(), worker_key).await?;
    // The gateway in front of the two, whatever addresses they were given.
    gateway.story_service_url = format!("http://{}", story.local_addr());
    gateway.worker_service_url = format!("http://{}", worker.local_addr());
    let gateway = gateway::build_with_key(gateway, story.verifying_key()).await?;
    print_welcome(story.local_addr(), worker.local_addr(), gateway.local_addr());

    let stop = CancellationToken::new();
    let services = tokio::spawn({
        let stop = stop.clone();
        async move {
            let story = story.run_until_stopped(stop.clone().cancelled_owned());
            let worker = worker.run_until_stopped(stop.clone().cancelled_owned());
            let gateway = gateway.run_until_stopped(stop.cancelled_owned());
            tokio::join!(story, worker, gateway)
        }
    });
    fabula_proto::shutdown::signal().await;
    stop.cancel();
    let (story, worker, gateway) = services.await?;
    story?;
    worker?;
    gateway?;
    Ok(())
}

fn print_welcome(story: std::net::SocketAddr, worker: std::net::SocketAddr, gateway: std::net::SocketAddr) {
    println!(
        "\nFabula is running.\n  REST API:             http://{gateway}/v1/\n  \
         story-service (gRPC): {story}\n  gpt-worker (gRPC):    {worker}\n\n\
         Try it with curl:\n  \
         curl -X POST http://{gateway}/v1/auth/register -H 'content-type: application/json' \
         -d '{{\"username\":\"ada\",\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}}'\n\n\
         Try it with grpcurl (reflection is on):\n  \
         grpcurl -plaintext {story} list\n  \
         grpcurl -plaintext -d '{{\"username\":\"ada\",\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}}' \
         {story} fabula.accounts.v1.AccountService/Register\n\n\
         Set FABULA_ADMIN_USERNAME and FABULA_ADMIN_PASSWORD to create an administrator, who grants model access.\n\
         Ctrl-C stops everything.\n"
    );
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_stack_takes_every_flag_of_both_services_without_a_clash() {
        super::Cli::command().debug_assert();
    }
}
