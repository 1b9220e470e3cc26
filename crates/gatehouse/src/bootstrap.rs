//! `gatehouse create-admin`: bootstraps an admin account. The password comes
//! from standard input or an interactive prompt, never from argv (which
//! other users of the machine can read).

use std::io::{BufRead, IsTerminal};

use gatehouse_core::CoreError;
use gatehouse_core::service::Registration;
use secrecy::SecretString;

use crate::cli::{error_chain, open_services};
use crate::settings::Settings;

fn read_password() -> Result<SecretString, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Repeat password: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords do not match".into());
        }
        return Ok(SecretString::from(first));
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("no password given on standard input".into());
    }
    Ok(SecretString::from(password))
}

pub async fn create_admin(
    settings: &Settings,
    username: String,
    email: String,
    full_name: Option<String>,
) -> Result<(), String> {
    let password = read_password()?;
    let (db, services) = open_services(settings).await?;
    let result = services
        .use_cases
        .accounts
        .create_admin(Registration {
            username,
            email,
            password,
            full_name,
        })
        .await;
    db.close().await;
    match result {
        Ok(user) => {
            tracing::info!(user_id = %user.id, username = %user.username, "admin account created");
            Ok(())
        }
        Err(CoreError::Validation(problems)) => Err(problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ")),
        Err(CoreError::WeakPassword(reason)) => Err(reason.to_owned()),
        Err(CoreError::RegistrationFailed) => {
            Err("an account with this username or email already exists".into())
        }
        Err(e) => Err(error_chain(&e)),
    }
}
