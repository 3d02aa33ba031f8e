//! The second factor: TOTP enrollments, recovery codes, login challenges, and a session's
//! step-up. Every spend is a conditional write (`last_step < $n`, `used_at IS NULL`, a DELETE
//! that must find its row), so of concurrent requests on any instances, one wins.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, Engine};
use crate::store::seam::{Seam, WriteTx};
use crate::store::{MfaChallenge, MfaProof, MfaStore, NewMfaChallenge, StoreError, TotpRecord};

#[async_trait::async_trait]
impl MfaStore for Engine {
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpRecord>, StoreError> {
        let row: Option<(String, Option<DateTime<Utc>>, i64)> = sqlx::query_as(
            "SELECT secret, confirmed_at, last_step FROM mfa_totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(
            row.map(|(sealed_secret, confirmed_at, last_step)| TotpRecord {
                sealed_secret,
                confirmed: confirmed_at.is_some(),
                last_step,
            }),
        )
    }

    async fn begin_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO mfa_totp (user_id, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
             created_at = excluded.created_at, last_step = -1 \
             WHERE mfa_totp.confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(sealed_secret)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(done)
    }

    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let confirmed = sqlx::query(
            "UPDATE mfa_totp SET confirmed_at = $2, last_step = $3 \
             WHERE user_id = $1 AND confirmed_at IS NULL AND last_step < $3",
        )
        .bind(user_id)
        .bind(at)
        .bind(step)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !confirmed {
            return Ok(false);
        }
        store_recovery_codes(&mut tx, user_id, recovery_hashes).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery_hashes: &[String],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let enrolled: Option<i64> = sqlx::query_scalar(
            "SELECT last_step FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if enrolled.is_none() {
            return Ok(false);
        }
        store_recovery_codes(&mut tx, user_id, recovery_hashes).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn remove_totp(&self, user_id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        for table in ["mfa_recovery_codes", "mfa_challenges"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u32, StoreError> {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }

    async fn reseal_totp(&self, user_id: Uuid, from: &str, to: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let resealed =
            sqlx::query("UPDATE mfa_totp SET secret = $3 WHERE user_id = $1 AND secret = $2")
                .bind(user_id)
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        tx.commit().await?;
        Ok(resealed)
    }

    async fn sealed_totp_after(
        &self,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT user_id, secret FROM mfa_totp WHERE user_id > $1 ORDER BY user_id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?)
    }

    async fn spend_mfa_proof(
        &self,
        user_id: Uuid,
        proof: &MfaProof,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        if !spend(&mut tx, user_id, proof, at).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn create_mfa_challenge(&self, challenge: &NewMfaChallenge) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO mfa_challenges (id, token_hash, user_id, ip, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(challenge.id)
        .bind(&challenge.token_hash)
        .bind(challenge.user_id)
        .bind(&challenge.ip)
        .bind(challenge.created_at)
        .bind(challenge.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mfa_challenge(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        max_failures: u32,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, ip FROM mfa_challenges \
             WHERE token_hash = $1 AND expires_at > $2 AND failures < $3",
        )
        .bind(token_hash)
        .bind(now)
        .bind(i64::from(max_failures))
        .fetch_optional(self.pool())
        .await?)
    }

    async fn mfa_challenge_failed(&self, id: Uuid) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE mfa_challenges SET failures = failures + 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn complete_mfa_challenge(
        &self,
        challenge: &MfaChallenge,
        proof: &MfaProof,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let spent = sqlx::query("DELETE FROM mfa_challenges WHERE id = $1 AND expires_at > $2")
            .bind(challenge.id)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        // Dropping `tx` uncommitted rolls the challenge's deletion back.
        if !spent || !spend(&mut tx, challenge.user_id, proof, at).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn raise_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        proof: &MfaProof,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let raised = sqlx::query(
            "UPDATE sessions SET amr = $3, auth_time = $4 \
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(proof.methods().as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !raised || !spend(&mut tx, user_id, proof, at).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// Spends `proof` in `tx`: false when it was spent already (or the factor is gone).
async fn spend(
    tx: &mut WriteTx<Db>,
    user_id: Uuid,
    proof: &MfaProof,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    match proof {
        MfaProof::Step(step) => Ok(sqlx::query(
            "UPDATE mfa_totp SET last_step = $2 \
             WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
        )
        .bind(user_id)
        .bind(*step)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1),
        MfaProof::RecoveryCode(hashes) => {
            // The forms one code may be stored in: at most one of them is.
            for hash in hashes {
                let spent = sqlx::query(
                    "UPDATE mfa_recovery_codes SET used_at = $3 \
                     WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(hash.as_str())
                .bind(at)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if spent == 1 {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// Replaces the account's recovery codes with these hashes.
async fn store_recovery_codes(
    tx: &mut WriteTx<Db>,
    user_id: Uuid,
    hashes: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for hash in hashes {
        sqlx::query("INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(hash)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// How a session was authenticated, and when last (its creation when it never stepped up).
pub(super) async fn session_authn(
    tx: &mut WriteTx<Db>,
    session_id: Uuid,
) -> Result<(String, DateTime<Utc>), StoreError> {
    Ok(
        sqlx::query_as("SELECT amr, COALESCE(auth_time, created_at) FROM sessions WHERE id = $1")
            .bind(session_id)
            .fetch_one(&mut **tx)
            .await?,
    )
}
