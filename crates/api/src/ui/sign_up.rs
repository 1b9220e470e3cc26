//! Signing up: `Accounts::register`, as `POST /api/v1/auth/register` calls
//! it (role `user`, the verification mail queued with the account), then
//! "check your mail".

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gatehouse_core::service::Registration;
use http::{HeaderMap, StatusCode};
use minijinja::context;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{self, Binding, FormKey};
use super::page::{self, Page, Refusal, Shown};
use super::return_to;
use super::sign_in::allowed;
use super::templates;
use crate::error::ApiError;
use crate::extract::Meta;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignUpQuery {
    return_to: String,
}

/// What the form keeps of what was typed: everything but the password.
#[derive(Debug, Default)]
struct Typed<'a> {
    username: &'a str,
    email: &'a str,
    full_name: &'a str,
}

fn render(
    state: &AppState,
    key: &FormKey,
    return_to: Option<&str>,
    typed: &Typed<'_>,
    error: Option<&Shown>,
) -> Result<String, ApiError> {
    templates::render(
        page::product(state),
        "sign_up.html",
        context! {
            csrf => key.token(Binding::SignedOut),
            return_to => return_to,
            query => return_to::query(return_to),
            username => typed.username,
            email => typed.email,
            full_name => typed.full_name,
            error => error,
        },
    )
}

/// `GET /ui/sign-up`.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignUpQuery>,
) -> Result<Page, ApiError> {
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let return_to = allowed(&state, &q.return_to);
    let html = render(&state, &key, return_to, &Typed::default(), None)?;
    Ok(Page::new(StatusCode::OK, html).cookie(key.cookie()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignUpForm {
    csrf: String,
    return_to: String,
    username: String,
    email: String,
    full_name: String,
    password: SecretString,
}

/// `POST /ui/sign-up`: every rule is the use case's; a taken username or
/// address reads like any other refusal (no account enumeration).
pub async fn submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(form): Form<SignUpForm>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, &form.csrf)?;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let return_to = allowed(&state, &form.return_to);
    let full_name = form.full_name.trim();
    let registered = state
        .accounts()
        .register(
            Registration {
                username: form.username.clone(),
                email: form.email.clone(),
                password: form.password,
                full_name: (!full_name.is_empty()).then(|| full_name.to_owned()),
            },
            &meta,
        )
        .await;
    match registered {
        Ok(user) => {
            let html = templates::render(
                page::product(&state),
                "signed_up.html",
                context! {
                    username => user.username,
                    email => user.email,
                    query => return_to::query(return_to),
                },
            )?;
            Ok(Page::new(StatusCode::CREATED, html).into_response())
        }
        Err(e) => {
            let refusal = Refusal::new(e, state.http().expose_validation_details);
            let typed = Typed {
                username: &form.username,
                email: &form.email,
                full_name: &form.full_name,
            };
            let html = render(&state, &key, return_to, &typed, Some(&refusal.shown))?;
            Ok(refusal.page(html))
        }
    }
}
