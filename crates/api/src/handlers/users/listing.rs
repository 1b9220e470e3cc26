//! The user list: its query parameters, parsed by hand so every bad value
//! is a 422 naming its parameter (the filters are shared with the export),
//! and its two response shapes.

use gatehouse_core::rbac::Role;
use gatehouse_core::service::{ListQuery, UserPage};
use gatehouse_core::user::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::FieldError;

/// Query parameters of the user list.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawList {
    pub(super) page: Option<String>,
    pub(super) per_page: Option<String>,
    pub(super) limit: Option<String>,
    pub(super) after: Option<String>,
    pub(super) q: Option<String>,
    pub(super) role: Option<String>,
    pub(super) is_active: Option<String>,
}

pub(super) const MAX_PER_PAGE: u64 = 100;

pub(super) fn number(
    raw: Option<&str>,
    field: &str,
    default: u64,
    errors: &mut Vec<FieldError>,
) -> u64 {
    match raw.map(str::parse::<u64>) {
        None => default,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            errors.push(FieldError::new(
                field,
                "must be a whole number of at least 1",
            ));
            default
        }
    }
}

/// The filters shared by the list and the export: `q` (username prefix),
/// `role`, `is_active`. Bad values are added to `errors`, naming the
/// parameter.
pub(crate) fn list_filters(
    q: Option<String>,
    role: Option<&str>,
    is_active: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> ListQuery {
    if q.as_ref().is_some_and(|q| q.chars().count() > 50) {
        errors.push(FieldError::new("q", "must be at most 50 characters"));
    }
    let role = match role {
        None | Some("") => None,
        Some(r) => r
            .parse::<Role>()
            .map_err(|()| {
                errors.push(FieldError::new(
                    "role",
                    "must be admin, moderator, user or viewer",
                ));
            })
            .ok(),
    };
    let is_active = match is_active {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.push(FieldError::new("is_active", "must be true or false"));
            None
        }
    };
    ListQuery { q, role, is_active }
}

/// `GET /api/v1/users`: page mode or keyset mode.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserList {
    Page(Paged),
    Keyset(Keyset),
}

/// Page mode (`?page=&per_page=`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UserPage)]
pub struct Paged {
    users: Vec<User>,
    total: u64,
    page: u64,
    per_page: u64,
    pages: u64,
}

/// Keyset mode (`?limit=`, then `?after=<next_cursor>`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UserKeysetPage)]
pub struct Keyset {
    users: Vec<User>,
    /// `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<Uuid>,
}

impl From<UserPage> for UserList {
    fn from(page: UserPage) -> Self {
        match page {
            UserPage::Paged {
                users,
                total,
                page,
                per_page,
            } => Self::Page(Paged {
                users,
                total,
                page,
                per_page,
                pages: total.div_ceil(per_page),
            }),
            UserPage::Keyset { users, next_cursor } => Self::Keyset(Keyset { users, next_cursor }),
        }
    }
}
