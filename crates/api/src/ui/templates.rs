//! The pages' templates, compiled into the binary and parsed once; `.html`
//! templates are autoescaped, so nothing a user typed reaches a page as
//! markup.

use std::sync::OnceLock;

use http::StatusCode;
use minijinja::{Environment, Value, context};

use super::assets;
use crate::error::ApiError;

const TEMPLATES: [(&str, &str); 25] = [
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    (
        "sign_in_code.html",
        include_str!("templates/sign_in_code.html"),
    ),
    ("sign_up.html", include_str!("templates/sign_up.html")),
    ("signed_up.html", include_str!("templates/signed_up.html")),
    (
        "account_base.html",
        include_str!("templates/account_base.html"),
    ),
    ("account.html", include_str!("templates/account.html")),
    ("profile.html", include_str!("templates/profile.html")),
    ("password.html", include_str!("templates/password.html")),
    ("two_factor.html", include_str!("templates/two_factor.html")),
    ("api_keys.html", include_str!("templates/api_keys.html")),
    ("error.html", include_str!("templates/error.html")),
    ("message.html", include_str!("templates/message.html")),
    (
        "forgot_password.html",
        include_str!("templates/forgot_password.html"),
    ),
    (
        "reset_password.html",
        include_str!("templates/reset_password.html"),
    ),
    (
        "verify_email.html",
        include_str!("templates/verify_email.html"),
    ),
    (
        "send_verification.html",
        include_str!("templates/send_verification.html"),
    ),
    ("admin_base.html", include_str!("templates/admin_base.html")),
    (
        "admin_macros.html",
        include_str!("templates/admin_macros.html"),
    ),
    (
        "admin_dashboard.html",
        include_str!("templates/admin_dashboard.html"),
    ),
    (
        "admin_users.html",
        include_str!("templates/admin_users.html"),
    ),
    ("admin_user.html", include_str!("templates/admin_user.html")),
    (
        "admin_audit.html",
        include_str!("templates/admin_audit.html"),
    ),
    ("fallback.html", FALLBACK),
];

/// Shown should a template ever fail to render: a fixed sentence.
const FALLBACK: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Error</title><p>An unexpected error occurred.</p></html>";

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                // Caught by the tests, which render every page.
                tracing::error!(template = name, error = %e, "page template does not parse");
            }
        }
        env
    })
}

/// Renders page `name` with `ctx`, the product name, the stylesheet and
/// the script.
pub fn render(product: &str, name: &str, ctx: Value) -> Result<String, ApiError> {
    let ctx = context! {
        product => product,
        stylesheet => assets::stylesheet(),
        script => assets::script(),
        ..ctx
    };
    environment()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| ApiError::internal(format!("page {name} did not render: {e}")))
}

/// The error page: the status's words and the problem's sentence, with the
/// request id to quote for a server error.
pub fn error(product: &str, status: StatusCode, detail: &str, reference: Option<&str>) -> String {
    let title = match status {
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    render(
        product,
        "error.html",
        context! {
            title => title,
            detail => detail,
            request_id => reference,
            back => "/ui",
            back_label => "Back to your account",
        },
    )
    .unwrap_or_else(|e| {
        tracing::error!(error = ?e, "error page did not render");
        FALLBACK.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account page's context: the frame every one of them has.
    fn account(own: Value) -> Value {
        context! {
            csrf => "t", notice => "<x>", error => None::<()>, reauth => "why", next => "/ui/account",
            has_passkeys => true,
            user => context! { username => "<x>", email => "e", email_verified => false, full_name => "<x>", role => "user", mfa_enabled => true, created => "c", created_at => "c" },
            ..own
        }
    }

    #[test]
    fn every_page_renders_and_escapes() {
        let error = context! { detail => "Nope <b>", fields => vec![context! { label => "Email", message => "is invalid" }] };
        let pages = [
            (
                "sign_in.html",
                context! { csrf => "t", return_to => "/ui/account", query => "", login => "<x>", notice => "n", error => error.clone() },
            ),
            (
                "sign_in_code.html",
                context! { csrf => "t", return_to => None::<&str>, query => "", mfa_token => "m", passkey => true, error => error.clone() },
            ),
            (
                "sign_up.html",
                context! { csrf => "t", return_to => None::<&str>, query => "", username => "u", email => "e", full_name => "f", error => error.clone() },
            ),
            (
                "signed_up.html",
                context! { username => "u", email => "e", query => "" },
            ),
            (
                "account.html",
                account(context! {
                    others => 1,
                    passkeys => vec![context! { id => "p", name => "<x>", created => "c", created_at => "c", last_used => ("l", "l"), backed_up => true }],
                    sessions => vec![context! { id => "i", device => "Chrome on Linux", ip => "127.0.0.1", created => "c", created_at => "c", last_used => "l", last_used_at => "l", current => true }],
                }),
            ),
            (
                "profile.html",
                account(context! { form => context! { full_name => "<x>", email => "<x>" } }),
            ),
            ("password.html", account(context! {})),
            (
                "two_factor.html",
                account(
                    context! { setup => context! { qr => "data:,", secret => "<x>" }, backup_codes => None::<()> },
                ),
            ),
            (
                "two_factor.html",
                account(context! { setup => None::<()>, backup_codes => vec!["<x>"] }),
            ),
            (
                "api_keys.html",
                account(context! {
                    keys => vec![context! { id => "k", name => "<x>", prefix => "gh_", scopes => vec!["self:read"], created => ("c", "c"), expires => None::<()>, last_used => ("l", "l") }],
                    scopes => vec!["self:read"], lifetimes => vec![30], fresh => context! { name => "<x>", key => "gh_k" },
                }),
            ),
            (
                "message.html",
                context! { title => "T", text => "<x>", href => "/ui", link_label => "L" },
            ),
            (
                "forgot_password.html",
                context! { csrf => "t", email => "<x>", error => error.clone() },
            ),
            (
                "reset_password.html",
                context! { csrf => "t", token => "", email => "<x>", error => error.clone() },
            ),
            (
                "reset_password.html",
                context! { csrf => "t", token => "tok", email => "", error => None::<()> },
            ),
            (
                "send_verification.html",
                context! { csrf => "t", email => "<x>", error => error.clone() },
            ),
            (
                "verify_email.html",
                context! { csrf => "t", token => "", email => "<x>", error => error.clone() },
            ),
        ];
        for (name, ctx) in pages {
            let html = render("Gatehouse", name, ctx).unwrap_or_else(|e| format!("{e:?}"));
            assert!(html.starts_with("<!doctype html>"), "{name}: {html}");
            assert!(
                !html.contains("<x>") && !html.contains("<b>"),
                "{name} escapes"
            );
        }
        let html = super::error(
            "Gatehouse",
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error occurred",
            Some("req-1"),
        );
        assert!(
            html.contains("Something went wrong") && html.contains("req-1"),
            "{html}"
        );
    }
}
