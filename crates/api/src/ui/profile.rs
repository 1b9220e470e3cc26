//! The profile and password pages: the name and the address changed
//! through `Accounts::update_me` (a new address is only requested, and
//! takes a recent sign-in), the password through `Accounts::change_password`
//! (which ends every login, this one too), as `PUT /api/v1/users/me` and
//! `POST /users/me/change-password` do.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use gatehouse_core::CoreError;
use gatehouse_core::service::ProfileUpdate;
use http::{HeaderMap, StatusCode};
use minijinja::context;
use secrecy::SecretString;
use serde::Deserialize;

use super::account::{self, AccountQuery, View};
use super::csrf::{self, Binding};
use super::mail_links::not_typed_twice;
use super::page::{Page, Refusal, see_other};
use super::session::SignedIn;
use super::sign_in::signed_out;
use crate::error::ApiError;
use crate::extract::Meta;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    csrf: String,
    full_name: String,
    email: String,
}

/// The profile form: as stored, or as typed when it comes back refused.
pub(super) fn view(signed: &SignedIn, typed: Option<&ProfileForm>) -> View {
    let user = &signed.principal.user;
    let (full_name, email) = match typed {
        Some(f) => (f.full_name.as_str(), f.email.as_str()),
        None => (user.full_name.as_deref().unwrap_or(""), user.email.as_str()),
    };
    View {
        template: "profile.html",
        path: "/ui/account/profile",
        own: context! { form => context! { full_name => full_name, email => email } },
    }
}

/// `GET /ui/account/profile`.
pub async fn profile_form(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Query(q): Query<AccountQuery>,
) -> Result<Page, ApiError> {
    let view = view(&signed, None);
    account::show_view(&state, &signed, &headers, &q.notice, view).await
}

/// `POST /ui/account/profile`: only what changed goes to the use case (an
/// unchanged address asks for nothing, so needs no recent sign-in); an
/// empty name clears it.
pub async fn profile_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<ProfileForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    let name = form.full_name.trim();
    let email = form.email.trim();
    let stored_name = p.user.full_name.as_deref().unwrap_or("");
    let update = ProfileUpdate {
        full_name: (name != stored_name).then(|| (!name.is_empty()).then(|| name.to_owned())),
        email: (!email.eq_ignore_ascii_case(&p.user.email)).then(|| email.to_owned()),
    };
    let (refusal, reauth) = match state.accounts().update_me(p, update, &meta).await {
        Ok(outcome) => {
            let code = if outcome.email_change_requested {
                "email_change_requested"
            } else {
                "profile_saved"
            };
            return Ok(see_other(&format!("/ui/account/profile?notice={code}")).into_response());
        }
        Err(CoreError::ReauthenticationRequired) => (
            Refusal::status(
                StatusCode::UNAUTHORIZED,
                "Changing your email address needs a recent sign-in.",
            ),
            Some("Confirm it is you below, then save the new address again."),
        ),
        Err(e) => (
            Refusal::new(e, state.http().expose_validation_details),
            None,
        ),
    };
    let view = view(&signed, Some(&form));
    account::refused_view(&state, &signed, &headers, refusal, reauth, view).await
}

/// The password form (nothing typed ever comes back into it).
pub(super) fn password_view() -> View {
    View {
        template: "password.html",
        path: "/ui/account/password",
        own: context! {},
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    csrf: String,
    current_password: SecretString,
    new_password: SecretString,
    confirm_password: SecretString,
}

/// `GET /ui/account/password`.
pub async fn password_form(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
) -> Result<Page, ApiError> {
    account::show_view(&state, &signed, &headers, "", password_view()).await
}

/// `POST /ui/account/password`: the change ends every login of the
/// account, this browser's too, so the way on is to sign in with it.
pub async fn password_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    let outcome = match not_typed_twice(&form.new_password, &form.confirm_password) {
        Some(refusal) => Err(refusal),
        None => state
            .accounts()
            .change_password(p, &form.current_password, &form.new_password, &meta)
            .await
            .map_err(|e| Refusal::new(e, state.http().expose_validation_details)),
    };
    match outcome {
        Ok(()) => Ok(signed_out(&state, "/ui/sign-in?notice=password_changed")),
        Err(refusal) => {
            account::refused_view(&state, &signed, &headers, refusal, None, password_view()).await
        }
    }
}
