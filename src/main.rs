use std::io::BufRead;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use latchkey::accounts::{self, AdminOutcome};
use latchkey::auth::PasswordHasher;
use latchkey::domain::{Email, Password, Role};
use latchkey::{Application, Config, store, telemetry};

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
    /// Manage admins.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin account. An existing account with this email is never promoted (use
    /// set-role for a known account). The password is asked for at a prompt, or read from
    /// standard input with --password-stdin; never from an argument.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change the role of an existing user (demoting revokes their sessions).
    SetRole {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    User,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::User => Role::User,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging(cli.config.log_format);
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
        Command::Admin(command) => admin(&cli.config, command).await?,
    }
    Ok(())
}

async fn admin(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let store = store::connect(&config.database_url).await?;
    match command {
        AdminCommand::Create {
            email,
            password_stdin,
        } => {
            let email = Email::parse(&email).map_err(|why| anyhow::anyhow!("--email {why}"))?;
            let password = Password::parse(read_password(password_stdin)?)
                .map_err(|why| anyhow::anyhow!("the password {why}"))?;
            let hasher = PasswordHasher::new(config.bcrypt_cost, 1).await?;
            let outcome =
                accounts::ensure_admin(store.as_ref(), &hasher, &email, &password).await?;
            println!(
                "{}",
                match outcome {
                    AdminOutcome::Created => format!("created admin {email}"),
                    AdminOutcome::AlreadyAdmin =>
                        format!("{email} is already an admin (its password is unchanged)"),
                }
            );
        }
        AdminCommand::SetRole { email, role } => {
            let email = Email::parse(&email).map_err(|why| anyhow::anyhow!("--email {why}"))?;
            let user = accounts::set_role(store.as_ref(), &email, role.into()).await?;
            println!("{} is now {}", user.email, user.role.as_str());
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("could not read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let password = rpassword::prompt_password("Password: ")
        .context("could not read the password (use --password-stdin without a terminal)")?;
    let again = rpassword::prompt_password("Password again: ")?;
    anyhow::ensure!(password == again, "the passwords do not match");
    Ok(password)
}
