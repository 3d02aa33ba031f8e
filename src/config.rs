//! Every setting is a command-line flag with an environment fallback, so `latchkey --help` is the
//! complete configuration reference and a bare `cargo run` needs none of them.

use std::time::Duration;

use clap::Args;

/// Runtime configuration of one Latchkey instance.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP server binds to.
    #[arg(
        long,
        env = "LATCHKEY_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub addr: String,

    /// Database URL: `sqlite://FILE` (created if missing) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://latchkey.db",
        hide_env_values = true,
        global = true
    )]
    pub database_url: String,

    /// HS256 signing secret, at least 32 bytes. When unset on SQLite a random secret is generated
    /// once and stored in the database; PostgreSQL deployments must set it.
    #[arg(
        long,
        env = "LATCHKEY_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,

    /// `iss` claim of issued access tokens, checked on every verification.
    #[arg(
        long,
        env = "LATCHKEY_ISSUER",
        default_value = "latchkey",
        global = true
    )]
    pub issuer: String,

    /// Access token lifetime in seconds.
    #[arg(long, env = "LATCHKEY_ACCESS_TTL", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400), global = true)]
    pub access_ttl: u64,

    /// Refresh token lifetime in seconds (sliding: every refresh issues a new one).
    #[arg(long, env = "LATCHKEY_REFRESH_TTL", default_value_t = 30 * 86_400, value_parser = clap::value_parser!(u64).range(60..), global = true)]
    pub refresh_ttl: u64,

    /// Absolute session lifetime in seconds, however often it is refreshed.
    #[arg(long, env = "LATCHKEY_SESSION_MAX_AGE", default_value_t = 90 * 86_400, value_parser = clap::value_parser!(u64).range(60..), global = true)]
    pub session_max_age: u64,

    /// Seconds after a refresh during which the same refresh token may be presented again (two
    /// tabs refreshing at once) and gets the same new token instead of revoking the session.
    #[arg(long, env = "LATCHKEY_REFRESH_REUSE_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=300), global = true)]
    pub refresh_reuse_interval: u64,

    /// Seconds between background sweeps that delete expired sessions and refresh tokens.
    #[arg(long, env = "LATCHKEY_PRUNE_INTERVAL", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub prune_interval: u64,

    /// bcrypt cost factor for new password hashes (4–31).
    #[arg(long, env = "LATCHKEY_BCRYPT_COST", default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31), global = true)]
    pub bcrypt_cost: u32,

    /// Threads that may run bcrypt at once [default: number of CPUs].
    #[arg(long, env = "LATCHKEY_HASH_THREADS", value_parser = clap::value_parser!(u16).range(1..), global = true)]
    pub hash_threads: Option<u16>,

    /// Browser origins allowed to call the API (CORS), comma-separated and exact, like
    /// `https://app.example.com`. None by default.
    #[arg(
        long,
        env = "LATCHKEY_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Email of an admin to create at start if no user has it yet (for containers); needs
    /// LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD too.
    #[arg(
        long,
        env = "LATCHKEY_BOOTSTRAP_ADMIN_EMAIL",
        requires = "bootstrap_admin_password",
        global = true
    )]
    pub bootstrap_admin_email: Option<String>,

    /// Password of the bootstrap admin (only used when that admin is created).
    #[arg(
        long,
        env = "LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD",
        hide_env_values = true,
        requires = "bootstrap_admin_email",
        global = true
    )]
    pub bootstrap_admin_password: Option<String>,

    /// HTTP worker threads [default: number of CPUs].
    #[arg(long, env = "LATCHKEY_WORKERS", value_parser = clap::value_parser!(u16).range(1..), global = true)]
    pub workers: Option<u16>,
}

impl Config {
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_ttl)
    }

    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_ttl)
    }

    pub fn session_max_age(&self) -> Duration {
        Duration::from_secs(self.session_max_age)
    }

    pub fn refresh_reuse_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_reuse_interval)
    }

    pub fn prune_interval(&self) -> Duration {
        Duration::from_secs(self.prune_interval)
    }

    pub fn hash_threads(&self) -> usize {
        self.hash_threads
            .map(usize::from)
            .unwrap_or_else(available_cpus)
    }

    pub fn workers(&self) -> usize {
        self.workers.map(usize::from).unwrap_or_else(available_cpus)
    }
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
