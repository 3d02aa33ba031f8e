use clap::{Parser, Subcommand};
use latchkey::{Application, Config, store};
use tracing_subscriber::EnvFilter;

/// Latchkey: an authentication API with bcrypt passwords, HS256 access tokens and rotating
/// refresh tokens. Every option can also be set through the environment variable shown.
#[derive(Parser)]
#[command(name = "latchkey", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations, then exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(cli.config.clone()).await?;
            tracing::info!(addr = %cli.config.addr, port = app.port(), "latchkey is listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            store::connect(&cli.config.database_url).await?;
            tracing::info!("migrations are up to date");
        }
    }
    Ok(())
}
