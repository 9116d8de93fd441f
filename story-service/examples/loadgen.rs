//! A small gRPC load generator for story-service's benchmarks (see BENCHMARKS.md).
//!
//! It registers a user, creates a world and a story, then keeps `--concurrency`
//! calls in flight over `--connections` HTTP/2 connections for `--duration`, and
//! prints throughput and latency percentiles. `--mode get` calls GetStory with a
//! bearer token; `--mode create` calls CreateStory into one world.

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use fabula_contracts::pb::{
    accounts::{RegisterRequest, account_service_client::AccountServiceClient},
    story::{
        CreateStoryRequest, CreateWorldRequest, GetStoryRequest, Story, World,
        story_service_client::StoryServiceClient, world_service_client::WorldServiceClient,
    },
};
use tonic::{Request, transport::Channel};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Get,
    Create,
}

#[derive(Parser)]
struct Args {
    /// story-service's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    #[arg(long, value_enum, default_value = "get")]
    mode: Mode,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the calls share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// How long to measure, after a one-second warm-up.
    #[arg(long, default_value = "10s", value_parser = fabula_runtime::config::parse_duration)]
    duration: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        channels.push(Channel::from_shared(args.target.clone())?.connect().await?);
    }
    let (token, world_id, story_id) = setup(channels[0].clone()).await?;
    println!("warming up for 1 s…");
    run(&args, &channels, &token, &world_id, &story_id, Duration::from_secs(1)).await?;
    let (count, errors, mut latencies, elapsed) =
        run(&args, &channels, &token, &world_id, &story_id, args.duration).await?;
    latencies.sort_unstable();
    let percentile =
        |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "{} calls, {} errors in {:.1} s: {:.0} req/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        count,
        errors,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        ms(percentile(0.50)),
        ms(percentile(0.90)),
        ms(percentile(0.99)),
        ms(latencies.last()),
    );
    Ok(())
}

/// A user with a token, a world and one story to read.
async fn setup(channel: Channel) -> anyhow::Result<(String, String, String)> {
    let name = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let auth = AccountServiceClient::new(channel.clone())
        .register(RegisterRequest {
            username: name.clone(),
            email: format!("{name}@bench.test"),
            password: "benchmark-password".into(),
        })
        .await?
        .into_inner();
    let token = auth.access_token;
    let world = WorldServiceClient::new(channel.clone())
        .create_world(authed(
            CreateWorldRequest {
                world: Some(World { name: "Bench".into(), ..Default::default() }),
                request_id: String::new(),
            },
            &token,
        ))
        .await?
        .into_inner();
    let story =
        StoryServiceClient::new(channel).create_story(authed(create_story(&world.id), &token)).await?.into_inner();
    Ok((token, world.id, story.id))
}

fn create_story(world_id: &str) -> CreateStoryRequest {
    CreateStoryRequest {
        world_id: world_id.to_owned(),
        story: Some(Story {
            title: "A benchmark story".into(),
            content: "Once upon a time. ".repeat(50),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("a header value"));
    request
}

/// Keeps `concurrency` calls in flight for `duration`: (calls, errors, latencies, elapsed).
async fn run(
    args: &Args,
    channels: &[Channel],
    token: &str,
    world_id: &str,
    story_id: &str,
    duration: Duration,
) -> anyhow::Result<(usize, usize, Vec<Duration>, Duration)> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..args.concurrency {
        let mut client = StoryServiceClient::new(channels[i % channels.len()].clone());
        let (token, world_id, story_id, mode) = (token.to_owned(), world_id.to_owned(), story_id.to_owned(), args.mode);
        workers.spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let began = Instant::now();
                let ok = match mode {
                    Mode::Get => {
                        client.get_story(authed(GetStoryRequest { id: story_id.clone() }, &token)).await.is_ok()
                    }
                    Mode::Create => client.create_story(authed(create_story(&world_id), &token)).await.is_ok(),
                };
                latencies.push(began.elapsed());
                errors += usize::from(!ok);
            }
            (latencies, errors)
        });
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(done) = workers.join_next().await {
        let (latencies, failed) = done?;
        all.extend(latencies);
        errors += failed;
    }
    Ok((all.len(), errors, all, start.elapsed()))
}
