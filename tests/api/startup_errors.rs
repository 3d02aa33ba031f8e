//! What an operator sees when `latchkey` cannot start: one line on stderr naming what to fix, and
//! a failing exit status. Run as the real binary with `RUST_BACKTRACE=1`, as on this machine and
//! in CI, to prove no backtrace or "Caused by" list slips out.

use std::process::{Command, Output};

use crate::helpers::TEST_SECRET;

/// `latchkey serve` with a sane configuration changed by `env`; returns its exit code and its
/// stderr. Warnings are logged (RUST_LOG=warn) and a sane configuration draws none, so the error
/// line has to be the only line. An empty value removes the variable.
fn serve(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .arg("serve")
        .env_clear()
        .env("RUST_BACKTRACE", "1")
        // sqlx warns of any statement slower than a second, which a loaded CI machine can
        // produce while migrating: about the machine, not the start, and not this test's subject.
        .env("RUST_LOG", "warn,sqlx::query=error")
        .env("LATCHKEY_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_BCRYPT_COST", "10")
        .env("LATCHKEY_JWT_SECRET", TEST_SECRET)
        .envs(env.iter().copied());
    for (name, _) in env.iter().filter(|(_, value)| value.is_empty()) {
        command.env_remove(name);
    }
    let output: Output = command.output().expect("could not run latchkey");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn sqlite_url() -> String {
    format!(
        "sqlite://{}/startup-{}.db",
        env!("CARGO_TARGET_TMPDIR"),
        uuid::Uuid::new_v4().simple()
    )
}

/// The error line of a failed start, after asserting there is exactly that one line.
fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr}");
    assert!(lines[0].starts_with("latchkey: error: "), "{stderr}");
    lines[0]
}

#[test]
fn an_sqlite_file_in_a_missing_directory_names_the_directory() {
    let dir = format!(
        "{}/no-such-dir-{}",
        env!("CARGO_TARGET_TMPDIR"),
        uuid::Uuid::new_v4().simple()
    );
    let url = format!("sqlite://{dir}/latchkey.db");

    let (code, stderr) = serve(&[("DATABASE_URL", &url)]);

    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains(&format!("{dir}/latchkey.db")), "{line}");
    assert!(
        line.contains(&format!("the directory {dir} does not exist")),
        "{line}"
    );
}

#[test]
fn a_refused_postgresql_connection_names_the_server_and_not_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://latchkey:hunter2secret@127.0.0.1:{port}/latchkey");

    let (code, stderr) = serve(&[("DATABASE_URL", &url), ("LATCHKEY_JWT_SECRET", TEST_SECRET)]);

    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(
        line.contains(&format!(
            "PostgreSQL at 127.0.0.1:{port}: connection refused"
        )),
        "{line}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

#[test]
fn a_short_jwt_secret_is_one_line_naming_the_variable() {
    let (code, stderr) = serve(&[
        ("DATABASE_URL", &sqlite_url()),
        ("LATCHKEY_JWT_SECRET", "too short"),
    ]);

    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("LATCHKEY_JWT_SECRET"), "{line}");
    assert!(line.contains("at least 32 bytes"), "{line}");
}

#[test]
fn an_address_in_use_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();

    // The listener is bound last, after the mail setup has warned that no SMTP server is set:
    // only errors are logged here.
    let (code, stderr) = serve(&[
        ("DATABASE_URL", &sqlite_url()),
        ("LATCHKEY_ADDR", &addr),
        ("RUST_LOG", "error"),
    ]);

    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(
        line.contains(&format!("could not listen on {addr}")),
        "{line}"
    );
    assert!(line.ends_with("address already in use"), "{line}");
    assert!(!line.contains("os error"), "{line}");
}

/// A server that accepts the connection and never answers: the line says it timed out, and when.
#[test]
fn a_postgresql_server_that_never_answers_is_reported_as_timed_out() {
    // Listening but never accepting: the kernel completes the handshake, nothing ever replies.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://latchkey:hunter2secret@127.0.0.1:{port}/latchkey");

    let (code, stderr) = serve(&[("DATABASE_URL", &url)]);

    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(
        line.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}: timed out after 3 s"
        )),
        "{line}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

#[test]
fn a_cors_origin_without_a_scheme_is_refused_by_name() {
    let (code, stderr) = serve(&[
        ("DATABASE_URL", &sqlite_url()),
        (
            "LATCHKEY_CORS_ORIGINS",
            "https://ok.example.com,app.example.com",
        ),
    ]);

    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("LATCHKEY_CORS_ORIGINS"), "{line}");
    assert!(line.contains("\"app.example.com\" has no scheme"), "{line}");
}

#[test]
fn a_cors_origin_with_a_path_is_refused_by_name() {
    let (code, stderr) = serve(&[
        ("DATABASE_URL", &sqlite_url()),
        ("LATCHKEY_CORS_ORIGINS", "https://app.example.com/app"),
    ]);

    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(
        line.contains("\"https://app.example.com/app\" has a path"),
        "{line}"
    );
}

/// Clap's own message named only `--access-ttl`, which appears nowhere in a container's
/// environment, and ran over several lines.
#[test]
fn a_bad_environment_value_names_the_variable_and_its_unit() {
    let (code, stderr) = serve(&[
        ("DATABASE_URL", &sqlite_url()),
        ("LATCHKEY_ACCESS_TTL", "abc"),
    ]);

    assert_eq!(code, Some(2), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("\"abc\" for LATCHKEY_ACCESS_TTL"), "{line}");
    assert!(line.contains("in seconds"), "{line}");

    let (code, stderr) = serve(&[
        ("DATABASE_URL", &sqlite_url()),
        ("LATCHKEY_RATE_LOGIN_PER_IP", "banana"),
    ]);

    assert_eq!(code, Some(2), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("LATCHKEY_RATE_LOGIN_PER_IP"), "{line}");
    assert!(line.contains("20/min"), "{line}");
}

/// Not a terminal, no colour codes: they used to wrap every level and field name in a log file.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();

    // No secret on SQLite draws a warning before the start fails on the taken address.
    let (code, stderr) = serve(&[
        ("DATABASE_URL", &sqlite_url()),
        ("LATCHKEY_ADDR", &addr),
        ("LATCHKEY_JWT_SECRET", ""),
    ]);

    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
}
