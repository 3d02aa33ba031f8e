//! Builds the whole application from a [`Config`]. `main` and every test call
//! [`Application::build`], so tests exercise exactly what production runs.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::middleware::{Condition, DefaultHeaders, ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use chrono::TimeDelta;
use tokio::task::JoinHandle;

use crate::abuse::{Limits, TrustedProxies};
use crate::accounts::{self, BootstrapOutcome};
use crate::audit::{self, AuditEvent};
use crate::auth::{
    AccessTokens, DeviceTokens, MfaKeys, PasswordHasher, RefreshTokens, RevocationList,
};
use crate::config::Config;
use crate::domain::{Email, Password};
use crate::http::cookie::{CSRF_HEADER, RefreshCookie};
use crate::http::error::{ApiError, render_bare_error};
use crate::http::extract::MAX_BODY_BYTES;
use crate::http::{AppState, routes};
use crate::keys;
use crate::mail::{EmailFlows, MailWorker};
use crate::metrics::Metrics;
use crate::mfa::Mfa;
use crate::sessions::Sessions;
use crate::store::{self, Database, Store};
use crate::tasks;

pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener, when `LATCHKEY_METRICS_ADDR` puts it on an address of its own.
    metrics_server: Option<Server>,
    /// Background work that lives exactly as long as the server.
    tasks: Vec<JoinHandle<()>>,
    /// Delivers the mail outbox; stopped gently, so deliveries in flight finish.
    mail: MailWorker,
    store: Arc<dyn Store>,
}

impl Application {
    /// Opens and migrates the database, prepares the keys and binds the listener. The server
    /// starts serving when [`Application::run_until_stopped`] is awaited.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        warn_about_unsafe_settings(&config);
        check_cors_origins(&config.server.cors_origins)?;
        let database = store::connect(&config.database.database_url).await?;
        let store: Arc<dyn Store> = database.clone();
        let (state, tasks, mail) = app_state(&config, database).await?;
        // /metrics is not public unless the operator says so: an API listener faces the internet.
        if config.operations.metrics
            && !config.operations.metrics_on_api
            && config.operations.metrics_addr.is_none()
        {
            tracing::info!(
                "metrics are collected but not served: set LATCHKEY_METRICS_ADDR to scrape them"
            );
        }
        let metrics_server = match (&config.operations.metrics_addr, config.operations.metrics) {
            (Some(addr), true) => Some(metrics_server(addr, state.clone())?),
            _ => None,
        };
        let listener = TcpListener::bind(&config.server.addr).map_err(|err| {
            anyhow::anyhow!(
                "could not listen on {}: {}",
                config.server.addr,
                crate::io_error::describe(&err)
            )
        })?;
        let port = listener.local_addr()?.port();
        let server = api_server(&config, state, listener)?;
        Ok(Self {
            port,
            server,
            metrics_server,
            tasks,
            mail,
            store,
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
        let metrics = self.metrics_server.map(|server| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let result = self.server.await;
        self.mail.stop().await;
        for task in self.tasks {
            task.abort();
        }
        if let Some((task, handle)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        self.store.close().await;
        result
    }
}

/// What the handlers share, and the background work that lives beside them: the keys, the
/// hasher, the revocation list as it stands, the limits, mail, the sessions service.
/// What runs beside the server for as long as it serves.
fn background_tasks(
    config: &Config,
    store: &Arc<dyn Store>,
    keys: &keys::TokenKeys,
    revocations: &Arc<RevocationList>,
    limits: &Arc<Limits>,
    mfa: &Arc<Mfa>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tasks::spawn_pruner(
            store.clone(),
            revocations.clone(),
            limits.clone(),
            config.tokens.prune_interval(),
        ),
        store.spawn_revocation_watcher(revocations.clone()),
    ];
    tasks.extend(tasks::spawn_checkpointer(store.clone()));
    tasks.extend(keys.spawn_reloader(store.clone(), &config.tokens));
    // More than one HS256 secret listed: a rotation is under way.
    if keys.secrets.secrets().nth(1).is_some() {
        tasks.push(tasks::spawn_resealer(mfa.clone()));
    }
    tasks
}

async fn app_state(
    config: &Config,
    database: Arc<dyn Database>,
) -> anyhow::Result<(web::Data<AppState>, Vec<JoinHandle<()>>, MailWorker)> {
    let store: Arc<dyn Store> = database.clone();
    let keys = keys::load(config, store.as_ref()).await?;
    let hasher = PasswordHasher::new(
        config.passwords.bcrypt_cost,
        config.passwords.hash_threads(),
    )
    .await?;
    let tokens = keys.tokens.clone();
    bootstrap_admin(config, store.as_ref(), &hasher).await?;

    let revocations = revocations_at_start(&tokens, store.as_ref()).await?;
    let limits = Arc::new(Limits::with_shared(
        &config.abuse.limits(),
        store.shared_limits(),
    ));
    let trusted_proxies = TrustedProxies::parse(&config.server.trusted_proxies)
        .map_err(|why| anyhow::anyhow!("LATCHKEY_TRUSTED_PROXIES: {why}"))?;
    let metrics = Metrics::new()?;
    // Before this instance serves, so no delivery of its own is among them.
    store.release_orphaned_mail_claims().await?;
    let (email, mail) = EmailFlows::from_config(store.clone(), config, metrics.clone())?;
    let mfa = Arc::new(Mfa::new(
        store.clone(),
        MfaKeys::new(&keys.secrets),
        &config.tokens.mfa_issuer,
        TimeDelta::seconds(i64::try_from(config.tokens.mfa_token_ttl)?),
        TimeDelta::seconds(i64::try_from(config.tokens.mfa_step_up_max_age)?),
    ));
    let tasks = background_tasks(config, &store, &keys, &revocations, &limits, &mfa);
    let state = web::Data::new(AppState {
        mfa,
        limits,
        trusted_proxies,
        refresh_tokens: RefreshTokens::new(keys.secrets.signing_secret()),
        device_tokens: DeviceTokens::new(keys.secrets.signing_secret()),
        refresh_cookie: RefreshCookie::new(
            config.tokens.refresh_cookie,
            config.tokens.refresh_ttl,
            &config.server.cors_origins,
        ),
        tokens,
        revocations: revocations.clone(),
        store,
        sessions: Sessions::new(database, revocations, metrics.clone()),
        hasher,
        metrics,
        email,
        refresh_ttl: TimeDelta::from_std(config.tokens.refresh_ttl())?,
        refresh_reuse_interval: TimeDelta::from_std(config.tokens.refresh_reuse_interval())?,
        session_max_age: TimeDelta::from_std(config.tokens.session_max_age())?,
        max_sessions_per_user: config.tokens.max_sessions_per_user,
    });
    Ok((state, tasks, mail))
}

/// Sessions revoked before this start may still have unexpired access tokens around.
async fn revocations_at_start(
    tokens: &AccessTokens,
    store: &dyn Store,
) -> anyhow::Result<Arc<RevocationList>> {
    let revocations = Arc::new(RevocationList::new(TimeDelta::from_std(
        tokens.longest_validity(),
    )?));
    let since = revocations.relevant_since(store::now());
    revocations.revoke(store.revocations_since(since).await?);
    Ok(revocations)
}

/// The API listener's server: the routes with the error rendering, default headers, CORS and
/// the request middleware around them.
fn api_server(
    config: &Config,
    state: web::Data<AppState>,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let cors_origins = config.server.cors_origins.clone();
    let cookie_mode = config.tokens.refresh_cookie;
    let metrics_here = config.operations.metrics && config.operations.metrics_on_api;
    Ok(HttpServer::new(move || {
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
                cors(&cors_origins, cookie_mode),
            ))
            // Outermost, so it logs and counts the response the client really gets.
            .wrap(from_fn(crate::http::middleware::observe))
            .configure(routes::configure)
            .configure(|cfg| {
                if metrics_here {
                    routes::configure_metrics(cfg);
                }
            })
    })
    .workers(config.server.workers())
    .shutdown_timeout(10)
    .listen(listener)?
    .run())
}

/// Settings that tests and benchmarks need and production must not have: allowed, but loudly.
fn warn_about_unsafe_settings(config: &Config) {
    if config.passwords.bcrypt_cost < 10 {
        tracing::warn!(
            "LATCHKEY_BCRYPT_COST is {}: below 10, hashes from a stolen database are cheap to \
             crack. Use 10 or more (12 is the default) outside tests and benchmarks.",
            config.passwords.bcrypt_cost
        );
    }
    if !config.abuse.rate_limits {
        tracing::warn!(
            "LATCHKEY_RATE_LIMITS is off: nothing limits password guessing, signups or reset \
             mails, and there is no lockout. For tests and benchmarks only."
        );
    }
}

/// `GET /metrics` alone, on its own address, so it can stay off the public listener.
fn metrics_server(addr: &str, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let listener = TcpListener::bind(addr).map_err(|err| {
        anyhow::anyhow!(
            "could not listen on {addr} for metrics: {}",
            crate::io_error::describe(&err)
        )
    })?;
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::configure_metrics)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

/// Browsers send `Origin: scheme://host[:port]` and the allow-list matches it exactly, so an entry
/// without a scheme or with a path (even a trailing `/`) would silently never match: refused at
/// start instead.
fn check_cors_origins(origins: &[String]) -> anyhow::Result<()> {
    for origin in origins.iter().map(|origin| origin.trim()) {
        let bad = |why: &str| {
            anyhow::anyhow!(
                "LATCHKEY_CORS_ORIGINS entry {origin:?} {why}: write an origin like \
                 https://app.example.com"
            )
        };
        let Some((scheme, authority)) = origin.split_once("://") else {
            return Err(bad("has no scheme"));
        };
        if scheme != "http" && scheme != "https" {
            return Err(bad("is not http:// or https://"));
        }
        if authority.is_empty() {
            return Err(bad("has no host"));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(bad("has a path (an origin ends after the host and port)"));
        }
    }
    Ok(())
}

/// Cross-origin access for the configured browser origins only: exact origins, preflights
/// answered, `Authorization` allowed. Credentials (the refresh cookie) only in cookie mode.
fn cors(origins: &[String], cookie_mode: bool) -> Cors {
    let cors = origins
        .iter()
        .fold(Cors::default(), |cors, origin| {
            cors.allowed_origin(origin.trim())
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static(CSRF_HEADER),
        ])
        .max_age(600);
    if cookie_mode {
        cors.supports_credentials()
    } else {
        cors
    }
}

/// Creates the admin named by `LATCHKEY_BOOTSTRAP_ADMIN_*`, when both are set and no user has
/// that email yet.
async fn bootstrap_admin(
    config: &Config,
    store: &dyn Store,
    hasher: &PasswordHasher,
) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (
        &config.operations.bootstrap_admin_email,
        &config.operations.bootstrap_admin_password,
    ) else {
        return Ok(());
    };
    let email = Email::parse(email)
        .map_err(|why| anyhow::anyhow!("LATCHKEY_BOOTSTRAP_ADMIN_EMAIL {why}"))?;
    let password = Password::parse(password.clone())
        .map_err(|why| anyhow::anyhow!("LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD {why}"))?;
    match accounts::bootstrap_admin(store, hasher, &email, &password).await? {
        BootstrapOutcome::Created => {
            audit::record(AuditEvent::AdminBootstrapped { email: &email });
        }
        BootstrapOutcome::AlreadyAdmin => {}
        // Not fatal: after a deliberate demotion every restart would fail. But the operator must
        // hear of it, since it is also what a squatted address looks like.
        BootstrapOutcome::NotAdmin => {
            audit::record(AuditEvent::AdminBootstrapRefused { email: &email })
        }
    }
    Ok(())
}
