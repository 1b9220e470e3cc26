//! `Require<P>`: the caller, authenticated and holding permission `P`. A
//! handler that names `Require<perm::UsersRead>` cannot run without it, and
//! every refusal is a 403 with a `permission_denied` security event.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, MatchedPath};
use gatehouse_core::rbac::Permission;
use gatehouse_core::service::{Attempt, Principal};
use http::request::Parts;

use super::auth::Auth;
use super::meta::Meta;
use crate::error::ApiError;
use crate::state::AppState;

/// A permission named at the type level.
pub trait RequiredPermission: Send + Sync + 'static {
    const PERMISSION: Permission;
}

/// Marker types, one per permission of the contract.
pub mod perm {
    use super::{Permission, RequiredPermission};

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl RequiredPermission for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    markers!(
        UsersRead,
        UsersWrite,
        UsersDelete,
        SelfRead,
        SelfWrite,
        ContentRead,
        ContentWrite,
        ContentDelete,
        AdminRead,
        AdminWrite,
        SystemManage,
    );
}

#[derive(Debug)]
pub struct Require<P>(pub Principal, pub PhantomData<P>);

impl<P: RequiredPermission> FromRequestParts<AppState> for Require<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Auth(principal) = Auth::from_request_parts(parts, state).await?;
        if principal.require(P::PERMISSION).is_err() {
            let Ok(Meta(meta)) = Meta::from_request_parts(parts, state).await;
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map_or("", MatchedPath::as_str);
            state
                .events()
                .permission_denied(
                    &principal,
                    P::PERMISSION,
                    Attempt {
                        method: parts.method.as_str(),
                        route,
                    },
                    &meta,
                )
                .await;
            return Err(ApiError::forbidden());
        }
        Ok(Self(principal, PhantomData))
    }
}
