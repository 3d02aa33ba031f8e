//! The second factor's part of the store: TOTP enrollments, recovery codes, login challenges
//! and the step-up of a session. None of these ends a session.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{MfaChallenge, MfaProof, NewMfaChallenge, StoreError, TotpRecord};

/// A part of [`super::Store`] (its supertrait), kept apart to keep each file short.
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    /// The account's TOTP enrollment, pending or confirmed.
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpRecord>, StoreError>;

    /// Stores a pending enrollment, replacing a pending one; false (and nothing changes) when
    /// the account has a confirmed one.
    async fn begin_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Activates a pending enrollment whose code was right for `step`, with these recovery code
    /// hashes, in one transaction; false (and nothing changes) when there is no pending one.
    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Replaces the recovery codes of a confirmed enrollment; false when there is none.
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery_hashes: &[String],
    ) -> Result<bool, StoreError>;

    /// Removes the second factor, its recovery codes and challenges; false when there was none.
    async fn remove_totp(&self, user_id: Uuid) -> Result<bool, StoreError>;

    /// How many of the account's recovery codes are unused.
    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u32, StoreError>;

    /// Replaces a TOTP secret sealed as `from` by the same secret sealed as `to` (under the
    /// current key); false when the row no longer holds `from`.
    async fn reseal_totp(&self, user_id: Uuid, from: &str, to: &str) -> Result<bool, StoreError>;

    /// Up to `limit` sealed TOTP secrets, pending or confirmed, of accounts whose id sorts after
    /// `after`, in id order.
    async fn sealed_totp_after(
        &self,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<(Uuid, String)>, StoreError>;

    /// Spends a proof of the second factor (a step later than the last accepted, or an unused
    /// recovery code), conditionally, so no proof counts twice across instances.
    async fn spend_mfa_proof(
        &self,
        user_id: Uuid,
        proof: &MfaProof,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn create_mfa_challenge(&self, challenge: &NewMfaChallenge) -> Result<(), StoreError>;

    /// The unexpired challenge of this token hash, with fewer than `max_failures` wrong codes.
    async fn mfa_challenge(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        max_failures: u32,
    ) -> Result<Option<MfaChallenge>, StoreError>;

    /// Counts a wrong code against a challenge.
    async fn mfa_challenge_failed(&self, id: Uuid) -> Result<(), StoreError>;

    /// Spends a live challenge and the proof that completes it, in one transaction; false (and
    /// nothing changes) when either was spent already.
    async fn complete_mfa_challenge(
        &self,
        challenge: &MfaChallenge,
        proof: &MfaProof,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records that a live session proved a second factor at `at` (step-up).
    async fn raise_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        proof: &MfaProof,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
