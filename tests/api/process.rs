//! The real binary as an operator runs it: JSON logs with audit events that never hold a secret,
//! and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::PASSWORD;

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
#[allow(clippy::zombie_processes)]
fn start() -> Server {
    let db = format!(
        "sqlite://{}/process-{}.db",
        env!("CARGO_TARGET_TMPDIR"),
        uuid::Uuid::new_v4().simple()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", db)
        .env("LATCHKEY_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_LOG_FORMAT", "json")
        .env("LATCHKEY_BCRYPT_COST", "4")
        .env("LATCHKEY_REFRESH_REUSE_INTERVAL", "0")
        .env("LATCHKEY_WORKERS", "1")
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
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", server.base))
            .json(&body)
            .send()
    };

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
    let access = login["access_token"].as_str().unwrap();
    let logout = client
        .post(format!("{}/v1/auth/logout", server.base))
        .bearer_auth(access)
        .header("x-request-id", "req-logout-1")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

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
    let user_id = signup["user"]["id"].as_str().unwrap();
    let reuse = entries
        .iter()
        .find(|e| e["event"] == "refresh_token_reused")
        .unwrap();
    assert_eq!(reuse["user_id"], user_id);
    assert!(reuse["session_id"].is_string() && reuse["ip"] == "127.0.0.1");
    let request = entries
        .iter()
        .find(|e| e["target"] == "latchkey::http" && e["request_id"] == "req-logout-1")
        .expect("no request line for the logout");
    assert_eq!(request["route"], "/v1/auth/logout");
    assert_eq!(request["status"], 204);
    assert!(request["latency_ms"].is_number());

    let everything = lines.join("\n");
    for secret in [
        PASSWORD,
        "wrong password",
        access,
        signup["access_token"].as_str().unwrap(),
        first_refresh,
        login["refresh_token"].as_str().unwrap(),
        "$2b$",
    ] {
        assert!(
            !everything.contains(secret),
            "a secret reached the log: {secret}"
        );
    }
}
