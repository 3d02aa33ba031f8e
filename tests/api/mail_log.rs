//! What the log of the real binary holds: with an SMTP server configured, never a mailed token,
//! even at the most verbose level; without one, the whole mail under a loud warning, which is how
//! a developer running `cargo run` follows the links.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::PASSWORD;
use crate::smtp_sink::{SmtpSink, token_in};

/// `latchkey serve` as a child process, with everything it writes collected.
struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
    address: String,
    client: reqwest::Client,
}

impl Server {
    async fn start(extra_env: &[(&str, String)]) -> Self {
        Self::start_on("127.0.0.1", extra_env).await
    }

    /// [`Server::start`] listening on `host` (any of its addresses include loopback).
    async fn start_on(host: &str, extra_env: &[(&str, String)]) -> Self {
        // A free port: bound, read, released. Another process could take it in between, which
        // on a test machine's loopback does not happen in practice.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let database = format!(
            "sqlite://{}/latchkey_log_{}.db",
            env!("CARGO_TARGET_TMPDIR").trim_end_matches('/'),
            Uuid::new_v4().simple()
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", database)
            .env("LATCHKEY_ADDR", format!("{host}:{port}"))
            .env("LATCHKEY_BCRYPT_COST", "4")
            .env("LATCHKEY_WORKERS", "1")
            .env("LATCHKEY_PUBLIC_URL", "http://app.test")
            // Everything every crate logs, ours included.
            .env("RUST_LOG", "trace")
            .envs(extra_env.iter().map(|(key, value)| (*key, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("could not run latchkey");
        let log = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), log.clone());
        collect(child.stderr.take().unwrap(), log.clone());
        let server = Self {
            child,
            log,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = self.client.get(self.url("/healthz")).send().await;
            if response.is_ok_and(|response| response.status() == StatusCode::OK) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Waits until the log contains `needle`, and returns the log.
    async fn log_containing(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "{needle:?} never logged: {log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the process (it is ours: killed by its handle) and returns all it wrote.
    async fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let the reader threads drain the pipes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl Read + Send + 'static, log: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

#[tokio::test]
async fn with_smtp_configured_no_token_reaches_the_log() {
    let sink = SmtpSink::start().await;
    let server = Server::start(&[("LATCHKEY_SMTP_URL", sink.url())]).await;

    let signup = server
        .post(
            "/v1/auth/signup",
            json!({ "email": "ada@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(signup.status(), StatusCode::CREATED);
    let verification = sink.next_mail().await.token();
    let forgot = server
        .post(
            "/v1/auth/password/forgot",
            json!({ "email": "ada@example.com" }),
        )
        .await;
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    let reset = sink.next_mail().await.token();
    let response = server
        .post(
            "/v1/auth/password/reset",
            json!({ "token": reset, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = server
        .post("/v1/auth/email/verify", json!({ "token": verification }))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    server.log_containing("email_verified").await;

    let log = server.stop().await;

    assert!(log.contains("verification_mailed"), "{log}");
    assert!(log.contains("password_reset_mailed"), "{log}");
    assert!(!log.contains("NOT SENT"), "{log}");
    for token in [&verification, &reset] {
        assert!(
            !log.contains(token.as_str()),
            "a token reached the log: {log}"
        );
        let hash = latchkey::auth::token_hash(token);
        assert!(!log.contains(&hash), "a token hash reached the log: {log}");
    }
}

#[tokio::test]
async fn without_smtp_the_mail_is_logged_under_a_warning_and_its_link_works() {
    let server = Server::start(&[]).await;
    let startup = server.log();
    assert!(
        startup.contains("LATCHKEY_SMTP_URL is not set: mails are NOT sent"),
        "{startup}"
    );

    let signup = server
        .post(
            "/v1/auth/signup",
            json!({ "email": "ada@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(signup.status(), StatusCode::CREATED);

    let log = server
        .log_containing("http://app.test/verify-email#token=")
        .await;
    let line = log
        .lines()
        .find(|line| line.contains("NOT SENT"))
        .expect("no NOT SENT warning");
    assert!(line.contains("WARN"), "{line}");
    let token = token_in(&log).unwrap();
    let response = server
        .post("/v1/auth/email/verify", json!({ "token": token }))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// Security review: a server reachable from other machines without SMTP wrote live reset links to
/// its log, so anyone who could read the log could take over any account.
#[tokio::test]
async fn on_a_public_address_without_smtp_no_link_reaches_the_log() {
    let server = Server::start_on("0.0.0.0", &[]).await;
    let startup = server.log();
    assert!(startup.contains("links are withheld"), "{startup}");

    let signup = server
        .post(
            "/v1/auth/signup",
            json!({ "email": "ada@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(signup.status(), StatusCode::CREATED);
    let forgot = server
        .post(
            "/v1/auth/password/forgot",
            json!({ "email": "ada@example.com" }),
        )
        .await;
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    server.log_containing("password_reset_mailed").await;

    let log = server.stop().await;
    assert!(log.contains("NOT SENT"), "{log}");
    assert!(
        !log.contains("#token="),
        "a live link reached the log: {log}"
    );
}

#[tokio::test]
async fn a_development_setting_logs_links_on_a_public_address() {
    let server = Server::start_on("0.0.0.0", &[("LATCHKEY_MAIL_LOG_LINKS", "true".into())]).await;
    let signup = server
        .post(
            "/v1/auth/signup",
            json!({ "email": "ada@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(signup.status(), StatusCode::CREATED);
    server
        .log_containing("http://app.test/verify-email#token=")
        .await;
}

#[tokio::test]
async fn a_low_bcrypt_cost_and_disabled_rate_limits_are_warned_about_at_start() {
    let server = Server::start(&[("LATCHKEY_RATE_LIMITS", "false".into())]).await;
    let log = server.stop().await;
    let warning = |needle: &str| {
        log.lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {log}"))
            .contains("WARN")
    };
    assert!(warning("LATCHKEY_BCRYPT_COST is 4"));
    assert!(warning("LATCHKEY_RATE_LIMITS is off"));
}
