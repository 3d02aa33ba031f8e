//! Every setting is a command-line flag with an environment fallback, so `latchkey --help` is the
//! complete configuration reference and a bare `cargo run` needs none of them.

use std::path::PathBuf;

use clap::{Args, FromArgMatches};

use crate::abuse::Rate;
use crate::auth::JwtAlgorithm;
use crate::telemetry::LogFormat;

/// Longest refresh-token lifetime and absolute session lifetime: a year. Past that a session is
/// not a session but a permanent credential. Like every duration maximum here, it also keeps
/// `now + setting` far inside the dates chrono can represent (about 262,000 years either way) and
/// the instants a Tokio timer can reach, so the arithmetic on these settings cannot overflow.
pub const MAX_SESSION_SECS: u64 = 365 * 86_400;

/// Longest time between background prunes: a day, the longest anyone would want expired rows
/// kept before they are swept.
pub const MAX_PRUNE_INTERVAL_SECS: u64 = 86_400;

/// Runtime configuration of one Latchkey instance, in groups: a new setting goes into the group
/// it belongs to, and nothing else changes.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub tokens: TokenSettings,
    #[command(flatten)]
    pub passwords: PasswordSettings,
    #[command(flatten)]
    pub abuse: AbuseSettings,
    #[command(flatten)]
    pub mail: MailSettings,
    #[command(flatten)]
    pub operations: OperationsSettings,
}

/// Where the API listens and whom it believes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerSettings {
    /// Address the HTTP server binds to.
    #[arg(long, env = "LATCHKEY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// HTTP worker threads [default: number of CPUs].
    #[arg(long, env = "LATCHKEY_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Browser origins allowed to call the API (CORS), comma-separated and exact, like
    /// `https://app.example.com`. None by default.
    #[arg(long, env = "LATCHKEY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Proxies whose X-Forwarded-For is trusted, as comma-separated CIDRs or addresses. From
    /// anyone else the header is ignored.
    #[arg(long, env = "LATCHKEY_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
}

/// The database, and how log lines are written: what every command needs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database and logs")]
pub struct DatabaseSettings {
    /// Database URL: `sqlite://FILE` (created if missing) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://latchkey.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Log lines as human-readable text or as JSON objects.
    #[arg(long, env = "LATCHKEY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Signing keys, token lifetimes and how sessions live and end.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tokens and sessions")]
pub struct TokenSettings {
    /// HS256 secret, at least 32 bytes: signs access tokens under HS256, and keys refresh and
    /// device tokens whatever the algorithm. When unset on SQLite a random secret is generated
    /// once and stored in the database; PostgreSQL deployments must set it.
    #[arg(long, env = "LATCHKEY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Several signing keys for rotation, as comma-separated `kid:secret` pairs (each secret at
    /// least 32 bytes). The first signs new tokens; tokens signed with any listed key verify.
    /// Instead of LATCHKEY_JWT_SECRET.
    #[arg(
        long,
        env = "LATCHKEY_JWT_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        conflicts_with = "jwt_secret"
    )]
    pub jwt_keys: Vec<String>,

    /// Algorithm access tokens are signed with: HS256 (the shared secret), EdDSA (Ed25519) or
    /// ES256 (P-256). With EdDSA or ES256 the public keys are served at
    /// /.well-known/jwks.json; the secret still keys refresh and device tokens.
    #[arg(long, env = "LATCHKEY_JWT_ALG", default_value = "HS256", value_parser = clap::value_parser!(JwtAlgorithm))]
    pub jwt_alg: JwtAlgorithm,

    /// File with the current private key (PEM, PKCS#8) for EdDSA or ES256: it signs. When unset
    /// on SQLite keys are generated and kept in the database; PostgreSQL deployments must set it
    /// (or LATCHKEY_JWT_PRIVATE_KEY).
    #[arg(long, env = "LATCHKEY_JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,

    /// The current private key itself (PEM), instead of LATCHKEY_JWT_PRIVATE_KEY_FILE.
    #[arg(
        long,
        env = "LATCHKEY_JWT_PRIVATE_KEY",
        hide_env_values = true,
        conflicts_with = "jwt_private_key_file"
    )]
    pub jwt_private_key: Option<String>,

    /// File with the next key (PEM, private or public): published in the JWKS and accepted, but
    /// not signing yet. Step one of a rotation.
    #[arg(long, env = "LATCHKEY_JWT_NEXT_KEY_FILE")]
    pub jwt_next_key_file: Option<PathBuf>,

    /// Files with previous keys (PEM, private or public), comma-separated: they no longer sign
    /// but still verify and are published, until the tokens they signed have expired.
    #[arg(long, env = "LATCHKEY_JWT_PREVIOUS_KEY_FILES", value_delimiter = ',')]
    pub jwt_previous_key_files: Vec<PathBuf>,

    /// Seconds between reloads of generated keys from the database, so a rotation by
    /// `latchkey keys rotate` or another instance is picked up; 1 to 300.
    #[arg(long, env = "LATCHKEY_JWT_KEY_RELOAD_INTERVAL", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub jwt_key_reload_interval: u64,

    /// `iss` claim of issued access tokens, checked on every verification.
    #[arg(long, env = "LATCHKEY_ISSUER", default_value = "latchkey")]
    pub issuer: String,

    /// `aud` claim of issued access tokens, required of every token verified: names the APIs
    /// that accept them. Unset: tokens carry none, and a token that carries one is refused.
    #[arg(long, env = "LATCHKEY_AUDIENCE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub audience: Option<String>,

    /// Access token lifetime in seconds, at most a day (86400): a revoked session's access
    /// tokens stay in the in-memory revocation list that long.
    #[arg(long, env = "LATCHKEY_ACCESS_TTL", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub access_ttl: u64,

    /// Refresh token lifetime in seconds (sliding: every refresh issues a new one), at most a
    /// year (31536000).
    #[arg(long, env = "LATCHKEY_REFRESH_TTL", default_value_t = 30 * 86_400, value_parser = clap::value_parser!(u64).range(60..=MAX_SESSION_SECS))]
    pub refresh_ttl: u64,

    /// Absolute session lifetime in seconds, however often it is refreshed; at most a year
    /// (31536000).
    #[arg(long, env = "LATCHKEY_SESSION_MAX_AGE", default_value_t = 90 * 86_400, value_parser = clap::value_parser!(u64).range(60..=MAX_SESSION_SECS))]
    pub session_max_age: u64,

    /// Live sessions one user may have; a login past it revokes their oldest session, so
    /// repeated logins cannot grow the session list without bound.
    #[arg(long, env = "LATCHKEY_MAX_SESSIONS_PER_USER", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_sessions_per_user: u32,

    /// Seconds an `mfa_token` (a login's challenge for the second factor) lives; 30 to 300.
    #[arg(long, env = "LATCHKEY_MFA_TOKEN_TTL", default_value_t = 300, value_parser = clap::value_parser!(u64).range(30..=300))]
    pub mfa_token_ttl: u64,

    /// Seconds after the second factor was proved during which a token may change the password,
    /// email or second factor, or delete the account (step-up); 60 to 3600.
    #[arg(long, env = "LATCHKEY_MFA_STEP_UP_MAX_AGE", default_value_t = 600, value_parser = clap::value_parser!(u64).range(60..=3600))]
    pub mfa_step_up_max_age: u64,

    /// The issuer authenticator apps show beside the account.
    #[arg(long, env = "LATCHKEY_MFA_ISSUER", default_value = "Latchkey")]
    pub mfa_issuer: String,

    /// Seconds after a refresh during which the same refresh token may be presented again (two
    /// tabs refreshing at once) and gets the same new token instead of revoking the session. At
    /// most 300: longer, a stolen token replayed later would also pass as a concurrent refresh.
    #[arg(long, env = "LATCHKEY_REFRESH_REUSE_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub refresh_reuse_interval: u64,

    /// Hand out the refresh token as an HttpOnly, Secure, SameSite=Strict cookie (path /v1/auth)
    /// instead of in the response body; refresh and logout then take it from the cookie.
    #[arg(long, env = "LATCHKEY_REFRESH_COOKIE", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub refresh_cookie: bool,

    /// Seconds between background sweeps that delete expired sessions and refresh tokens, at most
    /// a day (86400).
    #[arg(long, env = "LATCHKEY_PRUNE_INTERVAL", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=MAX_PRUNE_INTERVAL_SECS))]
    pub prune_interval: u64,
}

/// Password hashing.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Passwords")]
pub struct PasswordSettings {
    /// bcrypt cost factor for new password hashes (4–31).
    #[arg(long, env = "LATCHKEY_BCRYPT_COST", default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// Threads that may run bcrypt at once [default: number of CPUs].
    #[arg(long, env = "LATCHKEY_HASH_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub hash_threads: Option<u16>,
}

/// Rate limits and lockout.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Abuse limits")]
pub struct AbuseSettings {
    /// Rate limits and account lockout; `false` only for tests and benchmarks.
    #[arg(long, env = "LATCHKEY_RATE_LIMITS", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub rate_limits: bool,

    /// Login attempts per client address, as COUNT/WINDOW (`20/min`, `5/10s`, `100/h`; the window
    /// at most `24h`).
    #[arg(long, env = "LATCHKEY_RATE_LOGIN_PER_IP", default_value = "20/min")]
    pub rate_login_per_ip: Rate,

    /// Login attempts per account (email), from all addresses together.
    #[arg(
        long,
        env = "LATCHKEY_RATE_LOGIN_PER_ACCOUNT",
        default_value = "10/min"
    )]
    pub rate_login_per_account: Rate,

    /// Signups per client address.
    #[arg(long, env = "LATCHKEY_RATE_SIGNUP_PER_IP", default_value = "10/min")]
    pub rate_signup_per_ip: Rate,

    /// Refreshes per client address.
    #[arg(long, env = "LATCHKEY_RATE_REFRESH_PER_IP", default_value = "60/min")]
    pub rate_refresh_per_ip: Rate,

    /// Password-reset requests per client address.
    #[arg(long, env = "LATCHKEY_RATE_FORGOT_PER_IP", default_value = "20/h")]
    pub rate_forgot_per_ip: Rate,

    /// Password-reset requests per email address, from all client addresses together.
    #[arg(long, env = "LATCHKEY_RATE_FORGOT_PER_EMAIL", default_value = "5/h")]
    pub rate_forgot_per_email: Rate,

    /// Verification mails sent again per user (resend requests, and logins refused for an
    /// unverified address).
    #[arg(long, env = "LATCHKEY_RATE_RESEND_PER_USER", default_value = "5/h")]
    pub rate_resend_per_user: Rate,

    /// Wrong passwords for one account from one address before it is locked out there.
    #[arg(long, env = "LATCHKEY_LOCKOUT_THRESHOLD", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub lockout_threshold: u32,

    /// First lockout in seconds (at most 900); each further failure doubles it, up to 15
    /// minutes.
    #[arg(long, env = "LATCHKEY_LOCKOUT_BASE_DELAY", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=900))]
    pub lockout_base_delay: u64,

    /// Keys (client addresses, accounts, devices) each rate limit and the lockout keep at most;
    /// when full, the key closest to its full allowance is forgotten first. About 2.7 KB per
    /// key in all: 10,000 keys bound the limits' memory to about 27 MB.
    #[arg(long, env = "LATCHKEY_RATE_LIMIT_KEYS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_keys: u32,
}

/// Mailed links: where they point, how long they live, how mail is sent.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Mail")]
pub struct MailSettings {
    /// Base URL of the web app that opens the links in mails: they point at
    /// PUBLIC_URL/reset-password#token=… and PUBLIC_URL/verify-email#token=….
    #[arg(
        long,
        env = "LATCHKEY_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,

    /// Lifetime of a password-reset token, in seconds; at most a week (604800).
    #[arg(long, env = "LATCHKEY_RESET_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=7 * 86_400))]
    pub reset_ttl: u64,

    /// Lifetime of an email-verification token, in seconds; at most 30 days (2592000).
    #[arg(long, env = "LATCHKEY_VERIFY_TTL", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=30 * 86_400))]
    pub verify_ttl: u64,

    /// SMTP server for outgoing mail: `smtps://user:pass@host:465` (TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtp://host:25` (plain, for a
    /// relay on the same host). Unset: mails are written to the log and NOT sent (development).
    #[arg(long, env = "LATCHKEY_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Without LATCHKEY_SMTP_URL, write the links of unsent mails to the log even though the
    /// server listens on a non-loopback address. Development only: whoever reads that log can
    /// reset any account's password. On a loopback address the links are always logged.
    #[arg(long, env = "LATCHKEY_MAIL_LOG_LINKS", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub mail_log_links: bool,

    /// Sender of outgoing mail, as `Name <address>` or a bare address.
    #[arg(
        long,
        env = "LATCHKEY_MAIL_FROM",
        default_value = "Latchkey <no-reply@localhost>"
    )]
    pub mail_from: String,

    /// Deliveries of one mail tried before it is given up as a dead letter (a metric and an
    /// audit event say so); the waits between them double from LATCHKEY_MAIL_RETRY_DELAY.
    #[arg(long, env = "LATCHKEY_MAIL_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub mail_max_attempts: u32,

    /// Seconds before the first retry of a failed delivery; at most an hour (3600).
    #[arg(long, env = "LATCHKEY_MAIL_RETRY_DELAY", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub mail_retry_delay: u64,

    /// Refuse logins (403 email_not_verified, after a correct password) until the user has
    /// verified their email address.
    #[arg(long, env = "LATCHKEY_REQUIRE_EMAIL_VERIFICATION", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub require_email_verification: bool,
}

/// Metrics, and the admin created at start.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Operations")]
pub struct OperationsSettings {
    /// Collect Prometheus metrics, served at GET /metrics where LATCHKEY_METRICS_ADDR or
    /// LATCHKEY_METRICS_ON_API says.
    #[arg(long, env = "LATCHKEY_METRICS", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics: bool,

    /// Serve GET /metrics on this address of its own (e.g. 127.0.0.1:9090), for the scraper.
    #[arg(long, env = "LATCHKEY_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Also serve GET /metrics on the API's own listener, to anyone who can reach the API. Off by
    /// default: the metrics describe traffic and users' activity.
    #[arg(long, env = "LATCHKEY_METRICS_ON_API", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics_on_api: bool,

    /// Email of an admin to create at start if no user has it yet (for containers); needs
    /// LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD too.
    #[arg(
        long,
        env = "LATCHKEY_BOOTSTRAP_ADMIN_EMAIL",
        requires = "bootstrap_admin_password"
    )]
    pub bootstrap_admin_email: Option<String>,

    /// Password of the bootstrap admin (only used when that admin is created).
    #[arg(
        long,
        env = "LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD",
        hide_env_values = true,
        requires = "bootstrap_admin_email"
    )]
    pub bootstrap_admin_password: Option<String>,
}

impl Config {
    /// Every setting at its documented default, whatever the environment holds: what tests and
    /// tools start from before changing the few values they need. A setting's default is written
    /// once, in its `#[arg]`.
    pub fn defaults() -> Self {
        let command = Self::augment_args(clap::Command::new("latchkey"))
            .mut_args(|arg| arg.env(None::<&'static str>));
        command
            .try_get_matches_from(["latchkey"])
            .and_then(|matches| Self::from_arg_matches(&matches))
            .unwrap_or_else(|err| unreachable!("the defaults do not parse: {err}"))
    }
}

mod values;

#[cfg(test)]
mod tests;
