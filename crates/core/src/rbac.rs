//! Roles and permissions as data: the table of the contract, checked in one
//! place (`Principal::require`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Moderator,
    User,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Moderator, Role::User, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::User => "user",
            Role::Viewer => "viewer",
        }
    }

    /// The permissions this role grants.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &[
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
            ],
            Role::Moderator => &[
                UsersRead,
                UsersWrite,
                SelfRead,
                SelfWrite,
                ContentRead,
                ContentWrite,
                ContentDelete,
            ],
            Role::User => &[SelfRead, SelfWrite, ContentRead, ContentWrite],
            Role::Viewer => &[SelfRead, ContentRead],
        }
    }

    pub fn has(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "moderator" => Ok(Role::Moderator),
            "user" => Ok(Role::User),
            "viewer" => Ok(Role::Viewer),
            _ => Err(()),
        }
    }
}

/// One permission of the contract (`resource:action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
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
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::UsersRead => "users:read",
            Permission::UsersWrite => "users:write",
            Permission::UsersDelete => "users:delete",
            Permission::SelfRead => "self:read",
            Permission::SelfWrite => "self:write",
            Permission::ContentRead => "content:read",
            Permission::ContentWrite => "content:write",
            Permission::ContentDelete => "content:delete",
            Permission::AdminRead => "admin:read",
            Permission::AdminWrite => "admin:write",
            Permission::SystemManage => "system:manage",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_table() {
        let names = |r: Role| -> Vec<&str> { r.permissions().iter().map(|p| p.as_str()).collect() };
        assert_eq!(
            names(Role::Admin).join(" "),
            "users:read users:write users:delete self:read self:write content:read \
             content:write content:delete admin:read admin:write system:manage"
        );
        assert_eq!(
            names(Role::Moderator).join(" "),
            "users:read users:write self:read self:write content:read content:write content:delete"
        );
        assert_eq!(
            names(Role::User).join(" "),
            "self:read self:write content:read content:write"
        );
        assert_eq!(names(Role::Viewer).join(" "), "self:read content:read");
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
