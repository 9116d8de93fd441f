//! The signal that stops a process (SIGINT, Ctrl-C, or SIGTERM), and the grace period
//! a server has to drain its calls once told to stop.

use std::{future::Future, pin::Pin, time::Duration};

/// How long a server waits for its calls in flight once told to stop.
pub const GRACE: Duration = Duration::from_secs(10);

/// What a server is given to learn that it must stop accepting and drain.
pub type Stopping = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs the server that `serve` makes, handing it a [`Stopping`] that resolves with
/// `shutdown`; from then on waits at most `grace` for it to drain, and gives up on the
/// calls still in flight after that (`None`, logged).
pub async fn serve_within_grace<T, Served: Future<Output = T>>(
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    serve: impl FnOnce(Stopping) -> Served,
) -> Option<T> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopping: Stopping = Box::pin(async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    let served = serve(stopping);
    tokio::pin!(served, shutdown);
    tokio::select! {
        output = &mut served => return Some(output),
        () = &mut shutdown => {
            let _ = stop.send(true);
        }
    }
    match tokio::time::timeout(grace, served).await {
        Ok(output) => Some(output),
        Err(_) => {
            tracing::warn!(grace_seconds = grace.as_secs_f64(), "calls still running after the grace period: dropped");
            None
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_drains_within_the_grace_period_or_is_left() {
        let grace = Duration::from_millis(300);
        // Drains in 50 ms: its own output.
        let quick = serve_within_grace(async {}, grace, |stopping| async move {
            stopping.await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            "drained"
        });
        assert_eq!(quick.await, Some("drained"));
        // Never drains: given up on at the end of the grace period.
        let started = std::time::Instant::now();
        let stuck = serve_within_grace(async {}, grace, |stopping| async move {
            stopping.await;
            std::future::pending::<()>().await;
        });
        assert_eq!(stuck.await, None);
        assert!((grace..grace * 3).contains(&started.elapsed()), "{:?}", started.elapsed());
        // Stops by itself before any shutdown: its output, no waiting.
        let done = serve_within_grace(std::future::pending(), grace, |_| async { 7 });
        assert_eq!(done.await, Some(7));
    }
}
