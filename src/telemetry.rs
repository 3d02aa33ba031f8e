//! Logs: human-readable or JSON lines through `tracing`, with audit events under their own target
//! (`latchkey::audit`). The one line per request is written by
//! the HTTP wing's middleware (src/http/middleware.rs).

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The filter when `RUST_LOG` is unset. PostgreSQL's NOTICE messages reach sqlx's log at INFO,
/// and the migrator's `CREATE TABLE IF NOT EXISTS` draws one ("relation _sqlx_migrations already
/// exists, skipping") on every start: noise, not news. sqlx has no setting for the level of
/// notices, so the filter keeps only its warnings; `RUST_LOG` can bring them back.
const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Installs the global subscriber. `RUST_LOG` filters (default [`DEFAULT_FILTER`]).
pub fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal: in a file or a log collector they are
        // garbage around every level and field name.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
