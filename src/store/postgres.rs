use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::Backend;
use super::queries::impl_store;

/// The shared database of a multi-instance deployment.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A bounded wait: when the database is down, requests fail fast with a 503.
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }
}

impl_store!(
    PostgresStore,
    sqlx::Postgres,
    Backend::Postgres,
    sqlx::migrate!("./migrations/postgres")
);
