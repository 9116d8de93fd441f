//! A service a test started on its own runtime, stopped when the test is done with it,
//! and an address for one it stops and starts again.

use std::{
    fmt::Display,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tokio::{sync::oneshot, task::JoinHandle};

/// Where the ports the system gives outgoing connections begin, when it does not say.
const EPHEMERAL_PORTS_FROM: u16 = 32768;

/// A free loopback address for a service a test stops and starts again on the same
/// address. Its port is below the range the system hands out to outgoing connections
/// and to `:0` listeners, so that no connection of another test can take it while the
/// service is down.
pub fn restartable_address() -> std::net::SocketAddr {
    let from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_PORTS_FROM);
    let below = 10_000..from;
    let start = (uuid::Uuid::new_v4().as_u128() % u128::from(below.len() as u16)) as u16;
    (0..below.len() as u16)
        .map(|k| below.start + (start + k) % below.len() as u16)
        .find_map(|port| std::net::TcpListener::bind(("127.0.0.1", port)).and_then(|l| l.local_addr()).ok())
        .expect("a free port below the ephemeral range")
}

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

    #[test]
    fn a_restartable_address_is_free_and_below_the_ephemeral_ports() {
        let addr = restartable_address();
        assert!(addr.port() < EPHEMERAL_PORTS_FROM && addr.ip().is_loopback(), "{addr}");
        std::net::TcpListener::bind(addr).expect("free");
    }

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
