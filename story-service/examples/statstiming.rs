//! How long the stats take at scale (see BENCHMARKS.md, issue 15 item 6).
//!
//! Against a running story-service and its database: registers a writer, gives them
//! `--stories` stories (written straight into the database, in batches, with word
//! counts and previews as the service keeps them) in `--worlds` worlds, makes them an
//! administrator, then times `--calls` sequential calls each of GetMyStats (the
//! writer's own stories: the worst case for one writer), GetSiteStats and
//! ListMyStories (a page of 20, BASIC), and prints the median, p90 and max of each.

use std::time::{Duration, Instant};

use clap::Parser;
use fabula_contracts::pb::{
    accounts::{LoginRequest, RegisterRequest, account_service_client::AccountServiceClient},
    story::{
        CreateWorldRequest, GetMyStatsRequest, GetSiteStatsRequest, ListMyStoriesRequest, World,
        stats_service_client::StatsServiceClient, story_service_client::StoryServiceClient,
        world_service_client::WorldServiceClient,
    },
};
use tonic::{Request, transport::Channel};

#[derive(Parser)]
struct Args {
    /// story-service's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// The service's database, to write the stories into.
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value_t = 100_000)]
    stories: usize,
    #[arg(long, default_value_t = 100)]
    worlds: usize,
    #[arg(long, default_value_t = 50)]
    calls: usize,
}

const PASSWORD: &str = "benchmark-password";
const BATCH: usize = 500;

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    request
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let channel = Channel::from_shared(args.target.clone())?.connect().await?;
    let name = format!("stats{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let email = format!("{name}@bench.test");
    let mut accounts = AccountServiceClient::new(channel.clone());
    let registered = accounts
        .register(RegisterRequest { username: name.clone(), email, password: PASSWORD.into() })
        .await?
        .into_inner();
    let user_id = registered.user.map(|u| u.id).unwrap_or_default();
    let (mut worlds, mut world_ids) = (WorldServiceClient::new(channel.clone()), Vec::new());
    for n in 0..args.worlds {
        let world = World { name: format!("Bench {n}"), ..Default::default() };
        let request = CreateWorldRequest { world: Some(world), request_id: String::new() };
        world_ids.push(worlds.create_world(authed(request, &registered.access_token)).await?.into_inner().id);
    }
    let started = Instant::now();
    seed(&args, &user_id, &world_ids).await?;
    println!("{} stories written in {:.1} s", args.stories, started.elapsed().as_secs_f64());
    let login = LoginRequest { login: name, password: PASSWORD.into() };
    let token = accounts.login(login).await?.into_inner().access_token;

    let stats = StatsServiceClient::new(channel.clone());
    let stories = StoryServiceClient::new(channel);
    time("GetMyStats", args.calls, || {
        let mut stats = stats.clone();
        let request = authed(GetMyStatsRequest {}, &token);
        async move { stats.get_my_stats(request).await.map(drop) }
    })
    .await?;
    time("GetSiteStats", args.calls, || {
        let mut stats = stats.clone();
        let request = authed(GetSiteStatsRequest {}, &token);
        async move { stats.get_site_stats(request).await.map(drop) }
    })
    .await?;
    time("ListMyStories, 20 BASIC", args.calls, || {
        let mut stories = stories.clone();
        let request = authed(ListMyStoriesRequest { page_size: 20, ..Default::default() }, &token);
        async move { stories.list_my_stories(request).await.map(drop) }
    })
    .await
}

/// Writes the stories, a third each DRAFT, PRIVATE and PUBLIC, and makes the writer
/// an administrator (so that the same token reads the site's stats).
async fn seed(args: &Args, user_id: &str, world_ids: &[String]) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&args.database_url).await?;
    let content = "Once upon a time. ".repeat(28);
    let preview: String = content.chars().take(200).collect();
    let now = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros())?;
    for start in (0..args.stories).step_by(BATCH) {
        let rows = (start..(start + BATCH).min(args.stories)).collect::<Vec<_>>();
        let values = (0..rows.len())
            .map(|i| {
                format!(
                    "(${}, ${}, $1, 'Story', $2, 'PLAIN', '', ${}, ${}, $3, $3, 112, $4)",
                    4 * i + 5,
                    4 * i + 6,
                    4 * i + 7,
                    4 * i + 8
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO stories (id, world_id, owner_id, title, content, format, genre, visibility, sort_order, \
             create_time, update_time, word_count, preview) VALUES {values}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id).bind(&content).bind(now).bind(&preview);
        for n in rows {
            let visibility = ["DRAFT", "PRIVATE", "PUBLIC"][n % 3];
            let world = &world_ids[n % world_ids.len()];
            query =
                query.bind(uuid::Uuid::now_v7().to_string()).bind(world.clone()).bind(visibility).bind(n as i64 + 1);
        }
        query.execute(&pool).await?;
    }
    sqlx::query("UPDATE users SET role = 'ADMIN' WHERE id = $1").bind(user_id).execute(&pool).await?;
    Ok(())
}

/// Makes `calls` calls one after another and prints their latencies.
async fn time<F, Fut>(what: &str, calls: usize, call: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>>,
{
    call().await?;
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call().await?;
        latencies.push(started.elapsed());
    }
    latencies.sort_unstable();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({calls} calls)",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(latencies[latencies.len() - 1])
    );
    Ok(())
}
