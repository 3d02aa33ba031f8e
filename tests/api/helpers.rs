use std::sync::{Arc, Once};

use actix_web::dev::ServerHandle;
use latchkey::auth::{JwtAlgorithm, PrivateKey};
use latchkey::{Application, Config};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyPool;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";
/// A secret for tests that forge tokens and for PostgreSQL, where one must be configured.
pub const TEST_SECRET: &str = "Tq8Vx3Lm6Zr1Wn9Kb4Yc7Hd2Jf5Gs0Pa!";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: AnyPool,
    pub config: Config,
    handle: ServerHandle,
    /// Shared by every instance on the database; the last one to go drops it.
    database: Arc<TestDatabase>,
}

/// A PostgreSQL database made for one test, dropped when the test is done with it: a run used to
/// leave over a hundred behind on the server. SQLite files stay under the target directory.
struct TestDatabase {
    /// The server URL and the database name, on PostgreSQL.
    postgres: Option<(String, String)>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs on the test's runtime, which cannot block on a future: the statement runs on
        // a thread of its own. FORCE ends the connections the stopped server may still hold.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("could not build a runtime to drop the test database");
            runtime.block_on(async {
                let admin = AnyPool::connect(&server).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop a test database: {err}");
        }
    }
}

/// The application on a fresh database with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The application on a fresh database, with `customise` applied to the test configuration.
pub async fn spawn_app_with(customise: impl FnOnce(&mut Config)) -> TestApp {
    let (database_url, database) = fresh_database().await;
    let mut config = test_config(database_url);
    customise(&mut config);
    start(config, Arc::new(database)).await
}

/// Why the application refuses to start with `customise` applied to the test configuration, on
/// a fresh database: the whole error chain, as `main` prints it.
pub async fn start_error_with(customise: impl FnOnce(&mut Config)) -> String {
    let (database_url, _database) = fresh_database().await;
    let mut config = test_config(database_url);
    customise(&mut config);
    match Application::build(config).await {
        Ok(_) => panic!("the application started"),
        Err(err) => format!("{err:#}"),
    }
}

/// The application on a fresh database that `prepare` has first given an older schema and rows,
/// as an upgrade finds it: the application's own migrations run when it starts.
pub async fn spawn_app_upgrading(prepare: impl AsyncFnOnce(&AnyPool)) -> TestApp {
    let (database_url, database) = fresh_database().await;
    install_drivers();
    // SQLite: create the file (the application keeps the permissions of one that exists).
    let options = if is_postgres() { "" } else { "?mode=rwc" };
    let pool = AnyPool::connect(&format!("{database_url}{options}"))
        .await
        .expect("the test could not open the database");
    prepare(&pool).await;
    pool.close().await;
    start(test_config(database_url), Arc::new(database)).await
}

/// Two instances built at the same moment on one fresh database, as a deployment's replicas
/// start together.
pub async fn spawn_two_apps_at_once() -> (TestApp, TestApp) {
    let (database_url, database) = fresh_database().await;
    let config = test_config(database_url);
    let database = Arc::new(database);
    tokio::join!(
        start(config.clone(), database.clone()),
        start(config, database)
    )
}

/// The defaults, except what a test run needs: any free port, cheap hashing, no rate limits
/// (tests log in many times from one address; tests/api/abuse.rs turns them on), few threads.
fn test_config(database_url: String) -> Config {
    let mut config = Config::defaults();
    config.server.addr = "127.0.0.1:0".into();
    config.database.database_url = database_url;
    // SQLite runs without a configured secret, exercising the generated one; PostgreSQL refuses
    // to start without one.
    config.tokens.jwt_secret = is_postgres().then(|| TEST_SECRET.to_owned());
    // `TEST_JWT_ALG=EdDSA` (or ES256) runs the suite with asymmetric access tokens: generated
    // keys on SQLite, a configured key on PostgreSQL, where one must be.
    config.tokens.jwt_alg = test_jwt_alg();
    if is_postgres() && config.tokens.jwt_alg.is_asymmetric() {
        let key = PrivateKey::generate(config.tokens.jwt_alg).expect("could not make a key");
        config.tokens.jwt_private_key = Some(key.to_pkcs8_pem().to_string());
    }
    config.passwords.bcrypt_cost = 4;
    config.abuse.rate_limits = false;
    // Mail goes to the log unless a test starts an SMTP sink (tests/api/smtp_sink.rs).
    config.mail.public_url = "http://app.test".into();
    config.passwords.hash_threads = Some(2);
    config.server.workers = Some(1);
    config
}

pub const ADMIN_EMAIL: &str = "root@example.com";

/// The application with a bootstrap admin `ADMIN_EMAIL` (password `PASSWORD`), and that admin's
/// token response.
pub async fn spawn_app_with_admin() -> (TestApp, Value) {
    let app = spawn_app_with(|config| {
        config.operations.bootstrap_admin_email = Some(ADMIN_EMAIL.into());
        config.operations.bootstrap_admin_password = Some(PASSWORD.into());
    })
    .await;
    let response = app.login(ADMIN_EMAIL, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = response.json().await.unwrap();
    (app, tokens)
}

/// The access-token algorithm of this run: `TEST_JWT_ALG`, HS256 by default.
pub fn test_jwt_alg() -> JwtAlgorithm {
    match std::env::var("TEST_JWT_ALG") {
        Ok(alg) if !alg.is_empty() => alg.parse().expect("TEST_JWT_ALG is not an algorithm"),
        _ => JwtAlgorithm::HS256,
    }
}

pub fn is_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty())
}

async fn start(config: Config, database: Arc<TestDatabase>) -> TestApp {
    let app = Application::build(config.clone())
        .await
        .expect("the application failed to start");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    install_drivers();
    let db = AnyPool::connect(&config.database.database_url)
        .await
        .expect("the test could not open the database");
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        config,
        handle,
        database,
    }
}

pub fn install_drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

/// A new, empty database: a SQLite file under the target directory, or a new PostgreSQL
/// database on the server `TEST_DATABASE_URL` points at.
async fn fresh_database() -> (String, TestDatabase) {
    let name = format!("latchkey_test_{}", Uuid::new_v4().simple());
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            install_drivers();
            let admin = AnyPool::connect(&server)
                .await
                .expect("TEST_DATABASE_URL is unreachable");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await
                .expect("could not create the test database");
            admin.close().await;
            let mut url = url::Url::parse(&server).expect("TEST_DATABASE_URL is not a URL");
            url.set_path(&name);
            (
                url.to_string(),
                TestDatabase {
                    postgres: Some((server, name)),
                },
            )
        }
        _ => (
            format!(
                "sqlite://{}/{name}.db",
                env!("CARGO_TARGET_TMPDIR").trim_end_matches('/')
            ),
            TestDatabase { postgres: None },
        ),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A second instance on the same database and configuration, as behind a load balancer.
    pub async fn another_instance(&self) -> TestApp {
        start(self.config.clone(), self.database.clone()).await
    }

    /// Stops this instance as SIGTERM would: in-flight requests and mail deliveries finish.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// Stops this instance and starts a new one on the same database and configuration.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// Stops this instance and starts a new one on the same database, with `change` applied to
    /// the configuration.
    pub async fn restart_with(self, change: impl FnOnce(&mut Config)) -> TestApp {
        self.handle.stop(true).await;
        self.db.close().await;
        let mut config = self.config;
        change(&mut config);
        start(config, self.database).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    pub async fn signup(&self, email: &str) -> Response {
        self.post_json(
            "/v1/auth/signup",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await
    }

    /// Signs a user up and returns the token response.
    pub async fn signed_up(&self, email: &str) -> Value {
        let response = self.signup(email).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("signup body is not JSON")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/v1/auth/login",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/v1/auth/refresh",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.client
            .get(self.url("/v1/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request failed")
    }

    pub async fn logout(&self, access_token: &str) -> Response {
        self.logout_scope(access_token, "local").await
    }

    pub async fn logout_scope(&self, access_token: &str, scope: &str) -> Response {
        self.client
            .post(self.url(&format!("/v1/auth/logout?scope={scope}")))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request failed")
    }

    /// Sends `method path` with a bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        access_token: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(access_token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request failed")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db)
            .await
            .expect("count query failed")
    }
}

/// Asserts a problem+json response with `status` and `code`, and returns its body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .expect("no content type")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body is not JSON");
    assert_eq!(body["code"], code, "unexpected problem: {body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// Fails when `text` holds anything that looks like a bcrypt hash or the test password.
pub fn assert_no_secrets(text: &str) {
    assert!(!text.contains("$2b$"), "a password hash leaked: {text}");
    assert!(!text.contains("$2y$"), "a password hash leaked: {text}");
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
    assert!(
        !text.contains("password_hash"),
        "a hash field leaked: {text}"
    );
}
