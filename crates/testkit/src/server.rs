//! A service a test started on its own runtime, stopped when the test is done with it.

use std::{
    fmt::Display,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tokio::{sync::oneshot, task::JoinHandle};

/// What a served service awaits to begin its graceful shutdown: it resolves when its
/// [`Server`] is stopped or dropped.
pub struct Shutdown(oneshot::Receiver<()>);

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A service running on the test's runtime. A service that ends with an error fails
/// the test, with that error: at [`Server::stop`], or when the server is dropped.
pub struct Server {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Server {
    /// Runs `serve`, which serves until its [`Shutdown`] resolves; `name` says which
    /// service failed.
    pub fn spawn<F, Fut, E>(name: &'static str, serve: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let (stop, stopped) = oneshot::channel();
        let failure = Arc::new(Mutex::new(None));
        let served = serve(Shutdown(stopped));
        let task = tokio::spawn({
            let failure = failure.clone();
            async move {
                if let Err(error) = served.await {
                    *failure.lock().expect("the failure of a test server") = Some(error.to_string());
                }
            }
        });
        Self { name, stop: Some(stop), task: Some(task), failure }
    }

    /// Signals shutdown, waits until the service has stopped, and fails the test if
    /// it ended with an error.
    pub async fn stop(&mut self) {
        self.signal();
        if let Some(task) = self.task.take() {
            task.await.unwrap_or_else(|panic| panic!("{} panicked: {panic}", self.name));
        }
        if let Some(error) = self.failure() {
            panic!("{} failed: {error}", self.name);
        }
    }

    fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().expect("the failure of a test server").take()
    }
}

impl Drop for Server {
    /// Signals shutdown; the service drains on its own, and the runtime ends it at the
    /// latest. A failure it already had fails the test (unless the test is failing).
    fn drop(&mut self) {
        self.signal();
        if let Some(error) = self.failure()
            && !std::thread::panicking()
        {
            panic!("{} failed: {error}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_service_that_stops_cleanly_passes() {
        let mut server = Server::spawn("quiet", |shutdown| async move {
            shutdown.await;
            Ok::<(), String>(())
        });
        server.stop().await;
    }

    #[tokio::test]
    #[should_panic(expected = "broken failed: the port is taken")]
    async fn a_service_that_fails_fails_the_test_at_stop() {
        let mut server = Server::spawn("broken", |_| async { Err("the port is taken") });
        server.stop().await;
    }

    #[tokio::test]
    #[should_panic(expected = "broken failed: the database is gone")]
    async fn a_service_that_failed_fails_the_test_when_dropped() {
        let server = Server::spawn("broken", |_| async { Err("the database is gone") });
        tokio::task::yield_now().await;
        while !server.task.as_ref().is_some_and(JoinHandle::is_finished) {
            tokio::task::yield_now().await;
        }
        drop(server);
    }
}
