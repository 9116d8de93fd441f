//! `cargo run --release`: Fabula's whole stack in one process, on embedded SQLite
//! under ./data and the offline model unless told otherwise.

use clap::Parser;
use fabula::{Addresses, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fabula_runtime::telemetry::init();
    let stack = fabula::build(Settings::parse()).await?;
    print_welcome(stack.addresses());
    Ok(stack.run_until_stopped(fabula_runtime::shutdown::signal()).await?)
}

fn print_welcome(Addresses { story, worker, gateway }: Addresses) {
    println!(
        "\nFabula is running.\n  Web page:             http://{gateway}/\n  \
         REST API:             http://{gateway}/v1/  (reference: http://{gateway}/docs)\n  \
         story-service (gRPC): {story}\n  gpt-worker (gRPC):    {worker}\n\n\
         Create an account on the web page, or with curl:\n  \
         curl -X POST http://{gateway}/v1/auth/register -H 'content-type: application/json' \
         -d '{{\"username\":\"ada\",\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}}'\n\n\
         Try it with grpcurl (reflection is on):\n  \
         grpcurl -plaintext {story} list\n  \
         grpcurl -plaintext -d '{{\"username\":\"ada\",\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}}' \
         {story} fabula.accounts.v1.AccountService/Register\n\n\
         Set FABULA_ADMIN_USERNAME and FABULA_ADMIN_PASSWORD to create an administrator: it may use the\n\
         AI co-writer at once, and grants model access to other accounts.\n\
         Ctrl-C stops everything.\n"
    );
}
