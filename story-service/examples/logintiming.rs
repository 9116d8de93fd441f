//! How long a failed sign-in takes for an account that exists (a wrong password)
//! and for a login that names no account: the two should be alike, so that timing
//! does not tell whether an account exists (see BENCHMARKS.md).
//!
//! It registers `--samples` users, then signs in once with a wrong password as each
//! and once as a username nobody has, alternating, one call at a time (each login is
//! fresh, so no lock is reached), and prints each kind's median and p90.

use std::time::{Duration, Instant};

use clap::Parser;
use fabula_contracts::pb::accounts::{LoginRequest, RegisterRequest, account_service_client::AccountServiceClient};
use tonic::{Code, transport::Channel};

#[derive(Parser)]
struct Args {
    /// story-service's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// Sign-ins of each kind.
    #[arg(long, default_value_t = 40)]
    samples: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut accounts = AccountServiceClient::new(Channel::from_shared(args.target)?.connect().await?);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let name = |i: usize, who: &str| format!("{who}{i}-{}", &run[..8]);
    for i in 0..args.samples {
        let username = name(i, "known");
        let email = format!("{username}@timing.test");
        accounts.register(RegisterRequest { username, email, password: "the right password".into() }).await?;
    }
    let (mut wrong_password, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..args.samples {
        for (who, times) in [("known", &mut wrong_password), ("nobody", &mut unknown)] {
            let request = LoginRequest { login: name(i, who), password: "a wrong password".into() };
            let began = Instant::now();
            let answer = accounts.login(request).await;
            times.push(began.elapsed());
            let code = answer.err().map(|status| status.code());
            anyhow::ensure!(code == Some(Code::Unauthenticated), "{who}: expected UNAUTHENTICATED, got {code:?}");
        }
    }
    for (what, mut times) in [("wrong password", wrong_password), ("unknown login", unknown)] {
        times.sort_unstable();
        let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("{what}: {} sign-ins, median {:.1} ms, p90 {:.1} ms", times.len(), ms(at(0.5)), ms(at(0.9)));
    }
    Ok(())
}
