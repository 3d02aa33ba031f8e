//! Which keys sign access tokens, and where they come from.
//!
//! - The HS256 secret (`LATCHKEY_JWT_SECRET` or `LATCHKEY_JWT_KEYS`; on SQLite generated once and
//!   kept in the database) always exists: it keys refresh and device tokens, and with
//!   `LATCHKEY_JWT_ALG=HS256` it also signs access tokens.
//! - With EdDSA or ES256, access tokens are signed with a key pair: configured as PEM files by
//!   state (current, next, previous), or on SQLite without configuration generated and kept in
//!   the database as a [`KeyRing`], which `latchkey keys rotate` steps forward and every
//!   instance reloads every `LATCHKEY_JWT_KEY_RELOAD_INTERVAL`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::audit::{self, AuditEvent};
use crate::auth::{
    AccessTokens, JwtAlgorithm, JwtSecret, KeyRing, KeySet, KeyState, PrivateKey, RotateRefused,
    SigningKeys, any_key_from_pem, random_token,
};
use crate::config::{Config, TokenSettings};
use crate::store::{self, Backend, Store};

/// Settings key of the signing secret generated for a zero-configuration SQLite deployment.
const GENERATED_SECRET_KEY: &str = "generated_jwt_secret";

/// How long a next key must have been published before it may sign: the JWKS's cache lifetime
/// plus the longest reload interval, so every instance and every cached key set knows it.
pub const MIN_PUBLISHED: Duration =
    Duration::from_secs(crate::auth::JWKS_MAX_AGE_SECS + MAX_RELOAD_INTERVAL_SECS);

const MAX_RELOAD_INTERVAL_SECS: u64 = 300;

/// Settings key of the generated key ring of `alg`: one per algorithm, so switching algorithms
/// back and forth finds its keys again.
fn ring_setting(alg: JwtAlgorithm) -> String {
    format!("generated_jwt_keys_{}", alg.as_str().to_ascii_lowercase())
}

/// The access-token keys of this instance.
pub struct TokenKeys {
    /// The HS256 secret(s): refresh and device tokens, and HS256 access tokens.
    pub secrets: KeySet,
    pub tokens: Arc<AccessTokens>,
    /// Whether the keys are a generated ring to reload from the database.
    pub generated: bool,
}

/// Reads, parses or generates every key, once, at start.
pub async fn load(config: &Config, store: &dyn Store) -> anyhow::Result<TokenKeys> {
    let settings = &config.tokens;
    let secrets = symmetric_keys(settings, store).await?;
    let (issuer, ttl) = (&settings.issuer, settings.access_ttl());
    let (tokens, generated) = match (configured_keys(settings)?, settings.jwt_alg) {
        (_, JwtAlgorithm::HS256) => (AccessTokens::new(&secrets, issuer, ttl), false),
        (Some(keys), _) => (AccessTokens::asymmetric(&keys, issuer, ttl), false),
        (None, alg) => {
            let keys = generated_keys(settings, store, alg).await?;
            (AccessTokens::asymmetric(&keys, issuer, ttl), true)
        }
    };
    let tokens = tokens.with_audience(settings.audience.as_deref());
    Ok(TokenKeys {
        secrets,
        tokens: Arc::new(tokens),
        generated,
    })
}

/// The configured keys or secret; or, on SQLite only, a secret generated once and kept in the
/// database so tokens survive a restart. PostgreSQL deployments run several instances that must
/// agree on the keys, so there they have to be configured.
async fn symmetric_keys(settings: &TokenSettings, store: &dyn Store) -> anyhow::Result<KeySet> {
    if !settings.jwt_keys.is_empty() {
        return KeySet::parse(&settings.jwt_keys)
            .map_err(|why| anyhow::anyhow!("LATCHKEY_JWT_KEYS is unusable: {why}"));
    }
    if let Some(secret) = &settings.jwt_secret {
        return JwtSecret::new(secret)
            .map(KeySet::single)
            .map_err(|why| anyhow::anyhow!("LATCHKEY_JWT_SECRET is unusable: {why}"));
    }
    match store.backend() {
        Backend::Postgres => anyhow::bail!(
            "LATCHKEY_JWT_SECRET (at least 32 bytes) or LATCHKEY_JWT_KEYS must be set when the \
             database is PostgreSQL: every instance has to sign with the same key"
        ),
        Backend::Sqlite => {
            let secret = store
                .setting_or_insert(GENERATED_SECRET_KEY, &random_token())
                .await?;
            tracing::warn!(
                "LATCHKEY_JWT_SECRET is not set: using a random secret generated once and stored \
                 in the SQLite database. Set LATCHKEY_JWT_SECRET for any real deployment."
            );
            JwtSecret::new(&secret)
                .map(KeySet::single)
                .map_err(anyhow::Error::msg)
        }
    }
}

/// The key files (or the PEM in the environment), parsed; `None` when no current key is
/// configured. Key files with HS256 are a mistake worth stopping for.
fn configured_keys(settings: &TokenSettings) -> anyhow::Result<Option<SigningKeys>> {
    let alg = settings.jwt_alg;
    let any_file = settings.jwt_private_key.is_some()
        || settings.jwt_private_key_file.is_some()
        || settings.jwt_next_key_file.is_some()
        || !settings.jwt_previous_key_files.is_empty();
    if !alg.is_asymmetric() {
        anyhow::ensure!(
            !any_file,
            "LATCHKEY_JWT_PRIVATE_KEY(_FILE), LATCHKEY_JWT_NEXT_KEY_FILE and \
             LATCHKEY_JWT_PREVIOUS_KEY_FILES are for EdDSA and ES256, but LATCHKEY_JWT_ALG is \
             HS256: set LATCHKEY_JWT_ALG too"
        );
        return Ok(None);
    }
    let current = match (&settings.jwt_private_key, &settings.jwt_private_key_file) {
        (Some(pem), _) => PrivateKey::from_pem(alg, &pem.replace("\\n", "\n"))
            .map_err(|why| anyhow::anyhow!("LATCHKEY_JWT_PRIVATE_KEY is unusable: {why}"))?,
        (None, Some(path)) => {
            let pem = read_key_file(path, "LATCHKEY_JWT_PRIVATE_KEY_FILE")?;
            PrivateKey::from_pem(alg, &pem).map_err(|why| {
                anyhow::anyhow!("LATCHKEY_JWT_PRIVATE_KEY_FILE {}: {why}", path.display())
            })?
        }
        (None, None) => {
            anyhow::ensure!(
                !any_file,
                "LATCHKEY_JWT_NEXT_KEY_FILE and LATCHKEY_JWT_PREVIOUS_KEY_FILES need the current \
                 key in LATCHKEY_JWT_PRIVATE_KEY_FILE (or LATCHKEY_JWT_PRIVATE_KEY)"
            );
            return Ok(None);
        }
    };
    let public = |path: &Path, name: &str| {
        let pem = read_key_file(path, name)?;
        any_key_from_pem(alg, &pem)
            .map_err(|why| anyhow::anyhow!("{name} {}: {why}", path.display()))
    };
    let next = settings
        .jwt_next_key_file
        .iter()
        .map(|path| public(path, "LATCHKEY_JWT_NEXT_KEY_FILE"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let previous = settings
        .jwt_previous_key_files
        .iter()
        .map(|path| public(path, "LATCHKEY_JWT_PREVIOUS_KEY_FILES"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keys = SigningKeys::new(alg, current, next, previous)
        .map_err(|why| anyhow::anyhow!("the configured {alg} keys are unusable: {why}"))?;
    Ok(Some(keys))
}

/// A key file's text. The error names the file and the variable, never the content.
fn read_key_file(path: &Path, name: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|err| {
        anyhow::anyhow!(
            "{name}: could not read {}: {}",
            path.display(),
            crate::io_error::describe(&err)
        )
    })
}

/// SQLite only: the stored key ring of `alg`, generated on the first start.
async fn generated_keys(
    settings: &TokenSettings,
    store: &dyn Store,
    alg: JwtAlgorithm,
) -> anyhow::Result<SigningKeys> {
    if store.backend() == Backend::Postgres {
        anyhow::bail!(
            "LATCHKEY_JWT_PRIVATE_KEY_FILE (or LATCHKEY_JWT_PRIVATE_KEY) must be set when \
             LATCHKEY_JWT_ALG is {alg} and the database is PostgreSQL: every instance has to \
             sign with keys the others know"
        );
    }
    let now = store::now().timestamp();
    let fresh = KeyRing::generate(alg, now).map_err(anyhow::Error::msg)?;
    let stored = store
        .setting_or_insert(&ring_setting(alg), &fresh.to_json())
        .await?;
    tracing::info!(
        "LATCHKEY_JWT_PRIVATE_KEY_FILE is not set: signing with {alg} keys generated and kept in \
         the SQLite database (rotate them with `latchkey keys rotate`)"
    );
    let ring = KeyRing::parse(alg, &stored)
        .map_err(|why| anyhow::anyhow!("the generated {alg} keys are unusable: {why}"))?;
    ring.signing_keys(now, verify_previous_for(settings))
        .map_err(anyhow::Error::msg)
}

/// How long after it stopped signing a previous key may still have signed a valid token: an
/// instance that has not reloaded yet signs with it for up to one reload interval more.
fn verify_previous_for(settings: &TokenSettings) -> Duration {
    AccessTokens::longest_validity_for(settings.access_ttl()) + settings.jwt_key_reload_interval()
}

impl TokenKeys {
    /// For generated keys, the task that reloads them (see [`spawn_reloader`]).
    pub fn spawn_reloader(
        &self,
        store: Arc<dyn Store>,
        settings: &TokenSettings,
    ) -> Option<JoinHandle<()>> {
        self.generated
            .then(|| spawn_reloader(store, self.tokens.clone(), settings))
    }
}

/// Reloads the generated keys every `LATCHKEY_JWT_KEY_RELOAD_INTERVAL`: a rotation made by the
/// CLI or another instance is picked up, and a previous key goes once its tokens have expired.
fn spawn_reloader(
    store: Arc<dyn Store>,
    tokens: Arc<AccessTokens>,
    settings: &TokenSettings,
) -> JoinHandle<()> {
    let every = settings.jwt_key_reload_interval();
    let verify_for = verify_previous_for(settings);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(err) = reload(store.as_ref(), &tokens, verify_for).await {
                tracing::warn!(error = %format!("{err:#}"), "could not reload the signing keys");
            }
        }
    })
}

async fn reload(
    store: &dyn Store,
    tokens: &AccessTokens,
    verify_for: Duration,
) -> anyhow::Result<()> {
    let alg = tokens.algorithm();
    let stored = store
        .setting(&ring_setting(alg))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the generated {alg} keys are gone from the database"))?;
    let ring = KeyRing::parse(alg, &stored).map_err(anyhow::Error::msg)?;
    let keys = ring
        .signing_keys(store::now().timestamp(), verify_for)
        .map_err(anyhow::Error::msg)?;
    let before = tokens.current_kid();
    tokens.replace_keys(&keys).map_err(anyhow::Error::msg)?;
    if before != keys.current_kid() {
        tracing::info!(kid = keys.current_kid(), "signing with the rotated key");
    }
    Ok(())
}

/// `latchkey keys rotate`: one step of the generated keys of `alg`. Returns the new ring.
pub async fn rotate_generated(
    store: &dyn Store,
    alg: JwtAlgorithm,
    force: bool,
) -> anyhow::Result<KeyRing> {
    anyhow::ensure!(
        alg.is_asymmetric(),
        "HS256 has no generated key pair to rotate: set LATCHKEY_JWT_ALG (or --jwt-alg) to \
         EdDSA or ES256, or rotate HS256 secrets with LATCHKEY_JWT_KEYS"
    );
    let Some(stored) = store.setting(&ring_setting(alg)).await? else {
        anyhow::bail!(
            "this database holds no generated {alg} keys: they are made when the server first \
             starts on SQLite with LATCHKEY_JWT_ALG={alg} and no key file; configured keys are \
             rotated by changing the key files"
        );
    };
    let ring = KeyRing::parse(alg, &stored).map_err(anyhow::Error::msg)?;
    let rotated = match ring.rotate(store::now().timestamp(), MIN_PUBLISHED, force) {
        Ok(rotated) => rotated,
        Err(RotateRefused::TooSoon { wait_secs }) => anyhow::bail!(
            "the next key has not been published long enough for every cached key set to hold \
             it: wait {wait_secs} s more, or pass --force (verifiers with an older cached JWKS \
             then refetch it or refuse new tokens until they do)"
        ),
        Err(RotateRefused::Failed(why)) => anyhow::bail!(why),
    };
    let replaced = store
        .replace_setting(&ring_setting(alg), &stored, &rotated.to_json())
        .await?;
    anyhow::ensure!(
        replaced,
        "the keys changed while rotating (another rotation?): nothing was done, run it again"
    );
    let (signing, retired) = (
        rotated.kids(KeyState::Current).join(","),
        rotated.kids(KeyState::Previous).pop().unwrap_or_default(),
    );
    audit::record(AuditEvent::SigningKeyRotated {
        alg: alg.as_str(),
        signing: &signing,
        retired: &retired,
    });
    Ok(rotated)
}
