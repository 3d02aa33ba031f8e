//! Builds the whole application from a [`Config`]. `main` and every test call
//! [`Application::build`], so tests exercise exactly what production runs.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::middleware::{Condition, DefaultHeaders, ErrorHandlers};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::accounts;
use crate::auth::{
    AccessTokens, JwtSecret, PasswordHasher, RefreshTokens, RevocationList, random_token,
};
use crate::config::Config;
use crate::domain::{Email, Password};
use crate::error::{ApiError, render_bare_error};
use crate::extract::MAX_BODY_BYTES;
use crate::routes;
use crate::store::{self, Backend, Store};
use crate::tasks;

/// Settings key of the signing secret generated for a zero-configuration SQLite deployment.
const GENERATED_SECRET_KEY: &str = "generated_jwt_secret";

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: AccessTokens,
    pub refresh_tokens: RefreshTokens,
    pub revocations: Arc<RevocationList>,
    pub hasher: PasswordHasher,
    pub refresh_ttl: TimeDelta,
    pub refresh_reuse_interval: TimeDelta,
    pub session_max_age: TimeDelta,
}

impl AppState {
    /// Makes revocations the store has made take effect on this instance at once (other
    /// instances learn of them through the store), and records them in the audit log.
    pub fn sessions_revoked(&self, user_id: Uuid, session_ids: &[Uuid], at: DateTime<Utc>) {
        self.revocations
            .revoke(session_ids.iter().map(|session_id| (*session_id, at)));
        for session_id in session_ids {
            tracing::info!(
                target: "latchkey::audit",
                event = "session_revoked",
                %user_id,
                %session_id,
                "session revoked"
            );
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    /// Background work that lives exactly as long as the server.
    tasks: Vec<JoinHandle<()>>,
}

impl Application {
    /// Opens and migrates the database, prepares the keys and binds the listener. The server
    /// starts serving when [`Application::run_until_stopped`] is awaited.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = store::connect(&config.database_url)
            .await
            .context("could not open the database")?;
        let secret = jwt_secret(&config, store.as_ref()).await?;
        let hasher = PasswordHasher::new(config.bcrypt_cost, config.hash_threads()).await?;
        let tokens = AccessTokens::new(&secret, &config.issuer, config.access_ttl());
        bootstrap_admin(&config, store.as_ref(), &hasher).await?;

        // Sessions revoked before this start may still have unexpired access tokens around.
        let revocations = Arc::new(RevocationList::new(TimeDelta::from_std(
            tokens.longest_validity(),
        )?));
        let since = revocations.relevant_since(store::now());
        revocations.revoke(store.revocations_since(since).await?);
        let tasks = vec![
            tasks::spawn_pruner(store.clone(), revocations.clone(), config.prune_interval()),
            store.spawn_revocation_watcher(revocations.clone()),
        ];

        let state = web::Data::new(AppState {
            refresh_tokens: RefreshTokens::new(&secret),
            tokens,
            revocations,
            store,
            hasher,
            refresh_ttl: TimeDelta::from_std(config.refresh_ttl())?,
            refresh_reuse_interval: TimeDelta::from_std(config.refresh_reuse_interval())?,
            session_max_age: TimeDelta::from_std(config.session_max_age())?,
        });

        let cors_origins = config.cors_origins.clone();
        let listener = TcpListener::bind(&config.addr)
            .with_context(|| format!("could not listen on {}", config.addr))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|err, _| ApiError::NotFound(err.to_string()).into()),
                )
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|err, _| ApiError::InvalidQuery(err.to_string()).into()),
                )
                .wrap(ErrorHandlers::new().default_handler(render_bare_error))
                .wrap(
                    // Nearly every response carries a token or user data: none may be cached
                    // unless a handler says otherwise.
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "no-referrer"))
                        .add(("Cache-Control", "no-store")),
                )
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    cors(&cors_origins),
                ))
                .configure(routes::configure)
        })
        .workers(config.workers())
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM or [`ServerHandle::stop`]), finishing
    /// in-flight requests first.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.tasks {
            task.abort();
        }
        result
    }
}

/// Cross-origin access for the configured browser origins only: exact origins, preflights
/// answered, `Authorization` allowed. Credentials (cookies) are never sent cross-origin.
fn cors(origins: &[String]) -> Cors {
    origins
        .iter()
        .fold(Cors::default(), |cors, origin| {
            cors.allowed_origin(origin.trim())
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(600)
}

/// Creates the admin named by `LATCHKEY_BOOTSTRAP_ADMIN_*`, when both are set and no user has
/// that email yet.
async fn bootstrap_admin(
    config: &Config,
    store: &dyn Store,
    hasher: &PasswordHasher,
) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (
        &config.bootstrap_admin_email,
        &config.bootstrap_admin_password,
    ) else {
        return Ok(());
    };
    let email = Email::parse(email)
        .map_err(|why| anyhow::anyhow!("LATCHKEY_BOOTSTRAP_ADMIN_EMAIL {why}"))?;
    let password = Password::parse(password.clone())
        .map_err(|why| anyhow::anyhow!("LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD {why}"))?;
    if accounts::bootstrap_admin(store, hasher, &email, &password).await? {
        tracing::info!(target: "latchkey::audit", event = "admin_bootstrapped", email = %email, "bootstrap admin created");
    }
    Ok(())
}

/// The configured secret; or, on SQLite only, one generated once and kept in the database so
/// tokens survive a restart. PostgreSQL deployments run several instances that must agree on the
/// secret, so there it has to be configured.
async fn jwt_secret(config: &Config, store: &dyn Store) -> anyhow::Result<JwtSecret> {
    if let Some(secret) = &config.jwt_secret {
        return JwtSecret::new(secret)
            .map_err(|why| anyhow::anyhow!("LATCHKEY_JWT_SECRET is unusable: {why}"));
    }
    match store.backend() {
        Backend::Postgres => anyhow::bail!(
            "LATCHKEY_JWT_SECRET must be set (at least 32 bytes) when the database is PostgreSQL: \
             every instance has to sign with the same secret"
        ),
        Backend::Sqlite => {
            let secret = store
                .setting_or_insert(GENERATED_SECRET_KEY, &random_token())
                .await?;
            tracing::warn!(
                "LATCHKEY_JWT_SECRET is not set: using a random secret generated once and stored \
                 in the SQLite database. Set LATCHKEY_JWT_SECRET for any real deployment."
            );
            JwtSecret::new(&secret).map_err(anyhow::Error::msg)
        }
    }
}
