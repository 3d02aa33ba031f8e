//! The real binary as an operator runs it: JSON logs with audit events that never hold a secret,
//! and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::PASSWORD;
use crate::smtp_sink::SmtpSink;

struct Server {
    child: Child,
    base: String,
    log: std::sync::mpsc::Receiver<String>,
}

/// A server a failing test leaves behind is killed, not left running.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `latchkey serve` on a fresh SQLite file and a free port, logging JSON to stderr. The
/// child is waited for by the test after its SIGTERM, or by `Drop`.
fn start() -> Server {
    start_with(&[])
}

/// [`start`] with some more environment variables.
fn start_with(env: &[(&str, &str)]) -> Server {
    start_on(&fresh_database(), env)
}

fn fresh_database() -> String {
    format!(
        "sqlite://{}/process-{}.db",
        env!("CARGO_TARGET_TMPDIR"),
        uuid::Uuid::new_v4().simple()
    )
}

/// [`start_with`] on the database `db`.
#[allow(clippy::zombie_processes)]
fn start_on(db: &str, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", db)
        .env("LATCHKEY_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_LOG_FORMAT", "json")
        .env("LATCHKEY_BCRYPT_COST", "4")
        .env("LATCHKEY_REFRESH_REUSE_INTERVAL", "0")
        .env("LATCHKEY_WORKERS", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start latchkey");
    let stderr = child.stderr.take().unwrap();
    let (sender, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    // The port is in the "listening" line.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("latchkey did not start");
        let entry: Value = serde_json::from_str(&line).expect("a log line is not JSON");
        if let Some(port) = entry["port"].as_u64() {
            return Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
                log,
            };
        }
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn audit_events_are_logged_without_secrets_and_sigterm_exits_cleanly() {
    let mut server = start();
    let (signup, login) = audited_traffic(&server.base).await;

    sigterm(&server.child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "latchkey did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");

    let lines: Vec<String> = server.log.try_iter().collect();
    let entries: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("a log line is not JSON"))
        .collect();
    assert_audit_events(&entries, signup["user"]["id"].as_str().unwrap());
    assert_logout_request_line(&entries);
    let everything = lines.join("\n");
    for secret in [
        PASSWORD,
        "wrong password",
        login["access_token"].as_str().unwrap(),
        signup["access_token"].as_str().unwrap(),
        signup["refresh_token"].as_str().unwrap(),
        login["refresh_token"].as_str().unwrap(),
        "$2b$",
    ] {
        assert!(
            !everything.contains(secret),
            "a secret reached the log: {secret}"
        );
    }
}

/// A signup, a failed and a successful login, a refresh, the reuse of the refresh token it
/// rotated away, and a logout of the login's session with the request id `req-logout-1`. Returns
/// the token responses of the signup and of the login.
async fn audited_traffic(base: &str) -> (Value, Value) {
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();

    let signup: Value = post(
        "/v1/auth/signup",
        json!({ "email": "ada@example.com", "password": PASSWORD }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let wrong = post(
        "/v1/auth/login",
        json!({ "email": "ada@example.com", "password": "wrong password" }),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let login: Value = post(
        "/v1/auth/login",
        json!({ "email": "ada@example.com", "password": PASSWORD }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let first_refresh = signup["refresh_token"].as_str().unwrap();
    post(
        "/v1/auth/refresh",
        json!({ "refresh_token": first_refresh }),
    )
    .await
    .unwrap();
    let reused = post(
        "/v1/auth/refresh",
        json!({ "refresh_token": first_refresh }),
    )
    .await
    .unwrap();
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    let logout = client
        .post(format!("{base}/v1/auth/logout"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .header("x-request-id", "req-logout-1")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    (signup, login)
}

/// Every event [`audited_traffic`] causes is in the audit log, and the reuse names the user, a
/// session and the client's address.
fn assert_audit_events(entries: &[Value], user_id: &str) {
    let events: Vec<&str> = entries
        .iter()
        .filter(|e| e["target"] == "latchkey::audit")
        .filter_map(|e| e["event"].as_str())
        .collect();
    for expected in [
        "signup",
        "login_failed",
        "login_succeeded",
        "refresh_token_reused",
        "logout",
        "session_revoked",
    ] {
        assert!(
            events.contains(&expected),
            "no {expected} event in {events:?}"
        );
    }
    let reuse = entries
        .iter()
        .find(|e| e["event"] == "refresh_token_reused")
        .unwrap();
    assert_eq!(reuse["user_id"], user_id);
    assert!(reuse["session_id"].is_string() && reuse["ip"] == "127.0.0.1");
}

/// The logout's request line carries its request id, route, status and latency.
fn assert_logout_request_line(entries: &[Value]) {
    let request = entries
        .iter()
        .find(|e| e["target"] == "latchkey::http" && e["request_id"] == "req-logout-1")
        .expect("no request line for the logout");
    assert_eq!(request["route"], "/v1/auth/logout");
    assert_eq!(request["status"], 204);
    assert!(request["latency_ms"].is_number());
}

/// Resident memory of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("no VmRSS in /proc/PID/status")
}

/// `count` requests, each with its own made-up 200-character method and its own unknown path.
async fn made_up_requests(base: &str, from: usize, count: usize) {
    let client = reqwest::Client::new();
    futures_util::stream::iter(from..from + count)
        .map(|i| {
            let client = client.clone();
            let method =
                reqwest::Method::from_bytes(format!("M{i:06}{}", "X".repeat(193)).as_bytes())
                    .unwrap();
            let url = format!("{base}/no/such/{i}/{}", "p".repeat(200));
            async move {
                let response = client.request(method, url).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::NOT_FOUND);
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// Security review: every made-up method used to become a metrics label, so one anonymous client
/// grew the process and the `/metrics` page without bound (and with metrics turned off too).
#[tokio::test]
async fn made_up_methods_and_paths_leave_memory_and_the_metrics_page_flat() {
    let server = start_with(&[("LATCHKEY_METRICS_ON_API", "true")]);
    let client = reqwest::Client::new();
    let metrics_size = || async {
        let response = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap().len()
    };
    // Warm up: the allocator's pools and the label sets every request needs.
    made_up_requests(&server.base, 0, 500).await;
    metrics_size().await;
    let (rss_before, page_before) = (rss_kib(server.child.id()), metrics_size().await);

    made_up_requests(&server.base, 500, 4000).await;
    let (rss_after, page_after) = (rss_kib(server.child.id()), metrics_size().await);

    assert!(
        rss_after < rss_before + 4 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert!(
        page_after < page_before + 1024,
        "the metrics page grew from {page_before} to {page_after} bytes"
    );
    let page = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"method="other",route="unmatched",status="404""#),
        "{page}"
    );
    assert!(!page.contains("XXXX") && !page.contains("/no/such"));
}

/// A mail accepted with 202 is in the outbox before the answer: a server killed right after it
/// (SIGKILL, nothing flushed) delivers it once it runs again.
#[tokio::test]
async fn a_mail_accepted_before_a_sigkill_is_delivered_after_the_restart() {
    let db = fresh_database();
    let unreachable = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("smtp://{}", listener.local_addr().unwrap())
    };
    let mut first = start_on(
        &db,
        &[
            ("LATCHKEY_SMTP_URL", &unreachable),
            ("LATCHKEY_MAIL_RETRY_DELAY", "1"),
        ],
    );
    let client = reqwest::Client::new();
    let signup = client
        .post(format!("{}/v1/auth/signup", first.base))
        .json(&json!({ "email": "ada@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
    let forgot = client
        .post(format!("{}/v1/auth/password/forgot", first.base))
        .json(&json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let sink = SmtpSink::start().await;
    let _second = start_on(&db, &[("LATCHKEY_SMTP_URL", &sink.url())]);
    let mut subjects: Vec<String> = Vec::new();
    for _ in 0..2 {
        subjects.push(sink.next_mail().await.header("Subject").unwrap_or_default());
    }
    subjects.sort();
    assert_eq!(
        subjects,
        ["Confirm your email address", "Reset your password"]
    );
}
