//! The pages a mail links to, and the one that sends a reset mail:
//! forgotten password (`PasswordReset::request`), a new password with the
//! link's token or the mail's code (`PasswordReset::confirm`), and an
//! address confirmed (`EmailVerification::confirm`) — the use cases
//! `/api/v1/auth/password-reset/…` and `/verify-email/confirm` call. With
//! `APP_BASE_URL` ending in `/ui`, the mailed links open these pages.
//!
//! Opening a link only shows a form: mail scanners follow links, and a
//! link merely opened must not spend its token.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gatehouse_core::service::{Confirmed, Proof};
use http::{HeaderMap, StatusCode};
use minijinja::{Value, context};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::csrf::{self, Binding, FormKey};
use super::page::{self, Page, Refusal, Shown};
use super::templates;
use crate::error::ApiError;
use crate::extract::Meta;
use crate::handlers::auth::LOGIN_MAX;
use crate::state::AppState;

/// The answer to a reset asked for.
const MAYBE_SENT: &str = "If an account has this address, we have sent it a message with a link \
     and a code to set a new password. They expire in 30 minutes.";

/// A link's token, when the page was opened from one.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkQuery {
    token: String,
}

/// A page with one message and a way on.
fn message(
    state: &AppState,
    status: StatusCode,
    title: &str,
    text: &str,
    link: (&str, &str),
) -> Result<Response, ApiError> {
    let html = templates::render(
        page::product(state),
        "message.html",
        context! { title => title, text => text, href => link.0, link_label => link.1 },
    )?;
    Ok(Page::new(status, html).into_response())
}

/// What a form that redeems a mail holds: the link's token, or the address
/// and the code as typed.
fn proof(token: &str, email: &str, code: &SecretString) -> Result<Proof, Box<Refusal>> {
    let token = token.trim();
    let email = email.trim();
    let code = code.expose_secret().trim();
    if !token.is_empty() {
        return Ok(Proof::Token(SecretString::from(token.to_owned())));
    }
    if email.is_empty() || code.is_empty() {
        return Err(Box::new(Refusal::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your email address and the code from the message.",
        )));
    }
    if email.chars().count() > LOGIN_MAX || code.chars().count() > 32 {
        return Err(Box::new(Refusal::new(
            gatehouse_core::CoreError::InvalidMailToken,
            false,
        )));
    }
    Ok(Proof::Code {
        email: email.to_owned(),
        code: SecretString::from(code.to_owned()),
    })
}

// ---- A mail asked for ----

/// A mail asked for by address, before signing in: a reset, or the
/// verification sent again.
#[derive(Debug, Clone, Copy)]
enum Asked {
    Reset,
    Verification,
}

impl Asked {
    fn template(self) -> &'static str {
        match self {
            Asked::Reset => "forgot_password.html",
            Asked::Verification => "send_verification.html",
        }
    }

    /// The one answer, whether or not an account receives the mail (OWASP
    /// Forgot Password Cheat Sheet), as the API gives it.
    fn answer(self) -> &'static str {
        match self {
            Asked::Reset => MAYBE_SENT,
            Asked::Verification => {
                "If an account with this address is waiting for it to be confirmed, we have sent \
                 it a message with a link and a code. The code expires in 30 minutes, the link \
                 in 24 hours."
            }
        }
    }
}

fn render_ask(
    state: &AppState,
    key: &FormKey,
    asked: Asked,
    email: &str,
    error: Option<&Shown>,
) -> Result<String, ApiError> {
    templates::render(
        page::product(state),
        asked.template(),
        context! { csrf => key.token(Binding::SignedOut), email => email, error => error },
    )
}

fn ask_form(state: &AppState, headers: &HeaderMap, asked: Asked) -> Result<Page, ApiError> {
    let key = FormKey::of(headers, state.http().secure_cookies)?;
    let html = render_ask(state, &key, asked, "", None)?;
    Ok(Page::new(StatusCode::OK, html).cookie(key.cookie()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AskForm {
    csrf: String,
    email: String,
}

/// The same page after the same work whether or not an account has the
/// address; only a malformed address is refused.
async fn ask_submit(
    state: &AppState,
    headers: &HeaderMap,
    form: AskForm,
    asked: Asked,
) -> Result<Response, ApiError> {
    csrf::verify(headers, Binding::SignedOut, &form.csrf)?;
    let key = FormKey::of(headers, state.http().secure_cookies)?;
    let email = form.email.trim();
    let refused = if email.is_empty() {
        Some(Refusal::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the email address of your account.",
        ))
    } else {
        let sent = match asked {
            Asked::Reset => state.password_reset().request(email).await,
            Asked::Verification => state.email_verification().request_by_address(email).await,
        };
        sent.err().map(|e| match e {
            gatehouse_core::CoreError::Validation(_) => Refusal::status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "That is not an email address. Check it and try again.",
            ),
            e => Refusal::new(e, state.http().expose_validation_details),
        })
    };
    match refused {
        None => message(
            state,
            StatusCode::OK,
            "Check your mail",
            asked.answer(),
            ("/ui/sign-in", "Back to sign in"),
        ),
        Some(refusal) => {
            let html = render_ask(state, &key, asked, email, Some(&refusal.shown))?;
            Ok(refusal.page(html))
        }
    }
}

/// `GET /ui/forgot-password`.
pub async fn forgot_form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Page, ApiError> {
    ask_form(&state, &headers, Asked::Reset)
}

/// `POST /ui/forgot-password`: `PasswordReset::request`.
pub async fn forgot_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AskForm>,
) -> Result<Response, ApiError> {
    ask_submit(&state, &headers, form, Asked::Reset).await
}

/// `GET /ui/verify-email/send`: the verification mail again, for an
/// address not yet confirmed (signing in may need it confirmed first).
pub async fn resend_form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Page, ApiError> {
    ask_form(&state, &headers, Asked::Verification)
}

/// `POST /ui/verify-email/send`: `EmailVerification::request_by_address`.
pub async fn resend_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AskForm>,
) -> Result<Response, ApiError> {
    ask_submit(&state, &headers, form, Asked::Verification).await
}

// ---- A new password ----

struct ResetPage<'a> {
    token: &'a str,
    email: &'a str,
    error: Option<&'a Shown>,
}

fn render_reset(state: &AppState, key: &FormKey, p: &ResetPage<'_>) -> Result<String, ApiError> {
    templates::render(
        page::product(state),
        "reset_password.html",
        context! {
            csrf => key.token(Binding::SignedOut),
            token => p.token,
            email => p.email,
            error => p.error,
        },
    )
}

/// `GET /ui/reset-password?token=…`: the form; the token is checked when
/// it is sent. Without a token, the form takes the address and the code.
pub async fn reset_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
) -> Result<Page, ApiError> {
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let page = ResetPage {
        token: q.token.trim(),
        email: "",
        error: None,
    };
    let html = render_reset(&state, &key, &page)?;
    Ok(Page::new(StatusCode::OK, html).cookie(key.cookie()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    csrf: String,
    token: String,
    email: String,
    code: SecretString,
    new_password: SecretString,
    confirm_password: SecretString,
}

/// Why a new password typed twice is refused by the form itself (empty,
/// or not the same twice); the policy is the use case's.
pub(super) fn not_typed_twice(new: &SecretString, again: &SecretString) -> Option<Refusal> {
    let new = new.expose_secret();
    let why = if new.is_empty() {
        "Enter the new password twice."
    } else if new != again.expose_secret() {
        "The two passwords do not match. Type the same new password in both fields."
    } else {
        return None;
    };
    Some(Refusal::status(StatusCode::UNPROCESSABLE_ENTITY, why))
}

/// `POST /ui/reset-password`: the password policy and the token are the
/// use case's; a weak password leaves the token usable. Every login of the
/// account ends, so the way on is to sign in.
pub async fn reset_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, &form.csrf)?;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let outcome = if let Some(refusal) = not_typed_twice(&form.new_password, &form.confirm_password)
    {
        Err(refusal)
    } else {
        match proof(&form.token, &form.email, &form.code) {
            Ok(proof) => state
                .password_reset()
                .confirm(&proof, &form.new_password, &meta)
                .await
                .map_err(|e| Refusal::new(e, state.http().expose_validation_details)),
            Err(refusal) => Err(*refusal),
        }
    };
    match outcome {
        Ok(()) => Ok(page::see_other("/ui/sign-in?notice=password_reset").into_response()),
        Err(refusal) => {
            let page = ResetPage {
                token: form.token.trim(),
                email: form.email.trim(),
                error: Some(&refusal.shown),
            };
            let html = render_reset(&state, &key, &page)?;
            Ok(refusal.page(html))
        }
    }
}

// ---- An address confirmed ----

fn render_verify(
    state: &AppState,
    key: &FormKey,
    token: &str,
    email: &str,
    error: Option<&Shown>,
) -> Result<String, ApiError> {
    templates::render(
        page::product(state),
        "verify_email.html",
        context! {
            csrf => key.token(Binding::SignedOut),
            token => token,
            email => email,
            error => error,
        },
    )
}

/// `GET /ui/verify-email?token=…`: a button that confirms; without a
/// token, the form takes the address and the code.
pub async fn verify_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
) -> Result<Page, ApiError> {
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let html = render_verify(&state, &key, q.token.trim(), "", None)?;
    Ok(Page::new(StatusCode::OK, html).cookie(key.cookie()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VerifyForm {
    csrf: String,
    token: String,
    email: String,
    code: SecretString,
}

/// `POST /ui/verify-email`: a verification, or a change of address.
pub async fn verify_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(form): Form<VerifyForm>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, &form.csrf)?;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let outcome = match proof(&form.token, &form.email, &form.code) {
        Ok(proof) => state
            .email_verification()
            .confirm(&proof, &meta)
            .await
            .map_err(|e| Refusal::new(e, state.http().expose_validation_details)),
        Err(refusal) => Err(*refusal),
    };
    let done: Value = match outcome {
        Ok(Confirmed::Verified) => context! {
            title => "Email address verified",
            text => "Thank you: your email address is confirmed.",
        },
        Ok(Confirmed::EmailChanged) => context! {
            title => "Email address changed",
            text => "Your account now uses the new address. Sign in with it from now on.",
        },
        Err(refusal) => {
            let html = render_verify(
                &state,
                &key,
                form.token.trim(),
                form.email.trim(),
                Some(&refusal.shown),
            )?;
            return Ok(refusal.page(html));
        }
    };
    let html = templates::render(
        page::product(&state),
        "message.html",
        context! { href => "/ui/account", link_label => "Go to your account", ..done },
    )?;
    Ok(Page::new(StatusCode::OK, html).into_response())
}
