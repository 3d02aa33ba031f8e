//! The database's own refresh-token rotation rate: the very transaction `POST /v1/auth/refresh`
//! runs (`Store::refresh_session`), called directly, without HTTP, JSON or JWTs.
//!
//! `cargo run --release --example rotate_rate -- DATABASE_URL EMAIL [CLIENTS] [SECONDS]`
//! (defaults: 8 clients, 10 s). EMAIL names an existing user, who gets one new session per
//! client; each client then rotates its session's refresh token in a loop until the time is
//! up. Prints one line:
//! `rotate_rate clients=8 seconds=10.00 rotations=24012 failures=0 per_second=2401.2`.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use latchkey::auth::{AuthMethods, JwtSecret, RefreshToken, RefreshTokens, random_token};
use latchkey::domain::Email;
use latchkey::store::{self, NewRefreshToken, NewSession, RefreshOutcome};
use uuid::Uuid;

fn stored(token: &RefreshToken) -> NewRefreshToken {
    let now = store::now();
    NewRefreshToken {
        hash: token.hash(),
        created_at: now,
        expires_at: now + TimeDelta::days(30),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: rotate_rate DATABASE_URL EMAIL [CLIENTS] [SECONDS]";
    let url = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let email = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let clients: usize = args.next().map_or(Ok(8), |n| n.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |n| n.parse())?;

    let store = store::connect(&url).await?;
    let email = Email::parse(&email).map_err(|why| anyhow::anyhow!("EMAIL: {why}"))?;
    let user_id = store
        .credentials_by_email(&email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user has the email {}", email.as_str()))?
        .user
        .id;

    let secret = JwtSecret::new(&random_token()).map_err(anyhow::Error::msg)?;
    let tokens = std::sync::Arc::new(RefreshTokens::new(&secret));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (store, tokens) = (store.clone(), tokens.clone());
        let session_id = Uuid::new_v4();
        let mut current = tokens.generate(session_id);
        let first = stored(&current);
        let session = NewSession {
            id: session_id,
            user_id,
            created_at: first.created_at,
            expires_at: first.created_at + TimeDelta::days(90),
            user_agent: Some("rotate_rate".to_owned()),
            ip: Some("127.0.0.1".to_owned()),
            methods: AuthMethods::Password,
        };
        store.create_session(&session, &first, u32::MAX).await?;
        tasks.push(tokio::spawn(async move {
            let (mut generation, mut rotations, mut failures) = (0_u32, 0_u64, 0_u64);
            while Instant::now() < deadline {
                let successor = tokens.successor(current.as_str(), session_id, generation + 1);
                let next = stored(&successor);
                let reuse_since = next.created_at - TimeDelta::seconds(10);
                let presented = tokens.read(current.as_str());
                match store
                    .refresh_session(&presented, &next, reuse_since, false)
                    .await
                {
                    Ok(RefreshOutcome::Rotated(_)) => {
                        rotations += 1;
                        generation += 1;
                        current = successor;
                    }
                    _ => failures += 1,
                }
            }
            (rotations, failures)
        }));
    }
    let (mut rotations, mut failures) = (0_u64, 0_u64);
    for task in tasks {
        let (done, failed) = task.await?;
        rotations += done;
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "rotate_rate clients={clients} seconds={elapsed:.2} rotations={rotations} failures={failures} per_second={:.1}",
        rotations as f64 / elapsed
    );
    store.close().await;
    Ok(())
}
