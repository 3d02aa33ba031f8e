//! The values the store takes and gives: users, sessions, tokens, and what an operation led to.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::AuthMethods;
use crate::domain::{DisplayName, Email, Role};

/// Connection pool usage, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub connections: u32,
    pub idle: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A user as the API shows it: no password hash in sight.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub disabled: bool,
    /// Whether the user has proven, through a mailed token, that the email is theirs.
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user together with the hash their password is checked against.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

pub struct NewUser {
    pub id: Uuid,
    pub email: Email,
    pub password_hash: String,
    pub name: Option<DisplayName>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// `Some` for accounts an operator creates: the operator vouches for the address.
    pub email_verified_at: Option<DateTime<Utc>>,
}

/// Changes to a user; `None` leaves a field as it is. The email is not among them: a new address
/// takes effect only through a mailed link ([`super::Store::confirm_email_change`]).
#[derive(Default)]
pub struct UserChanges {
    /// `Some(None)` clears the name.
    pub name: Option<Option<DisplayName>>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// One page of the user list, in creation order.
pub struct UserQuery {
    pub limit: u32,
    /// Only users created after this user (by `created_at`, then `id`).
    pub after: Option<(DateTime<Utc>, Uuid)>,
    /// Only emails starting with this (already lower-cased) prefix.
    pub email_prefix: Option<String>,
}

/// A change that went through, with the sessions it revoked.
pub struct AccountChange<T> {
    pub value: T,
    pub revoked: Vec<Uuid>,
}

pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// How the user authenticated to start it.
    pub methods: AuthMethods,
}

/// The stored form of a refresh token: its SHA-256 and its expiry.
pub struct NewRefreshToken {
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A refresh token exchanged for its successor.
pub struct Rotation {
    pub user: User,
    pub session_id: Uuid,
    /// How the session was authenticated, and when last: a refresh keeps both.
    pub methods: AuthMethods,
    pub auth_time: DateTime<Utc>,
}

/// An account's TOTP enrollment: its sealed secret, whether it is confirmed (active), and the
/// last step a code was accepted for.
pub struct TotpRecord {
    pub sealed_secret: String,
    pub confirmed: bool,
    pub last_step: i64,
}

/// A password proved for an account with a second factor, waiting for the code.
pub struct NewMfaChallenge {
    pub id: Uuid,
    pub token_hash: String,
    pub user_id: Uuid,
    pub ip: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A live challenge, found by its token's hash.
#[derive(Debug, sqlx::FromRow)]
pub struct MfaChallenge {
    pub id: Uuid,
    pub user_id: Uuid,
    pub ip: String,
}

/// What a second factor was proved with, spent with the challenge or step-up it completes.
#[derive(Debug, Clone)]
pub enum MfaProof {
    /// A TOTP code, accepted for this step.
    Step(i64),
    /// A recovery code, by the hashes it may be stored as (see `MfaKeys::recovery_hashes`).
    RecoveryCode(Vec<String>),
}

impl MfaProof {
    pub fn methods(&self) -> AuthMethods {
        match self {
            Self::Step(_) => AuthMethods::PasswordAndOtp,
            Self::RecoveryCode(_) => AuthMethods::PasswordAndRecoveryCode,
        }
    }
}

/// What a refresh token presented as proof of a session (cookie-mode logout) turned out to be.
pub enum TokenCheck {
    /// The live token of a live session.
    Live { user_id: Uuid, session_id: Uuid },
    /// Rotated within the reuse interval: a refresh raced this request. Not proof of anything,
    /// and not theft either.
    JustRotated,
    /// Rotated away before the reuse interval: someone holds a copy, so the whole session has
    /// been revoked.
    Reused {
        user_id: Uuid,
        session_id: Uuid,
        revoked_at: DateTime<Utc>,
    },
    /// Unknown or expired, or its session is revoked, expired or its account disabled.
    Invalid,
}

/// What presenting a refresh token led to.
pub enum RefreshOutcome {
    /// The token was live: it is spent and its successor stored.
    Rotated(Rotation),
    /// The token was rotated within the reuse interval (a concurrent refresh) and its successor
    /// is still the session's live token: the caller hands out that successor again.
    Replayed(Rotation),
    /// The token was rotated away before the reuse interval: someone holds a copy, so the whole
    /// session has been revoked.
    Reused {
        user_id: Uuid,
        session_id: Uuid,
        revoked_at: DateTime<Utc>,
    },
    /// Unknown, expired, or its session revoked or past its absolute lifetime.
    Invalid,
    /// The token is live, but its user has not verified their email address, which is
    /// required: nothing was spent or stored.
    Unverified,
}

/// What a mailed token is for; a token of one purpose is never accepted for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTokenPurpose {
    PasswordReset,
    EmailVerification,
    /// Mailed to a new address; confirms the change to it.
    EmailChange,
}

impl EmailTokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
            Self::EmailChange => "email_change",
        }
    }
}

/// The stored form of a mailed token: its SHA-256, never the token.
pub struct NewEmailToken {
    pub hash: String,
    pub user_id: Uuid,
    pub purpose: EmailTokenPurpose,
    /// The account's address when the token was made; the token counts only while the account
    /// has it. The token is mailed to it, except for an email change.
    pub email: String,
    /// For an email change, and only then: the new address, where the token is mailed.
    pub new_email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a mail in the outbox is: which template, for whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A reset link, if an enabled account has the address (looked up when it is sent).
    PasswordReset,
    Verification,
    /// A notice to the owner of an address someone tried to sign up with.
    SignupAttempt,
    /// The link that confirms a new address, mailed to it.
    EmailChange,
    /// The notice of an email change, to the address the account had.
    EmailChangeNotice,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::Verification => "email_verification",
            Self::SignupAttempt => "signup_attempt",
            Self::EmailChange => "email_change",
            Self::EmailChangeNotice => "email_change_notice",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::PasswordReset,
            Self::Verification,
            Self::SignupAttempt,
            Self::EmailChange,
            Self::EmailChangeNotice,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == raw)
    }
}

/// A mail waiting in the outbox. No token: the worker makes it when it sends the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailJob {
    pub id: Uuid,
    pub kind: MailKind,
    pub user_id: Option<Uuid>,
    /// The recipient, except for an email change, which goes to `new_email`.
    pub email: String,
    pub new_email: Option<String>,
    /// Deliveries tried before this one.
    pub attempts: u32,
    /// Until when the worker that claimed it holds it; `None` for a job not claimed yet. Its
    /// result is recorded only while the claim is still this one.
    pub claimed_until: Option<DateTime<Utc>>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Delivered,
    /// Failed; try again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Failed for the last time: kept as a dead letter for the operator.
    Dead {
        error: String,
    },
}

/// Which of a user's sessions to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeScope {
    Only(Uuid),
    AllExcept(Uuid),
    All,
}

/// How many rows one pruning transaction deletes at most: a few milliseconds of SQLite's write
/// lock, so a login or refresh queued behind it hardly notices.
pub const PRUNE_BATCH: i64 = 100;

/// What a pruning sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub rows: u64,
    /// The most rows one of its write transactions deleted: at most [`PRUNE_BATCH`].
    pub largest_batch: u64,
    /// The longest of its write transactions, from the moment it had its turn to write: how long
    /// traffic may have waited for it.
    pub longest_batch: std::time::Duration,
}

/// A live session, as its owner sees it in a device list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}
