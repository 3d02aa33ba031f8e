//! The audit log: every event an operator may have to account for, in one list. Each is one log
//! line under the target `latchkey::audit`, with an `event` name that stays stable for log
//! queries and alerts (docs/operations.md lists them); a secret is never among the fields.

use std::net::IpAddr;

use uuid::Uuid;

use crate::domain::{Email, Role};

/// Records `$event` at `$level` under the audit target.
macro_rules! audit {
    ($level:ident, $event:literal, $($rest:tt)+) => {
        tracing::$level!(target: "latchkey::audit", event = $event, $($rest)+)
    };
}

pub enum AuditEvent<'a> {
    /// An account with its first session.
    SignedUp {
        user_id: Uuid,
        session_id: Uuid,
        ip: IpAddr,
    },
    /// An account that gets a session once its address is verified.
    SignedUpAwaitingVerification {
        user_id: Uuid,
        ip: IpAddr,
    },
    /// A signup for an address that has an account (answered like any other when verification
    /// is required).
    SignupEmailTaken {
        ip: IpAddr,
    },
    LoginSucceeded {
        user_id: Uuid,
        session_id: Uuid,
        ip: IpAddr,
        known_device: bool,
    },
    /// `user_id` is `None` for an address without an account.
    LoginFailed {
        user_id: Option<Uuid>,
        ip: IpAddr,
        known_device: bool,
    },
    Logout {
        user_id: Uuid,
        session_id: Uuid,
        scope: &'static str,
    },
    /// A rotated-away refresh token came back: its session is revoked as stolen.
    RefreshTokenReused {
        user_id: Uuid,
        session_id: Uuid,
        ip: IpAddr,
    },
    SessionRevoked {
        user_id: Uuid,
        session_id: Uuid,
    },
    PasswordChanged {
        user_id: Uuid,
        session_id: Uuid,
    },
    PasswordReset {
        user_id: Uuid,
    },
    EmailChangeRequested {
        user_id: Uuid,
    },
    EmailChanged {
        user_id: Uuid,
    },
    EmailVerified {
        user_id: Uuid,
    },
    RoleChanged {
        user_id: Uuid,
        by: Uuid,
        role: Role,
    },
    DisabledChanged {
        user_id: Uuid,
        by: Uuid,
        disabled: bool,
    },
    AccountDeletedByOwner {
        user_id: Uuid,
    },
    AccountDeletedByAdmin {
        user_id: Uuid,
        by: Uuid,
    },
    PasswordResetMailed {
        user_id: Uuid,
    },
    VerificationMailed {
        user_id: Uuid,
    },
    EmailChangeMailed {
        user_id: Uuid,
    },
    SignupAttemptMailed {
        user_id: Uuid,
    },
    /// A mail failed every delivery allowed: it stays in the outbox as a dead letter.
    MailDeadLettered {
        job_id: Uuid,
        kind: &'static str,
    },
    AdminBootstrapped {
        email: &'a Email,
    },
    /// The bootstrap admin's address belongs to an account that is not an admin: left as it is.
    AdminBootstrapRefused {
        email: &'a Email,
    },
    /// A second factor enabled, its recovery codes regenerated, turned off, reset by an admin,
    /// or proved for a step-up (`action`).
    MfaChanged {
        user_id: Uuid,
        by: Uuid,
        action: &'static str,
    },
    /// `latchkey keys rotate`: the next generated key signs now, the current one is previous.
    SigningKeyRotated {
        alg: &'static str,
        signing: &'a str,
        retired: &'a str,
    },
}

/// Writes `event` to the audit log.
pub fn record(event: AuditEvent<'_>) {
    match event {
        AuditEvent::SignedUp { .. }
        | AuditEvent::SignedUpAwaitingVerification { .. }
        | AuditEvent::SignupEmailTaken { .. }
        | AuditEvent::LoginSucceeded { .. }
        | AuditEvent::LoginFailed { .. } => record_signup_or_login(event),
        AuditEvent::Logout { .. }
        | AuditEvent::RefreshTokenReused { .. }
        | AuditEvent::SessionRevoked { .. }
        | AuditEvent::PasswordChanged { .. }
        | AuditEvent::PasswordReset { .. } => record_session_or_password(event),
        AuditEvent::MfaChanged {
            user_id,
            by,
            action,
        } => audit!(info, "mfa_changed", %user_id, %by, action, "second factor changed"),
        AuditEvent::EmailChangeRequested { .. }
        | AuditEvent::EmailChanged { .. }
        | AuditEvent::EmailVerified { .. }
        | AuditEvent::PasswordResetMailed { .. }
        | AuditEvent::VerificationMailed { .. }
        | AuditEvent::EmailChangeMailed { .. }
        | AuditEvent::SignupAttemptMailed { .. }
        | AuditEvent::MailDeadLettered { .. } => record_address_or_mail(event),
        AuditEvent::RoleChanged { .. }
        | AuditEvent::DisabledChanged { .. }
        | AuditEvent::AccountDeletedByOwner { .. }
        | AuditEvent::AccountDeletedByAdmin { .. } => record_account_change(event),
        AuditEvent::AdminBootstrapped { .. }
        | AuditEvent::AdminBootstrapRefused { .. }
        | AuditEvent::SigningKeyRotated { .. } => record_operator_action(event),
    }
}

/// Signups and logins.
fn record_signup_or_login(event: AuditEvent<'_>) {
    match event {
        AuditEvent::SignedUp {
            user_id,
            session_id,
            ip,
        } => audit!(info, "signup", %user_id, %session_id, %ip, "account created"),
        AuditEvent::SignedUpAwaitingVerification { user_id, ip } => audit!(
            info,
            "signup",
            %user_id,
            %ip,
            "account created, awaiting verification"
        ),
        AuditEvent::SignupEmailTaken { ip } => audit!(
            info,
            "signup_email_taken",
            %ip,
            "signup for an address that has an account"
        ),
        AuditEvent::LoginSucceeded {
            user_id,
            session_id,
            ip,
            known_device,
        } => audit!(
            info,
            "login_succeeded",
            %user_id,
            %session_id,
            %ip,
            known_device,
            "login succeeded"
        ),
        AuditEvent::LoginFailed {
            user_id,
            ip,
            known_device,
        } => audit!(
            info,
            "login_failed",
            user_id = user_id.map(|id| id.to_string()).as_deref().unwrap_or("unknown"),
            %ip,
            known_device,
            "login failed"
        ),
        // `record` sends only the events above.
        _ => {}
    }
}

/// Sessions ended, and passwords changed or reset.
fn record_session_or_password(event: AuditEvent<'_>) {
    match event {
        AuditEvent::Logout {
            user_id,
            session_id,
            scope,
        } => audit!(info, "logout", %user_id, %session_id, scope, "logout"),
        AuditEvent::RefreshTokenReused {
            user_id,
            session_id,
            ip,
        } => audit!(
            warn,
            "refresh_token_reused",
            %user_id,
            %session_id,
            %ip,
            "a rotated-away refresh token was presented again; the session is revoked"
        ),
        AuditEvent::SessionRevoked {
            user_id,
            session_id,
        } => audit!(info, "session_revoked", %user_id, %session_id, "session revoked"),
        AuditEvent::PasswordChanged {
            user_id,
            session_id,
        } => audit!(info, "password_changed", %user_id, %session_id, "password changed"),
        AuditEvent::PasswordReset { user_id } => audit!(
            info,
            "password_reset",
            %user_id,
            "password reset through a mailed link; every session revoked"
        ),
        // `record` sends only the events above.
        _ => {}
    }
}

/// Address changes and verification, and the mails that carry their links.
fn record_address_or_mail(event: AuditEvent<'_>) {
    match event {
        AuditEvent::EmailChangeRequested { user_id } => audit!(
            info,
            "email_change_requested",
            %user_id,
            "email change asked for; waiting for confirmation from the new address"
        ),
        AuditEvent::EmailChanged { user_id } => {
            audit!(info, "email_changed", %user_id, "email address changed")
        }
        AuditEvent::EmailVerified { user_id } => {
            audit!(info, "email_verified", %user_id, "email address verified")
        }
        AuditEvent::PasswordResetMailed { user_id } => {
            audit!(info, "password_reset_mailed", %user_id, "password reset link mailed")
        }
        AuditEvent::VerificationMailed { user_id } => audit!(
            info,
            "verification_mailed",
            %user_id,
            "email verification link mailed"
        ),
        AuditEvent::EmailChangeMailed { user_id } => audit!(
            info,
            "email_change_mailed",
            %user_id,
            "email change link mailed to the new address"
        ),
        AuditEvent::SignupAttemptMailed { user_id } => audit!(
            info,
            "signup_attempt_mailed",
            %user_id,
            "the owner of a taken address was told of a signup attempt"
        ),
        AuditEvent::MailDeadLettered { job_id, kind } => audit!(
            warn,
            "mail_dead_lettered",
            %job_id,
            kind,
            "a mail was given up after every delivery allowed failed; it stays in mail_outbox"
        ),
        // `record` sends only the events above.
        _ => {}
    }
}

/// Roles and the disabled flag changed by an admin, and deleted accounts.
fn record_account_change(event: AuditEvent<'_>) {
    match event {
        AuditEvent::RoleChanged { user_id, by, role } => audit!(
            info,
            "role_changed",
            %user_id,
            %by,
            role = role.as_str(),
            "role changed by an admin"
        ),
        AuditEvent::DisabledChanged {
            user_id,
            by,
            disabled,
        } => audit!(
            info,
            "disabled_changed",
            %user_id,
            %by,
            disabled,
            "disabled flag changed by an admin"
        ),
        AuditEvent::AccountDeletedByOwner { user_id } => audit!(
            info,
            "account_deleted",
            %user_id,
            by = %user_id,
            "account deleted by its owner"
        ),
        AuditEvent::AccountDeletedByAdmin { user_id, by } => audit!(
            info,
            "account_deleted",
            %user_id,
            %by,
            "account deleted by an admin"
        ),
        // `record` sends only the events above.
        _ => {}
    }
}

/// What the operator does from outside the API: the bootstrap admin and signing key rotation.
fn record_operator_action(event: AuditEvent<'_>) {
    match event {
        AuditEvent::AdminBootstrapped { email } => {
            audit!(info, "admin_bootstrapped", %email, "bootstrap admin created")
        }
        AuditEvent::AdminBootstrapRefused { email } => audit!(
            warn,
            "admin_bootstrap_refused",
            %email,
            "LATCHKEY_BOOTSTRAP_ADMIN_EMAIL names an existing account that is not an admin; it \
             was not promoted. Promote it with `latchkey admin set-role` if it is yours"
        ),
        AuditEvent::SigningKeyRotated {
            alg,
            signing,
            retired,
        } => audit!(
            info,
            "signing_key_rotated",
            alg,
            signing,
            retired,
            "signing key rotated"
        ),
        // `record` sends only the events above.
        _ => {}
    }
}
