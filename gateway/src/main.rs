//! The gateway on its own: reads its settings, installs telemetry and serves until
//! SIGINT or SIGTERM.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(version, about = "Fabula's REST/JSON gateway in front of story-service and gpt-worker")]
struct Cli {
    /// Ask the gateway already running at the listen address for GET /healthz, and
    /// exit 0 on 200, 1 otherwise (a container health check).
    #[arg(long)]
    health_check: bool,
    #[command(flatten)]
    settings: gateway::Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if cli.health_check {
        let healthy = tokio::time::timeout(Duration::from_secs(3), is_healthy(cli.settings.listen)).await;
        return Ok(if matches!(healthy, Ok(true)) { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    fabula_runtime::telemetry::init();
    let app = gateway::build(cli.settings).await?;
    println!("Fabula's gateway: http://{}", app.local_addr());
    app.run_until_stopped(fabula_runtime::shutdown::signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Whether GET /healthz at `addr` answers 200: a bare HTTP/1.1 exchange, so the probe
/// needs no HTTP client.
async fn is_healthy(addr: SocketAddr) -> bool {
    let host = if addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { addr.ip() };
    let Ok(mut stream) = tokio::net::TcpStream::connect(SocketAddr::new(host, addr.port())).await else {
        return false;
    };
    let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut status_line = [0_u8; 12];
    stream.read_exact(&mut status_line).await.is_ok() && status_line.ends_with(b" 200")
}
