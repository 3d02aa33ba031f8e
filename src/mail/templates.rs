//! The mails Latchkey sends, from the plain-text and HTML templates in `templates/`, which are
//! compiled into the binary. A template names its values as `{{name}}`; values are HTML-escaped
//! in the HTML part. That is all the templating there is, so no template engine is needed.

use std::time::Duration;

use super::Mail;

const PASSWORD_RESET_TEXT: &str = include_str!("../../templates/password_reset.txt");
const PASSWORD_RESET_HTML: &str = include_str!("../../templates/password_reset.html");
const VERIFY_EMAIL_TEXT: &str = include_str!("../../templates/verify_email.txt");
const VERIFY_EMAIL_HTML: &str = include_str!("../../templates/verify_email.html");
const SIGNUP_ATTEMPT_TEXT: &str = include_str!("../../templates/signup_attempt.txt");
const SIGNUP_ATTEMPT_HTML: &str = include_str!("../../templates/signup_attempt.html");
const EMAIL_CHANGE_TEXT: &str = include_str!("../../templates/email_change.txt");
const EMAIL_CHANGE_HTML: &str = include_str!("../../templates/email_change.html");
const EMAIL_CHANGE_NOTICE_TEXT: &str = include_str!("../../templates/email_change_notice.txt");
const EMAIL_CHANGE_NOTICE_HTML: &str = include_str!("../../templates/email_change_notice.html");

/// The mail with a password-reset `link` for `to`, valid for `valid_for`.
pub fn password_reset(to: &str, link: &str, valid_for: Duration) -> Mail {
    compose(
        to,
        "Reset your password",
        (PASSWORD_RESET_TEXT, PASSWORD_RESET_HTML),
        link,
        valid_for,
    )
}

/// The mail with an email-verification `link` for `to`, valid for `valid_for`.
pub fn verify_email(to: &str, link: &str, valid_for: Duration) -> Mail {
    compose(
        to,
        "Confirm your email address",
        (VERIFY_EMAIL_TEXT, VERIFY_EMAIL_HTML),
        link,
        valid_for,
    )
}

/// The notice to the owner of `to` that someone tried to sign up with it. It carries no link: a
/// mail anyone can trigger must not hand out anything that acts on the account.
pub fn signup_attempt(to: &str) -> Mail {
    compose_with(
        to,
        "Someone tried to sign up with your email address",
        (SIGNUP_ATTEMPT_TEXT, SIGNUP_ATTEMPT_HTML),
        &[("email", to)],
    )
}

/// The mail to a requested new address `to` with the `link` that confirms the change, valid for
/// `valid_for`.
pub fn email_change(to: &str, link: &str, valid_for: Duration) -> Mail {
    compose(
        to,
        "Confirm your new email address",
        (EMAIL_CHANGE_TEXT, EMAIL_CHANGE_HTML),
        link,
        valid_for,
    )
}

/// The notice to an account's current address `to` that a change to `new_email` was asked for.
/// No link: the change is confirmed from the new mailbox, and undone by a password reset.
pub fn email_change_notice(to: &str, new_email: &str) -> Mail {
    compose_with(
        to,
        "Your email address is about to change",
        (EMAIL_CHANGE_NOTICE_TEXT, EMAIL_CHANGE_NOTICE_HTML),
        &[("email", to), ("new_email", new_email)],
    )
}

/// A mail with a `link` valid for `valid_for`.
fn compose(
    to: &str,
    subject: &str,
    templates: (&str, &str),
    link: &str,
    valid_for: Duration,
) -> Mail {
    let valid_for = describe(valid_for);
    let values = [("email", to), ("link", link), ("valid_for", &valid_for)];
    compose_with(to, subject, templates, &values)
}

fn compose_with(
    to: &str,
    subject: &str,
    (text, html): (&str, &str),
    values: &[(&str, &str)],
) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: render(text, values, |value| value.to_owned()),
        html: render(html, values, escape_html),
    }
}

/// Replaces every `{{name}}` of `values` in `template` with `encode(value)`. A placeholder
/// without a value is left as it is (the tests below make sure there is none).
fn render(template: &str, values: &[(&str, &str)], encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let name = after[..end].trim();
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (encode(value), end))
        });
        match value {
            Some((value, end)) => {
                out.push_str(&value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1 hour`, `24 hours`, `30 minutes`, `90 seconds`: the largest unit that divides evenly.
fn describe(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (amount, unit) = match secs {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    let plural = if amount == 1 { "" } else { "s" };
    format!("{amount} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://app.example.com/reset-password#token=abc-_123";

    #[test]
    fn every_placeholder_of_every_template_is_filled() {
        let hour = Duration::from_secs(3600);
        for mail in [
            password_reset("ada@example.com", LINK, hour),
            verify_email("ada@example.com", LINK, hour),
            email_change("ada@example.com", LINK, hour),
        ] {
            for body in [&mail.text, &mail.html] {
                assert!(!body.contains("{{"), "unfilled placeholder in {body}");
                assert!(body.contains(LINK));
                assert!(body.contains("ada@example.com"));
                assert!(body.contains("1 hour"));
            }
        }
        for mail in [
            signup_attempt("ada@example.com"),
            email_change_notice("ada@example.com", "ada@new.example"),
        ] {
            for body in [&mail.text, &mail.html] {
                assert!(!body.contains("{{"), "unfilled placeholder in {body}");
                assert!(body.contains("ada@example.com"));
                assert!(!body.contains("http"), "a link in a notice: {body}");
            }
        }
    }

    #[test]
    fn values_are_escaped_in_html_only() {
        let values = [("name", "<b>&\"'")];
        assert_eq!(
            render("<p>{{name}}</p>", &values, escape_html),
            "<p>&lt;b&gt;&amp;&quot;&#39;</p>"
        );
        assert_eq!(render("{{ name }}!", &values, |v| v.to_owned()), "<b>&\"'!");
    }

    #[test]
    fn unknown_or_unclosed_placeholders_stay() {
        let values = [("a", "1")];
        let keep = |v: &str| v.to_owned();
        assert_eq!(render("{{b}} {{a}}", &values, keep), "{{b}} 1");
        assert_eq!(render("{{a", &values, keep), "{{a");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
        assert_eq!(describe(Duration::from_secs(1)), "1 second");
    }
}
