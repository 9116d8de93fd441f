//! Fabula's whole stack in one process: story-service, gpt-worker and the REST
//! gateway, each on its own port, talking real gRPC over loopback. `cargo run` and the
//! end-to-end tests start it through [`build`] and [`Stack::run_until_stopped`].

use std::{future::Future, net::SocketAddr};

use clap::Parser;
use fabula_runtime::keys::{self, KeyFileError};
use tokio_util::sync::CancellationToken;

/// Why the stack did not start, or stopped with an error: the part it came from.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("story-service: {0}")]
    StoryBuild(#[from] story_service::BuildError),
    #[error("gpt-worker: {0}")]
    WorkerBuild(#[from] gpt_worker::BuildError),
    #[error("gateway: {0}")]
    GatewayBuild(#[from] gateway::BuildError),
    #[error("{0} stopped with an error: {1}")]
    Serve(&'static str, String),
}

/// Every flag and variable of the three services' own binaries.
#[derive(Parser)]
#[command(
    name = "fabula",
    version,
    about = "Fabula: the whole stack in one process (SQLite under ./data, the offline model by default)"
)]
pub struct Settings {
    #[command(flatten)]
    pub story: story_service::Settings,
    #[command(flatten)]
    pub worker: gpt_worker::Settings,
    #[command(flatten)]
    pub gateway: gateway::Settings,
}

/// The three services, built and listening, not yet serving.
pub struct Stack {
    story: story_service::App,
    worker: gpt_worker::App,
    gateway: gateway::App,
}

/// Where each part of a [`Stack`] listens.
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    pub story: SocketAddr,
    pub worker: SocketAddr,
    pub gateway: SocketAddr,
}

/// Builds story-service, then gpt-worker pointed at it, then the gateway in front of
/// both, whatever service URLs the settings held.
pub async fn build(settings: Settings) -> Result<Stack, StackError> {
    let Settings { story, mut worker, mut gateway } = settings;
    // The worker acts for users with the key story-service trusts: the development key
    // beside story-service's own unless a trusted key file was given to both.
    let worker_key = match &story.trusted_worker_key_file {
        Some(_) => keys::read_signing_key(&worker.private_key_file)?,
        None => keys::development_key(&story.data_dir, keys::WORKER_KEY_FILE)?,
    };
    let story = story_service::build(story).await?;
    worker.story_service_url = format!("http://{}", story.local_addr());
    let worker = gpt_worker::build_with_keys(worker, story.token_verifying_keys(), worker_key).await?;
    gateway.story_service_url = format!("http://{}", story.local_addr());
    gateway.worker_service_url = format!("http://{}", worker.local_addr());
    let gateway = gateway::build_with_keys(gateway, story.token_verifying_keys()).await?;
    Ok(Stack { story, worker, gateway })
}

impl Stack {
    pub fn addresses(&self) -> Addresses {
        Addresses {
            story: self.story.local_addr(),
            worker: self.worker.local_addr(),
            gateway: self.gateway.local_addr(),
        }
    }

    /// Serves until `shutdown` resolves, then stops all three, each draining its own work.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StackError> {
        let stop = CancellationToken::new();
        let Self { story, worker, gateway } = self;
        let story = tokio::spawn(story.run_until_stopped(stop.clone().cancelled_owned()));
        let worker = tokio::spawn(worker.run_until_stopped(stop.clone().cancelled_owned()));
        let gateway = tokio::spawn(gateway.run_until_stopped(stop.clone().cancelled_owned()));
        shutdown.await;
        stop.cancel();
        let (story, worker, gateway) = tokio::join!(story, worker, gateway);
        served("story-service", story)?;
        served("gpt-worker", worker)?;
        served("gateway", gateway)
    }
}

/// How a part of the stack ended: its own error, or its task's panic.
fn served<E: std::fmt::Display>(
    part: &'static str,
    ended: Result<Result<(), E>, tokio::task::JoinError>,
) -> Result<(), StackError> {
    match ended {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(StackError::Serve(part, error.to_string())),
        Err(panicked) => Err(StackError::Serve(part, panicked.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_stack_takes_every_flag_of_the_three_services_without_a_clash() {
        super::Settings::command().debug_assert();
    }
}
