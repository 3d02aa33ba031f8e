//! The second factor service: TOTP enrollment and its recovery codes, the login challenge between
//! the password and the code, and the proofs a step-up spends. Sessions are ended by the handlers
//! through [`crate::sessions::Sessions`]; the limits on guessing are theirs too.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::auth::{MfaKeys, TotpCode, TotpSecret, random_token, token_hash};
use crate::store::{MfaChallenge, MfaProof, NewMfaChallenge, Store, StoreError, TotpRecord};

/// Wrong codes after which an `mfa_token` is dead.
pub const MAX_CHALLENGE_FAILURES: u32 = 5;
/// Secrets read per statement by [`Mfa::reseal_all`].
const RESEAL_PAGE: u32 = 100;

/// What [`Mfa::reseal_all`] did.
#[derive(Debug, Default)]
pub struct Resealed {
    /// Secrets sealed again under the current key.
    pub resealed: u64,
    /// Secrets no listed key opens: their accounts need an admin's reset.
    pub unreadable: u64,
}

/// Why a second-factor request was refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("the second factor is already enabled")]
    AlreadyEnabled,
    #[error("the second factor is not enabled (or no enrollment is pending)")]
    NotEnabled,
    #[error("the code is wrong, expired or already used")]
    WrongCode,
    #[error("the mfa_token is invalid, expired or used up")]
    InvalidChallenge,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What proves the second factor: a TOTP code or a recovery code (parsed at the edge).
#[derive(Clone)]
pub enum SecondFactor {
    Totp(TotpCode),
    RecoveryCode(String),
}

/// What an authenticator app needs, shown once.
pub struct Enrollment {
    pub secret: String,
    pub otpauth_uri: String,
    /// An SVG QR code of the URI, as a `data:` URI.
    pub qr_code: String,
}

/// Where an account's second factor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpState {
    Off,
    /// Enrolled, not yet confirmed with a code: it does nothing yet.
    Pending,
    Enabled,
}

impl TotpState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Pending => "pending",
            Self::Enabled => "enabled",
        }
    }
}

/// A login's challenge: the token the client presents with the code, and its lifetime.
pub struct Challenge {
    pub mfa_token: String,
    pub expires_in: u64,
}

pub struct Mfa {
    store: Arc<dyn Store>,
    keys: MfaKeys,
    issuer: String,
    challenge_ttl: TimeDelta,
    /// How long after the factor was proved a token may make sensitive changes.
    pub step_up_max_age: TimeDelta,
}

impl Mfa {
    pub fn new(
        store: Arc<dyn Store>,
        keys: MfaKeys,
        issuer: &str,
        challenge_ttl: TimeDelta,
        step_up_max_age: TimeDelta,
    ) -> Self {
        Self {
            store,
            keys,
            issuer: issuer.to_owned(),
            challenge_ttl,
            step_up_max_age,
        }
    }

    /// Whether the account has a confirmed second factor.
    pub async fn enabled(&self, user_id: Uuid) -> Result<bool, StoreError> {
        Ok(self
            .store
            .totp(user_id)
            .await?
            .is_some_and(|record| record.confirmed))
    }

    /// Where the account's factor stands, and how many recovery codes are unused.
    pub async fn state(&self, user_id: Uuid) -> Result<(TotpState, u32), StoreError> {
        let state = match self.store.totp(user_id).await? {
            None => TotpState::Off,
            Some(record) if record.confirmed => TotpState::Enabled,
            Some(_) => TotpState::Pending,
        };
        let left = self.store.recovery_codes_left(user_id).await?;
        Ok((state, left))
    }

    /// Starts (or restarts) an enrollment; it does nothing until confirmed.
    pub async fn enroll(&self, user_id: Uuid, account: &str) -> Result<Enrollment, MfaError> {
        let secret = TotpSecret::generate();
        let sealed = self.keys.seal(user_id, &secret)?;
        if !self.store.begin_totp(user_id, &sealed, Utc::now()).await? {
            return Err(MfaError::AlreadyEnabled);
        }
        let otpauth_uri = secret.otpauth_uri(&self.issuer, account);
        let svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
            .map_err(|err| anyhow::anyhow!("could not draw the QR code: {err}"))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        Ok(Enrollment {
            secret: secret.base32(),
            otpauth_uri,
            qr_code: format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)),
        })
    }

    /// Activates a pending enrollment with a right code; returns the recovery codes, once.
    pub async fn confirm(&self, user_id: Uuid, code: &TotpCode) -> Result<Vec<String>, MfaError> {
        let record = self
            .store
            .totp(user_id)
            .await?
            .filter(|record| !record.confirmed)
            .ok_or(MfaError::NotEnabled)?;
        let secret = self.open(user_id, &record)?;
        let step = secret
            .accepts(code, Utc::now().timestamp(), record.last_step)
            .ok_or(MfaError::WrongCode)?;
        let (codes, hashes): (Vec<String>, Vec<String>) =
            self.keys.recovery_codes(&secret).into_iter().unzip();
        if !self
            .store
            .confirm_totp(user_id, step, &hashes, Utc::now())
            .await?
        {
            return Err(MfaError::WrongCode);
        }
        Ok(codes)
    }

    /// New recovery codes; the old ones die.
    pub async fn regenerate(&self, user_id: Uuid) -> Result<Vec<String>, MfaError> {
        let record = self.confirmed(user_id).await?;
        let secret = self.open(user_id, &record)?;
        let (codes, hashes): (Vec<String>, Vec<String>) =
            self.keys.recovery_codes(&secret).into_iter().unzip();
        if !self.store.replace_recovery_codes(user_id, &hashes).await? {
            return Err(MfaError::NotEnabled);
        }
        Ok(codes)
    }

    /// Removes the second factor after spending a proof of it (`None`: an admin's reset).
    pub async fn disable(
        &self,
        user_id: Uuid,
        factor: Option<&SecondFactor>,
    ) -> Result<(), MfaError> {
        if let Some(factor) = factor {
            self.spend(user_id, factor).await?;
        }
        if !self.store.remove_totp(user_id).await? {
            return Err(MfaError::NotEnabled);
        }
        Ok(())
    }

    /// The challenge a right password for an account with a second factor gets instead of
    /// tokens; `None` for an account without one.
    pub async fn challenge(
        &self,
        user_id: Uuid,
        ip: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Challenge>, MfaError> {
        if !self.enabled(user_id).await? {
            return Ok(None);
        }
        let mfa_token = random_token();
        let expires_at = now
            .checked_add_signed(self.challenge_ttl)
            .ok_or_else(|| anyhow::anyhow!("the mfa_token lifetime overflows"))?;
        self.store
            .create_mfa_challenge(&NewMfaChallenge {
                id: Uuid::new_v4(),
                token_hash: token_hash(&mfa_token),
                user_id,
                ip: ip.to_owned(),
                created_at: now,
                expires_at,
            })
            .await?;
        Ok(Some(Challenge {
            mfa_token,
            expires_in: self.challenge_ttl.num_seconds().unsigned_abs(),
        }))
    }

    /// The live challenge of `mfa_token`, if it was issued to a client at `ip`.
    pub async fn find_challenge(
        &self,
        mfa_token: &str,
        ip: &str,
    ) -> Result<MfaChallenge, MfaError> {
        self.store
            .mfa_challenge(&token_hash(mfa_token), Utc::now(), MAX_CHALLENGE_FAILURES)
            .await?
            .filter(|challenge| challenge.ip == ip)
            .ok_or(MfaError::InvalidChallenge)
    }

    /// Completes a challenge with the second factor; a wrong code counts against it.
    pub async fn complete(
        &self,
        challenge: &MfaChallenge,
        factor: &SecondFactor,
    ) -> Result<MfaProof, MfaError> {
        let now = Utc::now();
        let proof = match self.proof(challenge.user_id, factor, now).await? {
            Some(proof)
                if self
                    .store
                    .complete_mfa_challenge(challenge, &proof, now)
                    .await? =>
            {
                proof
            }
            _ => {
                self.store.mfa_challenge_failed(challenge.id).await?;
                return Err(MfaError::WrongCode);
            }
        };
        Ok(proof)
    }

    /// Raises a live session to the second factor's level (step-up).
    pub async fn step_up(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        factor: &SecondFactor,
    ) -> Result<MfaProof, MfaError> {
        let now = Utc::now();
        let proof = self
            .proof(user_id, factor, now)
            .await?
            .ok_or(MfaError::WrongCode)?;
        if !self
            .store
            .raise_session(user_id, session_id, &proof, now)
            .await?
        {
            return Err(MfaError::WrongCode);
        }
        Ok(proof)
    }

    async fn spend(&self, user_id: Uuid, factor: &SecondFactor) -> Result<MfaProof, MfaError> {
        let now = Utc::now();
        match self.proof(user_id, factor, now).await? {
            Some(proof) if self.store.spend_mfa_proof(user_id, &proof, now).await? => Ok(proof),
            _ => Err(MfaError::WrongCode),
        }
    }

    /// The proof `factor` would be, if right (a recovery code is checked when spent).
    async fn proof(
        &self,
        user_id: Uuid,
        factor: &SecondFactor,
        now: DateTime<Utc>,
    ) -> Result<Option<MfaProof>, MfaError> {
        let record = self.confirmed(user_id).await?;
        let secret = self.open(user_id, &record)?;
        Ok(match factor {
            SecondFactor::Totp(code) => secret
                .accepts(code, now.timestamp(), record.last_step)
                .map(MfaProof::Step),
            SecondFactor::RecoveryCode(code) => Some(MfaProof::RecoveryCode(
                self.keys.recovery_hashes(&secret, code),
            )),
        })
    }

    async fn confirmed(&self, user_id: Uuid) -> Result<TotpRecord, MfaError> {
        self.store
            .totp(user_id)
            .await?
            .filter(|record| record.confirmed)
            .ok_or(MfaError::NotEnabled)
    }

    fn open(&self, user_id: Uuid, record: &TotpRecord) -> Result<TotpSecret, MfaError> {
        Ok(self.keys.open(user_id, &record.sealed_secret)?.secret)
    }

    /// Seals every stored secret that an older listed key sealed again under the current key,
    /// a page at a time, so that key can be retired without waiting for each account to log in.
    /// Secrets no listed key opens are counted and left as they are.
    pub async fn reseal_all(&self) -> Result<Resealed, MfaError> {
        let mut done = Resealed::default();
        let mut after = Uuid::nil();
        loop {
            let page = self.store.sealed_totp_after(after, RESEAL_PAGE).await?;
            let Some((last, _)) = page.last() else {
                return Ok(done);
            };
            after = *last;
            for (user_id, sealed) in &page {
                match self.keys.open(*user_id, sealed) {
                    Ok(opened) if opened.stale => {
                        let resealed = self.keys.seal(*user_id, &opened.secret)?;
                        if self.store.reseal_totp(*user_id, sealed, &resealed).await? {
                            done.resealed += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => done.unreadable += 1,
                }
            }
        }
    }
}
