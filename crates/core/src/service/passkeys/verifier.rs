//! The relying party: WebAuthn ceremonies through `webauthn-rs`, their
//! state kept in the store between the two requests (any instance may
//! finish what another began), and the checks around each assertion that
//! the library leaves to its caller (whose credential, bound to what, the
//! counter moving forward under concurrency).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AttestationCaList, AttestationCaListBuilder, AttestationMetadata, AttestedPasskey,
    AttestedPasskeyRegistration, CreationChallengeResponse, DiscoverableAuthentication, Passkey,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::{AllowCredentials, AuthenticatorTransport, ResidentKeyRequirement};

use crate::CoreError;
use crate::auth::refresh;
use crate::config::WebauthnConfig;
use crate::ports::{CeremonyRecord, PasskeyRecord, PasskeyRepo, PasskeyUse};
use crate::service::kernel::Kernel;

/// How long a ceremony may take between its two requests (also the
/// timeout the browser is given).
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);

/// What a ceremony is for; its state finishes nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Register,
    SignIn,
    SecondFactor,
    Reauth,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignIn => "sign_in",
            Purpose::SecondFactor => "second_factor",
            Purpose::Reauth => "reauth",
        }
    }
}

/// A begun ceremony: what the client passes to the browser, and the handle
/// that finishes it.
#[derive(Debug)]
pub struct Challenge<T> {
    pub ceremony: String,
    pub options: T,
    pub expires_in: u64,
}

/// Why a ceremony could not be finished. Callers map it to their own
/// answer (sign-in says only "invalid credentials").
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("unknown, spent, expired or foreign ceremony")]
    Ceremony,
    #[error("unknown credential, or not this account's")]
    Credential,
    #[error("the authenticator's response did not verify: {0}")]
    Verification(String),
    #[error("signature counter did not move forward (cloned authenticator?)")]
    Counter,
    #[error(transparent)]
    Store(#[from] CoreError),
}

/// Who a ceremony may be finished by.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub user_id: Option<Uuid>,
    /// The login (`sid`) or the MFA token (`jti`) that began it.
    pub bound_to: Option<&'a str>,
}

/// The relying party and the stored state of its ceremonies.
#[derive(Debug, Clone)]
pub struct Verifier {
    webauthn: Arc<Webauthn>,
    /// The allowed authenticator models and their vendors' roots, when
    /// the organisation restricts them (`WEBAUTHN_ALLOWED_AAGUIDS`).
    models: Option<Arc<AttestationCaList>>,
    repo: Arc<dyn PasskeyRepo>,
    kernel: Kernel,
}

/// The credential id as stored and shown: base64url without padding.
pub fn credential_key(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

impl Verifier {
    /// Fails, naming the setting, when the relying party is unusable.
    pub fn new(
        config: &WebauthnConfig,
        repo: Arc<dyn PasskeyRepo>,
        kernel: Kernel,
    ) -> Result<Self, CoreError> {
        let bad = |e: &dyn std::fmt::Display| {
            CoreError::internal(format!("WEBAUTHN_RP_ID / WEBAUTHN_ORIGINS: {e}"))
        };
        let mut origins = config.origins.iter().map(|o| Url::parse(o));
        let first = origins
            .next()
            .ok_or_else(|| bad(&"no origin"))?
            .map_err(|e| bad(&e))?;
        let mut builder = WebauthnBuilder::new(&config.rp_id, &first)
            .map_err(|e| bad(&e))?
            .rp_name(&config.rp_name)
            .timeout(CEREMONY_TTL);
        for origin in origins {
            builder = builder.append_allowed_origin(&origin.map_err(|e| bad(&e))?);
        }
        Ok(Self {
            webauthn: Arc::new(builder.build().map_err(|e| bad(&e))?),
            models: allowed_models(config)?.map(Arc::new),
            repo,
            kernel,
        })
    }

    pub fn repo(&self) -> &Arc<dyn PasskeyRepo> {
        &self.repo
    }

    /// Keyed MAC of `json` for `owner`: rows are written by this service
    /// only, so a row forged or moved by someone with database access
    /// (without the key) is refused.
    fn seal(&self, what: &str, owner: &str, json: &str) -> String {
        self.kernel.blind.of(what, &format!("{owner}\0{json}"))
    }

    fn sealed(&self, what: &str, owner: &str, json: &str, mac: &str) -> bool {
        let expected = self.seal(what, owner, json);
        !mac.is_empty() && bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
    }

    fn passkey_owner(user_id: Uuid, credential_id: &str) -> String {
        format!("{user_id}:{credential_id}")
    }

    /// A stored passkey, once its seal checks.
    pub fn open(&self, record: &PasskeyRecord) -> Result<Passkey, CoreError> {
        let owner = Self::passkey_owner(record.user_id, &record.credential_id);
        if !self.sealed("passkey", &owner, &record.credential, &record.mac) {
            tracing::error!(
                target: "gatehouse::security",
                passkey_id = %record.id,
                user_id = %record.user_id,
                "stored passkey fails its seal: refused (written outside the service?)"
            );
            return Err(CoreError::internal("passkey seal mismatch"));
        }
        serde_json::from_str(&record.credential).map_err(CoreError::internal)
    }

    /// The stored form of `passkey` for `user_id`: JSON and its seal.
    pub fn close(&self, user_id: Uuid, passkey: &Passkey) -> Result<(String, String), CoreError> {
        let json = serde_json::to_string(passkey).map_err(CoreError::internal)?;
        let owner = Self::passkey_owner(user_id, &credential_key(passkey.cred_id()));
        let mac = self.seal("passkey", &owner, &json);
        Ok((json, mac))
    }

    async fn stash(
        &self,
        purpose: Purpose,
        binding: Binding<'_>,
        state: &impl Serialize,
    ) -> Result<String, CoreError> {
        // A random handle, as refresh tokens are made: only the client
        // that began the ceremony holds it; the store keeps its digest.
        let issued = refresh::generate()?;
        let json = serde_json::to_string(state).map_err(CoreError::internal)?;
        let record = CeremonyRecord {
            digest: issued.digest,
            purpose: purpose.as_str().to_owned(),
            user_id: binding.user_id,
            bound_to: binding.bound_to.map(str::to_owned),
            mac: self.seal("ceremony", purpose.as_str(), &json),
            state: json,
            expires_at: self.kernel.now_ms() + 1000 * CEREMONY_TTL.as_secs() as i64,
        };
        self.repo
            .put_ceremony(&record, self.kernel.now_ms())
            .await?;
        Ok(issued.token.expose_secret().to_owned())
    }

    /// Takes a ceremony (once), checking what it is for and who began it.
    /// Returns the account it was begun for, if any, and its state.
    async fn claim<T: DeserializeOwned>(
        &self,
        handle: &str,
        purpose: Purpose,
        binding: Binding<'_>,
    ) -> Result<(Option<Uuid>, T), Refusal> {
        if handle.is_empty() || handle.len() > 128 {
            return Err(Refusal::Ceremony);
        }
        let record = self
            .repo
            .take_ceremony(&refresh::digest(handle), self.kernel.now_ms())
            .await?
            .ok_or(Refusal::Ceremony)?;
        let bound = record.bound_to.as_deref() == binding.bound_to
            && (binding.user_id.is_none() || record.user_id == binding.user_id);
        if record.purpose != purpose.as_str()
            || !bound
            || !self.sealed("ceremony", purpose.as_str(), &record.state, &record.mac)
        {
            return Err(Refusal::Ceremony);
        }
        let state = serde_json::from_str(&record.state).map_err(|_| Refusal::Ceremony)?;
        Ok((record.user_id, state))
    }

    /// Begins registering a passkey for an account that has `existing`.
    /// The credential must be discoverable (a passkey signs in with no
    /// name typed) and user verification is required.
    pub async fn begin_registration(
        &self,
        user_id: Uuid,
        name: &str,
        display_name: &str,
        existing: &[PasskeyRecord],
        bound_to: &str,
    ) -> Result<Challenge<CreationChallengeResponse>, CoreError> {
        let exclude = existing
            .iter()
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
            .collect();
        let (mut options, state) = match &self.models {
            None => {
                let (options, state) = self
                    .webauthn
                    .start_passkey_registration(user_id, name, display_name, Some(exclude))
                    .map_err(CoreError::internal)?;
                (options, RegistrationState::Any(state))
            }
            // Direct attestation, verified against the vendors' roots at
            // finish; backup-eligible (synced) credentials are refused.
            Some(models) => {
                let (options, state) = self
                    .webauthn
                    .start_attested_passkey_registration(
                        user_id,
                        name,
                        display_name,
                        Some(exclude),
                        AttestationCaList::clone(models),
                        None,
                    )
                    .map_err(CoreError::internal)?;
                (options, RegistrationState::Attested(state))
            }
        };
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        let binding = Binding {
            user_id: Some(user_id),
            bound_to: Some(bound_to),
        };
        let ceremony = self.stash(Purpose::Register, binding, &state).await?;
        Ok(Challenge {
            ceremony,
            options,
            expires_in: CEREMONY_TTL.as_secs(),
        })
    }

    /// Finishes a registration begun by the same login.
    pub async fn finish_registration(
        &self,
        handle: &str,
        binding: Binding<'_>,
        credential: &RegisterPublicKeyCredential,
    ) -> Result<Passkey, Refusal> {
        let (_, state): (_, RegistrationState) =
            self.claim(handle, Purpose::Register, binding).await?;
        let verified = match (&state, &self.models) {
            (RegistrationState::Any(state), None) => {
                self.webauthn.finish_passkey_registration(credential, state)
            }
            (RegistrationState::Attested(state), Some(_)) => self
                .webauthn
                .finish_attested_passkey_registration(credential, state)
                .map(Passkey::from),
            // Begun under another policy (the settings changed meanwhile).
            _ => return Err(Refusal::Ceremony),
        };
        verified.map_err(|e| Refusal::Verification(e.to_string()))
    }

    /// The passkeys of `records` that may still be used (all of them
    /// without an allow-list).
    pub fn usable(&self, records: Vec<PasskeyRecord>) -> Vec<PasskeyRecord> {
        if self.models.is_none() {
            return records;
        }
        records.into_iter().filter(|r| self.admitted(r)).collect()
    }

    /// Whether `record` (already opened) may still be used: with an
    /// allow-list, its attestation must verify against the vendors' roots
    /// and name an allowed model — so passkeys registered before the list
    /// was set, or of a model taken off it since, stop working (they can
    /// still be listed and removed).
    fn admitted(&self, record: &PasskeyRecord) -> bool {
        let Some(models) = &self.models else {
            return true;
        };
        // The stored form of a passkey and of an attested one are the same
        // credential; this view exposes its attestation.
        let Ok(attested) = serde_json::from_str::<AttestedPasskey>(&record.credential) else {
            return false;
        };
        let admitted = attested.verify_attestation(models).is_ok_and(|ca| {
            ca.blanket_allow()
                || match &attested.attestation().metadata {
                    AttestationMetadata::Packed { aaguid }
                    | AttestationMetadata::Tpm { aaguid, .. } => ca.aaguids().contains_key(aaguid),
                    _ => false,
                }
        });
        if !admitted {
            tracing::warn!(
                target: "gatehouse::security",
                passkey_id = %record.id,
                user_id = %record.user_id,
                "passkey of a model outside WEBAUTHN_ALLOWED_AAGUIDS (or unattested): refused"
            );
        }
        admitted
    }

    /// Begins an assertion by one of `allowed` (by any discoverable
    /// credential when empty). `decoys` stand in for an account that has no
    /// passkeys, so the answer does not tell whether it exists.
    pub async fn begin_assertion(
        &self,
        purpose: Purpose,
        binding: Binding<'_>,
        allowed: &[PasskeyRecord],
        decoys: &[Vec<u8>],
    ) -> Result<Challenge<RequestChallengeResponse>, CoreError> {
        let (mut options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(CoreError::internal)?;
        // The browser decides how to ask (modal, or autofill when the page
        // passes `mediation: "conditional"` itself).
        options.mediation = None;
        let listed = allowed
            .iter()
            .map(|p| {
                let id = URL_SAFE_NO_PAD.decode(&p.credential_id).unwrap_or_default();
                (id, transport_hints(&p.transports))
            })
            .chain(decoys.iter().map(|id| (id.clone(), None)));
        options.public_key.allow_credentials = listed
            .map(|(id, transports)| AllowCredentials {
                type_: "public-key".into(),
                id,
                transports,
            })
            .collect();
        let ceremony = self.stash(purpose, binding, &state).await?;
        Ok(Challenge {
            ceremony,
            options,
            expires_in: CEREMONY_TTL.as_secs(),
        })
    }

    /// Finishes an assertion: the ceremony is taken (once), the credential
    /// must be registered to the account the ceremony was begun for (or,
    /// username-less, to the account its user handle names), the signature
    /// must verify with user verification, and the counter must move
    /// forward. Returns the passkey used, updated.
    pub async fn finish_assertion(
        &self,
        handle: &str,
        purpose: Purpose,
        binding: Binding<'_>,
        credential: &PublicKeyCredential,
    ) -> Result<PasskeyRecord, Refusal> {
        let (expected, state): (_, DiscoverableAuthentication) =
            self.claim(handle, purpose, binding).await?;
        let key = credential_key(&credential.raw_id);
        let record = self
            .repo
            .passkey_by_credential(&key)
            .await?
            .ok_or(Refusal::Credential)?;
        let handle_matches = match credential.response.user_handle.as_deref() {
            Some(h) => h == record.user_id.as_bytes().as_slice(),
            // Only a ceremony for a known account may go without it.
            None => expected.is_some(),
        };
        if expected.is_some_and(|u| u != record.user_id) || !handle_matches {
            return Err(Refusal::Credential);
        }
        // A row that fails its seal was not written by this service: refused
        // like an unknown credential (and logged as an error by `open`).
        let mut passkey = self.open(&record).map_err(|_| Refusal::Credential)?;
        if !self.admitted(&record) {
            return Err(Refusal::Credential);
        }
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(credential, state, &passkey)
            .map_err(|e| Refusal::Verification(e.to_string()))?;
        if !result.user_verified() {
            return Err(Refusal::Verification("no user verification".into()));
        }
        passkey.update_credential(&result);
        let (json, mac) = self.close(record.user_id, &passkey)?;
        let now = self.kernel.now_ms();
        let used = PasskeyUse {
            id: record.id,
            sign_count: i64::from(result.counter()),
            backed_up: result.backup_state(),
            credential: &json,
            mac: &mac,
            now,
        };
        if !self.repo.record_passkey_use(&used).await? {
            tracing::warn!(
                target: "gatehouse::security",
                passkey_id = %record.id,
                user_id = %record.user_id,
                "passkey counter did not move forward: possible cloned authenticator; refused"
            );
            return Err(Refusal::Counter);
        }
        Ok(PasskeyRecord {
            sign_count: used.sign_count,
            backed_up: used.backed_up,
            credential: json,
            mac,
            last_used_at: Some(now),
            ..record
        })
    }

    /// Stand-in credential ids for an account without passkeys: the same
    /// for the same address, so asking twice tells nothing either.
    pub fn decoys(&self, address: &str) -> Vec<Vec<u8>> {
        let mac = self.kernel.blind.of("passkey_decoy", address);
        vec![hex::decode(&mac).unwrap_or_default()]
    }
}

/// A registration's state: any authenticator, or (with an allow-list) an
/// attested one of the allowed models.
#[derive(serde::Serialize, serde::Deserialize)]
enum RegistrationState {
    Any(PasskeyRegistration),
    Attested(AttestedPasskeyRegistration),
}

/// The allow-list of `config`, when set: each allowed AAGUID under each
/// root of the PEM file (a model is admitted only through its vendor's
/// certificate).
fn allowed_models(config: &WebauthnConfig) -> Result<Option<AttestationCaList>, CoreError> {
    let Some(path) = &config.attestation_ca_file else {
        return Ok(None);
    };
    let bad = |e: &dyn std::fmt::Display| {
        CoreError::internal(format!(
            "WEBAUTHN_ATTESTATION_CA_FILE `{}`: {e}",
            path.display()
        ))
    };
    let pem = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
    let roots = pem_certificates(&pem);
    if roots.is_empty() {
        return Err(bad(&"no PEM certificate in it"));
    }
    let mut builder = AttestationCaListBuilder::new();
    for root in &roots {
        for aaguid in &config.allowed_aaguids {
            builder
                .insert_device_pem(
                    root.as_bytes(),
                    *aaguid,
                    aaguid.to_string(),
                    Default::default(),
                )
                .map_err(|e| bad(&format!("{e:?}")))?;
        }
    }
    Ok(Some(builder.build()))
}

/// Each `CERTIFICATE` block of a PEM bundle, as its own PEM text.
fn pem_certificates(bundle: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split(BEGIN)
        .skip(1)
        .filter_map(|rest| rest.split_once(END))
        .map(|(body, _)| format!("{BEGIN}{body}{END}\n"))
        .collect()
}

/// Facts of a stored passkey the verifier keeps inside its record:
/// counter, backup eligibility and state.
pub(super) fn facts(passkey: &Passkey) -> (i64, bool, bool) {
    let value = serde_json::to_value(passkey).unwrap_or_default();
    let cred = &value["cred"];
    let counter = cred["counter"].as_i64().unwrap_or(0);
    let eligible = cred["backup_eligible"].as_bool().unwrap_or(false);
    let state = cred["backup_state"].as_bool().unwrap_or(false);
    (counter, eligible, state)
}

/// The transports the browser reported at registration (`usb`,
/// `internal`…), comma-separated: hints for later sign-ins and for the
/// owner's list. The verifier keeps them only for attested credentials, so
/// they are taken from the response itself.
pub fn transports_of(credential: &RegisterPublicKeyCredential) -> String {
    let reported = serde_json::to_value(&credential.response.transports).unwrap_or_default();
    reported
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|t| t.as_str())
                // Names the verifier does not know arrive as `unknown`.
                .filter(|t| *t != "unknown")
                .take(8)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `transports` as stored, back into the hints of `allowCredentials`
/// (unknown names are left out).
fn transport_hints(stored: &str) -> Option<Vec<AuthenticatorTransport>> {
    let hints: Vec<AuthenticatorTransport> = stored
        .split(',')
        .filter_map(|t| serde_json::from_value(serde_json::Value::from(t)).ok())
        .collect();
    (!hints.is_empty()).then_some(hints)
}
