//! The `latchkey` subcommands (admin, migrate, healthcheck), each run as a separate process.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, spawn_app};

/// Runs the CLI to completion. The wait happens off the test's runtime thread, where the
/// server's background tasks run: blocking it could stall them in the middle of a transaction.
pub async fn latchkey(app: &TestApp, args: &[&str], stdin: &str) -> (bool, String) {
    let database_url = app.config.database.database_url.clone();
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || run_cli(&database_url, &args, &stdin))
        .await
        .unwrap()
}

/// `latchkey admin create --email EMAIL --password-stdin`, with `stdin` as its input.
async fn admin_create(app: &TestApp, email: &str, stdin: &str) -> (bool, String) {
    latchkey(
        app,
        &["admin", "create", "--email", email, "--password-stdin"],
        stdin,
    )
    .await
}

fn run_cli(database_url: &str, args: &[String], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("LATCHKEY_BCRYPT_COST", "4")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not run latchkey");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn admin_create_makes_a_working_admin_from_stdin() {
    let app = spawn_app().await;

    let (ok, output) = admin_create(&app, "Root@Example.com", &format!("{PASSWORD}\n")).await;

    assert!(ok, "{output}");
    assert!(
        output.contains("created admin root@example.com"),
        "{output}"
    );
    assert!(!output.contains(PASSWORD));
    let tokens: Value = app
        .login("root@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["user"]["role"], "admin");
    let response = app
        .call(
            Method::GET,
            "/v1/users",
            tokens["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Security review: `admin create` used to promote whoever had registered the address first,
/// discard the password the operator typed, and exit 0.
#[tokio::test]
async fn admin_create_never_promotes_an_existing_account() {
    let app = spawn_app().await;
    let attacker_password = "attacker's own password";
    let response = app
        .post_json(
            "/v1/auth/signup",
            &serde_json::json!({ "email": "ops@example.com", "password": attacker_password }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let (ok, output) = admin_create(&app, "ops@example.com", &format!("{PASSWORD}\n")).await;

    assert!(
        !ok,
        "admin create succeeded on someone else's account: {output}"
    );
    assert!(output.contains("exists already"), "{output}");
    assert!(output.contains("admin set-role"), "{output}");
    assert!(!output.contains(PASSWORD));
    let attacker: Value = app
        .login("ops@example.com", attacker_password)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(attacker["user"]["role"], "user");
    assert_eq!(
        app.login("ops@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_bootstrap_admin_never_promotes_an_existing_account() {
    let app = spawn_app().await;
    let attacker_password = "attacker's own password";
    let response = app
        .post_json(
            "/v1/auth/signup",
            &serde_json::json!({ "email": "boot@example.com", "password": attacker_password }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let app = app
        .restart_with(|config| {
            config.operations.bootstrap_admin_email = Some("boot@example.com".into());
            config.operations.bootstrap_admin_password = Some(PASSWORD.into());
        })
        .await;

    let attacker: Value = app
        .login("boot@example.com", attacker_password)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(attacker["user"]["role"], "user");
    assert_eq!(
        app.login("boot@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn set_role_promotes_a_known_account_and_demotes_it() {
    let app = spawn_app().await;
    app.signed_up("ada@example.com").await;
    // Another admin, so that demoting ada does not meet the last-admin rule.
    let (ok, output) = admin_create(&app, "root@example.com", &format!("{PASSWORD}\n")).await;
    assert!(ok, "{output}");
    let (ok, output) = latchkey(
        &app,
        &[
            "admin",
            "set-role",
            "--email",
            "ada@example.com",
            "--role",
            "admin",
        ],
        "",
    )
    .await;
    assert!(ok, "{output}");
    let tokens: Value = app
        .login("ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["user"]["role"], "admin");

    let (ok, output) = latchkey(
        &app,
        &[
            "admin",
            "set-role",
            "--email",
            "ada@example.com",
            "--role",
            "user",
        ],
        "",
    )
    .await;
    assert!(ok, "{output}");
    // The running server learns of the CLI's revocation within a second or so.
    let access = tokens["access_token"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.me(access).await.status() != StatusCode::UNAUTHORIZED {
        assert!(
            std::time::Instant::now() < deadline,
            "demotion did not revoke sessions"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_cli_refuses_bad_input_and_the_last_admin_demotion() {
    let app = spawn_app().await;
    let (ok, output) = admin_create(&app, "root@example.com", "short\n").await;
    assert!(!ok, "{output}");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    let (ok, output) = admin_create(&app, "root@example.com", &format!("{PASSWORD}\n")).await;
    assert!(ok, "{output}");
    let (ok, output) = latchkey(
        &app,
        &[
            "admin",
            "set-role",
            "--email",
            "root@example.com",
            "--role",
            "user",
        ],
        "",
    )
    .await;
    assert!(!ok);
    assert!(output.contains("last enabled admin"), "{output}");
    // A password is never taken from an argument.
    let (ok, _) = latchkey(
        &app,
        &[
            "admin",
            "create",
            "--email",
            "x@example.com",
            "--password",
            "secret123",
        ],
        "",
    )
    .await;
    assert!(!ok);
}

#[tokio::test]
async fn the_bootstrap_admin_is_created_once() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.operations.bootstrap_admin_email = Some("boot@example.com".into());
        config.operations.bootstrap_admin_password = Some(PASSWORD.into());
    })
    .await;
    let app = app.restart().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    let tokens: Value = app
        .login("boot@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["user"]["role"], "admin");
}

#[tokio::test]
async fn migrate_creates_the_schema_on_a_fresh_database_and_exits() {
    let database_url = format!(
        "sqlite://{}/migrate-{}.db",
        env!("CARGO_TARGET_TMPDIR"),
        uuid::Uuid::new_v4().simple()
    );
    let args = vec!["migrate".to_owned()];
    let (ok, output) = {
        let database_url = database_url.clone();
        tokio::task::spawn_blocking(move || run_cli(&database_url, &args, ""))
            .await
            .unwrap()
    };
    assert!(ok, "{output}");
    crate::helpers::install_drivers();
    let db = sqlx::AnyPool::connect(&database_url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
         AND name IN ('users', 'sessions', 'refresh_tokens', 'session_revocations')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(tables, 4);

    let args = vec!["migrate".to_owned()];
    let (ok, again) = tokio::task::spawn_blocking(move || run_cli(&database_url, &args, ""))
        .await
        .unwrap();
    assert!(ok, "{again}");
    assert!(
        output
            .lines()
            .any(|line| line.starts_with("applied ") && line.ends_with(" migrations")),
        "{output}"
    );
    assert!(again.contains("the database is up to date"), "{again}");
    assert!(!again.contains("applied"), "{again}");
}

/// Runs `latchkey ARGS --help` and returns what it printed.
fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .expect("could not run latchkey");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every server setting used to be a global flag, so `admin create --help` listed some 85 lines
/// of settings it never reads.
#[test]
fn subcommand_help_lists_only_what_the_subcommand_reads() {
    for args in [
        &["admin", "create"][..],
        &["admin", "set-role"],
        &["migrate"],
    ] {
        let text = help(args);
        assert!(text.lines().count() < 25, "{args:?}: {text}");
        assert!(text.contains("DATABASE_URL"), "{args:?}: {text}");
        assert!(!text.contains("LATCHKEY_SMTP_URL"), "{args:?}: {text}");
    }
    assert!(help(&["admin", "create"]).contains("LATCHKEY_BCRYPT_COST"));
    for args in [&[][..], &["serve"]] {
        let text = help(args);
        assert!(text.contains("LATCHKEY_SMTP_URL"), "{args:?}: {text}");
        assert!(text.contains("LATCHKEY_ACCESS_TTL"), "{args:?}: {text}");
    }
}

/// `latchkey healthcheck` with LATCHKEY_ADDR alone in its environment, waited for off the
/// runtime thread like [`latchkey`]. Returns the exit code and everything it printed.
async fn healthcheck(addr: &str) -> (Option<i32>, String) {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("healthcheck")
            .env_clear()
            .env("LATCHKEY_ADDR", addr)
            .output()
            .expect("could not run latchkey");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    })
    .await
    .unwrap()
}

/// A loopback port nothing listens on: bound, then released.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback listener that hands its first connection to `serve` and returns the address.
fn fake_server(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream);
        }
    });
    addr
}

#[tokio::test]
async fn healthcheck_exits_0_against_a_running_server() {
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://");

    let (code, output) = healthcheck(addr).await;

    assert_eq!(code, Some(0), "{output}");
    assert_eq!(output, "");
}

/// The image sets LATCHKEY_ADDR=0.0.0.0:8080: the check must reach that server on loopback.
#[tokio::test]
async fn healthcheck_on_an_unspecified_address_probes_loopback() {
    let app = spawn_app().await;
    let port = app.address.rsplit(':').next().unwrap();

    let (code, output) = healthcheck(&format!("0.0.0.0:{port}")).await;

    assert_eq!(code, Some(0), "{output}");
}

#[tokio::test]
async fn healthcheck_exits_1_with_one_line_when_nothing_listens() {
    let port = free_port();

    let (code, output) = healthcheck(&format!("127.0.0.1:{port}")).await;

    assert_eq!(code, Some(1), "{output}");
    assert_eq!(
        output,
        format!("latchkey: unhealthy: connection refused to 127.0.0.1:{port}\n")
    );
}

#[tokio::test]
async fn healthcheck_exits_1_when_healthz_is_not_200() {
    let addr = fake_server(|mut stream| {
        use std::io::Read;
        let mut request = [0_u8; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    });

    let (code, output) = healthcheck(&addr).await;

    assert_eq!(code, Some(1), "{output}");
    assert_eq!(
        output,
        format!(
            "latchkey: unhealthy: GET /healthz on {addr} answered \"HTTP/1.1 503 Service Unavailable\"\n"
        )
    );
}

/// A server that accepts but never answers must not hold the check past its 3 s budget, which
/// stays inside the image's HEALTHCHECK --timeout of 5 s.
#[tokio::test]
async fn healthcheck_gives_up_on_a_silent_server_within_its_timeout() {
    let addr = fake_server(|stream| {
        std::thread::sleep(Duration::from_secs(10));
        drop(stream);
    });
    let started = std::time::Instant::now();

    let (code, output) = healthcheck(&addr).await;

    assert_eq!(code, Some(1), "{output}");
    assert_eq!(
        output,
        format!("latchkey: unhealthy: timed out talking to {addr}\n")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
