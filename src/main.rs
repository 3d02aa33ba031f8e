use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::TimeDelta;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use latchkey::accounts::{self, AdminOutcome};
use latchkey::auth::{JwtAlgorithm, KeyState, PasswordHasher, RevocationList};
use latchkey::config::DatabaseSettings;
use latchkey::domain::{Email, Password, Role};
use latchkey::metrics::Metrics;
use latchkey::sessions::Sessions;
use latchkey::{Application, Config, store, telemetry};

/// Latchkey: an authentication API with bcrypt passwords, JWT access tokens and rotating
/// refresh tokens. Every option can also be set through the environment variable shown.
#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand, `latchkey` serves: the server settings stay here, so `latchkey
    /// --help` remains the whole configuration reference.
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve(Box<Config>),
    /// Apply database migrations, then exit.
    Migrate(DatabaseSettings),
    /// Manage admins.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage the access-token keys generated on SQLite (EdDSA or ES256 without key files).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Exit 0 if GET /healthz on the server's address answers 200 within 3 seconds, 1
    /// otherwise: the container's HEALTHCHECK, which has no curl.
    Healthcheck {
        /// Address the server listens on (its own LATCHKEY_ADDR).
        #[arg(long, env = "LATCHKEY_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin account. An existing account with this email is never promoted (use
    /// set-role for a known account). The password is asked for at a prompt, or read from
    /// standard input with --password-stdin; never from an argument.
    Create {
        /// Email address of the new admin.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// bcrypt cost factor for the password hash (4–31).
        #[arg(long, env = "LATCHKEY_BCRYPT_COST", default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31))]
        bcrypt_cost: u32,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Change the role of an existing user (demoting revokes their sessions).
    SetRole {
        /// Email address of the user.
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// One rotation step: the next key starts signing, the current one becomes previous (it
    /// verifies until the tokens it signed have expired) and a new next key is published.
    /// Running servers pick it up within LATCHKEY_JWT_KEY_RELOAD_INTERVAL; nobody is logged out.
    Rotate {
        /// Algorithm of the keys to rotate (the server's LATCHKEY_JWT_ALG): EdDSA or ES256.
        #[arg(long, env = "LATCHKEY_JWT_ALG", value_parser = clap::value_parser!(JwtAlgorithm))]
        jwt_alg: JwtAlgorithm,
        /// Rotate even though the next key has been published for less than 10 minutes, so
        /// cached key sets may not hold it yet.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        database: DatabaseSettings,
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
async fn main() -> ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|err| exit_on_usage_error(err));
    // A failure is one line naming what to fix: returning the error from `main` would print
    // its Debug form, a "Caused by" list and, with RUST_BACKTRACE set, a stack trace.
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = format!("{err:#}").replace('\n', " ");
            eprintln!("latchkey: error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.config).await,
        Some(Command::Serve(config)) => serve(*config).await,
        Some(Command::Migrate(database)) => {
            telemetry::init_logging(database.log_format);
            let store = store::open(&database.database_url).await?;
            let applied = store
                .migrate()
                .await
                .context("could not migrate the database")?;
            match applied {
                0 => println!("the database is up to date"),
                1 => println!("applied 1 migration"),
                n => println!("applied {n} migrations"),
            }
            store.close().await;
            Ok(())
        }
        Some(Command::Admin(command)) => admin(command).await,
        Some(Command::Keys(command)) => keys(command).await,
        Some(Command::Healthcheck { addr }) => {
            // Docker reads only the exit status (1 is "unhealthy"); the line is for `docker
            // inspect` and a person running the command by hand.
            if let Err(why) = latchkey::healthcheck::check(&addr) {
                eprintln!("latchkey: unhealthy: {why}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(config.database.log_format);
    let app = Application::build(config.clone()).await?;
    tracing::info!(addr = %config.server.addr, port = app.port(), "latchkey is listening");
    app.run_until_stopped().await?;
    Ok(())
}

/// Clap names only the flag of a bad value, though in a container it came from an environment
/// variable the operator has to find: such errors name the variable, say what it holds, and stay
/// one line. Everything else (help, version, unknown flags) is clap's own output.
fn exit_on_usage_error(err: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        err.exit()
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        err.get(ContextKind::InvalidArg),
        err.get(ContextKind::InvalidValue),
    ) else {
        err.exit()
    };
    let long = arg
        .trim_start_matches('-')
        .split([' ', '='])
        .next()
        .unwrap_or_default();
    let Some(spec) = find_arg(&Cli::command(), long) else {
        err.exit()
    };
    let why = match std::error::Error::source(&err) {
        Some(source) => source.to_string(),
        None => match err.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!("expected one of {}", valid.join(", ")),
            _ => "not a valid value".to_owned(),
        },
    };
    let shown = if spec.is_hide_env_values_set() {
        String::new()
    } else {
        format!(" {value:?}")
    };
    let name = match spec.get_env().and_then(|env| env.to_str()) {
        // The value came from the environment unless the same text was also given as a flag.
        Some(env) if std::env::var(env).is_ok_and(|set| set == *value) => {
            format!("{env} (--{long})")
        }
        Some(env) => format!("--{long} (or {env})"),
        None => format!("--{long}"),
    };
    let expected = spec.get_help().map(expected_from_help).unwrap_or_default();
    eprintln!("latchkey: error: invalid value{shown} for {name}: {why}{expected}");
    std::process::exit(2)
}

/// " (expected: …)" from an argument's help text.
fn expected_from_help(help: &clap::builder::StyledStr) -> String {
    let help = help
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    // The first clause says what the setting holds and in which unit; the rest is why.
    let first = help.split(". ").next().unwrap_or_default();
    let first = first.split(": ").next().unwrap_or_default();
    format!(
        " (expected: {})",
        lowercase_first(first.trim_end_matches('.'))
    )
}

/// The argument with this long name, in the command or any of its subcommands.
fn find_arg(command: &clap::Command, long: &str) -> Option<clap::Arg> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .cloned()
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| find_arg(sub, long))
        })
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create {
            email,
            password_stdin,
            bcrypt_cost,
            database,
        } => {
            telemetry::init_logging(database.log_format);
            let email = Email::parse(&email).map_err(|why| anyhow::anyhow!("--email {why}"))?;
            let store = store::connect(&database.database_url).await?;
            let password = Password::parse(read_password(password_stdin)?)
                .map_err(|why| anyhow::anyhow!("the password {why}"))?;
            let hasher = PasswordHasher::new(bcrypt_cost, 1).await?;
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
        AdminCommand::SetRole {
            email,
            role,
            database,
        } => {
            telemetry::init_logging(database.log_format);
            let email = Email::parse(&email).map_err(|why| anyhow::anyhow!("--email {why}"))?;
            let database = store::connect(&database.database_url).await?;
            // This process serves no tokens: its revocations reach the servers through the
            // store's revocation feed, so its own list and counters are never read.
            let sessions = Sessions::new(
                database.clone(),
                Arc::new(RevocationList::new(TimeDelta::zero())),
                Metrics::new()?,
            );
            let user =
                accounts::set_role(database.as_ref(), &sessions, &email, role.into()).await?;
            println!("{} is now {}", user.email, user.role.as_str());
        }
    }
    Ok(())
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::Rotate {
        jwt_alg,
        force,
        database,
    } = command;
    telemetry::init_logging(database.log_format);
    let store = store::connect(&database.database_url).await?;
    let ring = latchkey::keys::rotate_generated(store.as_ref(), jwt_alg, force).await;
    store.close().await;
    let ring = ring?;
    println!(
        "rotated the {jwt_alg} keys: {} signs now; {} verifies until its tokens expire; {} is \
         published as the next key",
        ring.kids(KeyState::Current).join(", "),
        ring.kids(KeyState::Previous)
            .last()
            .map_or("", String::as_str),
        ring.kids(KeyState::Next).join(", "),
    );
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
