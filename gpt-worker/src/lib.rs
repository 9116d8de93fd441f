//! gpt-worker: Fabula's AI jobs, in a durable queue, run against a language model.
//!
//! A job goes: [`api`] (CreateJob, within the owner's limits) → the jobs table, which
//! is the queue ([`store`], [`queue`]) → a runner ([`runner`]) that claims it with a
//! lease and runs its kind ([`kinds`]) against the model ([`llm`]), reading and
//! writing story-service as the job's owner ([`story_client`]) → its updates and end,
//! group-committed ([`recorder`], [`writer`]) → watchers ([`api`]'s WatchJob).

pub mod api;
pub mod authn;
pub mod config;
pub mod kinds;
pub mod llm;
pub mod outputs;
pub mod queue;
pub mod recorder;
pub mod runner;
pub mod store;
pub mod story_client;
pub mod writer;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use fabula_contracts::pb::jobs::job_service_server::JobServiceServer;
use fabula_runtime::{
    keys,
    server::{self, MAX_MESSAGE_SIZE},
    telemetry::escaped,
    token::{DelegationIssuer, SigningKey, TokenVerifier, VerifyingKey},
};
use fabula_store::{Backend, Db, now_micros};
use tokio::{net::TcpListener, sync::broadcast};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crate::config::Settings;
use crate::{
    api::JobsApi, authn::WorkerAuthenticator, llm::LanguageModel, runner::Worker, story_client::StoryClient,
    writer::Writer,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service name under which gpt-worker signs delegated tokens.
pub const SERVICE_NAME: &str = "gpt-worker";
/// How often finished jobs past their retention are removed.
const CLEAN_EVERY: Duration = Duration::from_secs(600);

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Key(#[from] keys::KeyFileError),
    #[error("invalid STORY_SERVICE_URL {0:?}")]
    StoryServiceUrl(String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("invalid language model settings: {0}")]
    Llm(String),
}

/// A worker ready to serve on a bound listener.
pub struct App {
    listener: TcpListener,
    db: Db,
    api: JobsApi,
    settings: Settings,
}

/// Builds the worker with its keys read from the configured files.
pub async fn build(settings: Settings) -> Result<App, BuildError> {
    let token_keys = keys::read_verifying_keys(&settings.token_public_key_file)?;
    let worker_key = keys::read_signing_key(&settings.private_key_file)?;
    build_with_keys(settings, token_keys, worker_key).await
}

/// Builds the worker with the keys that verify access tokens and its own key, which
/// signs the tokens it acts for job owners with.
pub async fn build_with_keys(
    settings: Settings,
    token_keys: Vec<VerifyingKey>,
    worker_key: SigningKey,
) -> Result<App, BuildError> {
    let db = Db::connect(&settings.database_url, settings.database_connections, &MIGRATOR).await?;
    let delegation = Arc::new(DelegationIssuer::new(SERVICE_NAME, worker_key));
    let story = StoryClient::new(&settings.story_service_url, delegation)
        .map_err(|_| BuildError::StoryServiceUrl(settings.story_service_url.clone()))?;
    let llm: Arc<dyn LanguageModel> = llm::from_settings(&settings.llm).map_err(BuildError::Llm)?;
    let worker_id: Arc<str> = format!("worker-{}", Uuid::now_v7()).into();
    let (applied, _) = broadcast::channel(1024);
    let writer = Writer::spawn(db.clone(), worker_id.clone(), applied.clone());
    let worker = Arc::new(Worker::new(db.clone(), writer, worker_id, settings.queue.clone(), llm, story.clone()));
    let authn = Arc::new(WorkerAuthenticator::new(TokenVerifier::new(token_keys), story));
    let listener = TcpListener::bind(settings.listen).await.map_err(|e| BuildError::Listen(settings.listen, e))?;
    let stopping = CancellationToken::new();
    let api = JobsApi { db: db.clone(), limits: settings.queue.clone(), authn, worker, applied, stopping };
    Ok(App { listener, db, api, settings })
}

impl App {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves and runs jobs until `shutdown` resolves; then stops claiming, lets running
    /// jobs finish within the grace period, hands the rest back and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let Self { listener, db, api, settings } = self;
        let stop = api.stopping.clone();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        });
        let worker = api.worker.clone();
        let runners = tokio::spawn(worker.clone().run(stop.clone().cancelled_owned()));
        let background = [
            tokio::spawn(clean_finished_jobs(db.clone(), settings.queue.retention)),
            tokio::spawn(listen_for_new_jobs(db.clone(), settings.database_url.clone(), worker.clone())),
            tokio::spawn(announce_new_jobs(db.clone(), worker)),
        ];
        db.spawn_checkpoints();
        let (health_reporter, health) = server::health();
        health_reporter.set_service_status("fabula.jobs.v1.JobService", tonic_health::ServingStatus::Serving).await;
        let (reflection_v1, reflection_v1alpha) = server::reflection(&["fabula.jobs.v1.JobService"]);
        tracing::info!(addr = ?listener.local_addr().ok(), "gpt-worker listening");
        let served = server::builder(api.authn.clone())
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                JobServiceServer::new(api)
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(MAX_MESSAGE_SIZE),
            )
            .serve_with_incoming_shutdown(server::incoming(listener), stop.cancelled_owned())
            .await;
        let _ = runners.await;
        background.iter().for_each(tokio::task::JoinHandle::abort);
        db.close().await;
        tracing::info!("gpt-worker stopped");
        served
    }
}

/// Removes finished jobs older than `retention`, every ten minutes.
async fn clean_finished_jobs(db: Db, retention: Duration) {
    let mut tick = tokio::time::interval(CLEAN_EVERY);
    loop {
        tick.tick().await;
        match store::remove_finished_before(&db, now_micros() - retention.as_micros() as i64).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "finished jobs past their retention removed"),
            Err(error) => tracing::warn!(error = %escaped(&error), "cannot remove old jobs"),
        }
    }
}

/// On PostgreSQL, tells every worker process (this one too) that jobs were queued
/// here: one `pg_notify` at a time, each sent after the creates it covers committed.
/// Creates that commit while one is on its way get the next, so a burst of creates
/// costs a few notifications, not one each: a notification makes its transaction's
/// commit take a lock that every other notifying commit waits for.
async fn announce_new_jobs(db: Db, worker: Arc<Worker>) {
    if db.backend != Backend::Postgres {
        return;
    }
    loop {
        worker.untold_jobs().await;
        if let Err(error) = sqlx::query("SELECT pg_notify('fabula_jobs', '')").execute(&db.writer).await {
            tracing::warn!(error = %escaped(&error), "cannot tell the other workers of new jobs");
        }
    }
}

/// On PostgreSQL, wakes this process's runners when any process queues a job.
async fn listen_for_new_jobs(db: Db, url: String, worker: Arc<Worker>) {
    if db.backend != Backend::Postgres {
        return;
    }
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen("fabula_jobs").await {
                    tracing::warn!(error = %escaped(&error), "cannot listen for new jobs");
                } else {
                    while listener.recv().await.is_ok() {
                        worker.wake();
                    }
                }
            }
            Err(error) => tracing::warn!(error = %escaped(&error), "cannot connect to listen for new jobs"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
