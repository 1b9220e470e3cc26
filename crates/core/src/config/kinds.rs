//! The kinds of settings: how a variable is read (bounds, list syntax,
//! secrets), shown (secrets redacted) and documented.

use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::reader::Reader;
use super::settings::{Kind, NO_DEFAULT, REDACTED, secret_state};
use super::view::redact_url;

fn code(value: impl Display) -> String {
    format!("`{value}`")
}

fn code_or_none(list: &str) -> String {
    if list.is_empty() {
        NO_DEFAULT.to_owned()
    } else {
        code(list)
    }
}

/// A whole number from `.0` to `.1`.
#[derive(Debug, Clone, Copy)]
pub struct Int<T>(pub T, pub T);

impl<T> Kind<T> for Int<T>
where
    T: FromStr + PartialOrd + Copy + Display + Into<Value>,
{
    type Default = T;

    fn read(&self, r: &mut Reader, var: &'static str, default: T) -> T {
        r.int(var, default, self.0, self.1)
    }

    fn show(&self, value: &T) -> Value {
        (*value).into()
    }

    fn describe(&self, default: &T) -> String {
        code(default)
    }
}

/// A whole number where `0` means "never" (`None`).
#[derive(Debug, Clone, Copy)]
pub struct ZeroIsNone<T>(pub Int<T>);

impl<T> Kind<Option<T>> for ZeroIsNone<T>
where
    T: FromStr + PartialOrd + Copy + Display + Into<Value> + Default,
{
    type Default = T;

    fn read(&self, r: &mut Reader, var: &'static str, default: T) -> Option<T> {
        let value = self.0.read(r, var, default);
        (value != T::default()).then_some(value)
    }

    fn show(&self, value: &Option<T>) -> Value {
        value.unwrap_or_default().into()
    }

    fn describe(&self, default: &T) -> String {
        code(default)
    }
}

/// A duration written as a whole number of `unit` seconds, within bounds.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    unit: u64,
    min: u64,
    max: u64,
}

impl Span {
    pub const fn secs(min: u64, max: u64) -> Self {
        Self { unit: 1, min, max }
    }

    pub const fn minutes(min: u64, max: u64) -> Self {
        Self { unit: 60, min, max }
    }

    pub const fn days(min: u64, max: u64) -> Self {
        Self {
            unit: 86_400,
            min,
            max,
        }
    }
}

impl Kind<Duration> for Span {
    type Default = u64;

    fn read(&self, r: &mut Reader, var: &'static str, default: u64) -> Duration {
        Duration::from_secs(self.unit * r.int(var, default, self.min, self.max))
    }

    fn show(&self, value: &Duration) -> Value {
        Value::from(value.as_secs() / self.unit)
    }

    fn describe(&self, default: &u64) -> String {
        code(default)
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
#[derive(Debug, Clone, Copy)]
pub struct Flag;

impl Kind<bool> for Flag {
    type Default = bool;

    fn read(&self, r: &mut Reader, var: &'static str, default: bool) -> bool {
        r.bool(var, default)
    }

    fn show(&self, value: &bool) -> Value {
        Value::from(*value)
    }

    fn describe(&self, default: &bool) -> String {
        code(default)
    }
}

/// Free text.
#[derive(Debug, Clone, Copy)]
pub struct Text;

impl Kind<String> for Text {
    type Default = &'static str;

    fn read(&self, r: &mut Reader, var: &'static str, default: &'static str) -> String {
        r.string(var, default)
    }

    fn show(&self, value: &String) -> Value {
        Value::from(value.as_str())
    }

    fn describe(&self, default: &&'static str) -> String {
        code(default)
    }
}

/// A comma-separated list of text.
#[derive(Debug, Clone, Copy)]
pub struct List;

impl Kind<Vec<String>> for List {
    type Default = &'static str;

    fn read(&self, r: &mut Reader, var: &'static str, default: &'static str) -> Vec<String> {
        r.list(var, default)
    }

    fn show(&self, value: &Vec<String>) -> Value {
        Value::from(value.clone())
    }

    fn describe(&self, default: &&'static str) -> String {
        code_or_none(default)
    }
}

/// A comma-separated list whose items `.0` parses; each bad item is a
/// problem of its own. Items are shown by `Display`.
#[derive(Debug, Clone, Copy)]
pub struct Each<T>(pub fn(&str) -> Result<T, String>);

impl<T: Display> Kind<Vec<T>> for Each<T> {
    type Default = &'static str;

    fn read(&self, r: &mut Reader, var: &'static str, default: &'static str) -> Vec<T> {
        let mut items = Vec::new();
        for raw in r.list(var, default) {
            match (self.0)(&raw) {
                Ok(item) => items.push(item),
                Err(e) => r.problem(var, e),
            }
        }
        items
    }

    fn show(&self, value: &Vec<T>) -> Value {
        value.iter().map(ToString::to_string).collect()
    }

    fn describe(&self, default: &&'static str) -> String {
        code_or_none(default)
    }
}

/// A file or directory: one (`PathBuf`), optional (`Option<PathBuf>`) or a
/// comma-separated list (`Vec<PathBuf>`).
#[derive(Debug, Clone, Copy)]
pub struct Path;

impl Kind<PathBuf> for Path {
    type Default = PathBuf;

    fn read(&self, r: &mut Reader, var: &'static str, default: PathBuf) -> PathBuf {
        r.raw(var).map_or(default, PathBuf::from)
    }

    fn show(&self, value: &PathBuf) -> Value {
        Value::from(value.display().to_string())
    }

    fn describe(&self, default: &PathBuf) -> String {
        code(default.display())
    }
}

impl Kind<Option<PathBuf>> for Path {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> Option<PathBuf> {
        r.raw(var).map(PathBuf::from)
    }

    fn show(&self, value: &Option<PathBuf>) -> Value {
        value
            .as_ref()
            .map_or(Value::Null, |p| Value::from(p.display().to_string()))
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}

impl Kind<Vec<PathBuf>> for Path {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> Vec<PathBuf> {
        r.list(var, "").into_iter().map(PathBuf::from).collect()
    }

    fn show(&self, value: &Vec<PathBuf>) -> Value {
        value.iter().map(|p| p.display().to_string()).collect()
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}

/// Anything `FromStr` that shows itself with `Display` (addresses, rates).
#[derive(Debug, Clone, Copy)]
pub struct Parsed;

impl<T> Kind<T> for Parsed
where
    T: FromStr + Display,
    T::Err: Display,
{
    type Default = T;

    fn read(&self, r: &mut Reader, var: &'static str, default: T) -> T {
        r.parse(var, default)
    }

    fn show(&self, value: &T) -> Value {
        Value::from(value.to_string())
    }

    fn describe(&self, default: &T) -> String {
        code(default)
    }
}

/// An enumeration read by name, ignoring case.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every value with its name.
    const NAMES: &'static [(Self, &'static str)];

    /// The case a value is compared (and quoted in problems) in.
    fn fold(raw: &str) -> String {
        raw.to_ascii_lowercase()
    }

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(value, _)| *value == self)
            .map_or("", |(_, name)| name)
    }
}

/// One of the names of a [`Choice`].
#[derive(Debug, Clone, Copy)]
pub struct OneOf;

impl<E: Choice> Kind<E> for OneOf {
    type Default = E;

    fn read(&self, r: &mut Reader, var: &'static str, default: E) -> E {
        let given = E::fold(&r.string(var, default.name()));
        if let Some((value, _)) = E::NAMES.iter().find(|(_, name)| E::fold(name) == given) {
            return *value;
        }
        let names: Vec<&str> = E::NAMES.iter().map(|(_, name)| *name).collect();
        r.problem(
            var,
            format!("expected {}, got `{given}`", names.join(" or ")),
        );
        default
    }

    fn show(&self, value: &E) -> Value {
        Value::from(value.name())
    }

    fn describe(&self, default: &E) -> String {
        code(default.name())
    }
}

/// A secret of at least `.0` bytes: one (`SecretString`, empty when unset)
/// or a comma-separated list. Problems never quote it.
#[derive(Debug, Clone, Copy)]
pub struct Secret(pub usize);

impl Kind<SecretString> for Secret {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> SecretString {
        match r.raw(var) {
            Some(s) if s.len() >= self.0 => SecretString::from(s),
            Some(_) => {
                r.problem(var, format!("must be at least {} bytes", self.0));
                SecretString::default()
            }
            None => SecretString::default(),
        }
    }

    fn show(&self, value: &SecretString) -> Value {
        secret_state(!value.expose_secret().is_empty())
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}

impl Kind<Vec<SecretString>> for Secret {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> Vec<SecretString> {
        let secrets: Vec<SecretString> = r
            .list(var, "")
            .into_iter()
            .map(SecretString::from)
            .collect();
        if secrets.iter().any(|s| s.expose_secret().len() < self.0) {
            r.problem(var, format!("every key must be at least {} bytes", self.0));
        }
        secrets
    }

    fn show(&self, value: &Vec<SecretString>) -> Value {
        value.iter().map(|_| REDACTED).collect()
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}

/// A connection URL with one of `schemes`; it may hold credentials, so it is
/// kept secret and shown through [`redact_url`].
#[derive(Debug, Clone, Copy)]
pub struct Url {
    pub schemes: &'static [&'static str],
    /// The problem when the scheme is wrong.
    pub expected: &'static str,
}

impl Url {
    fn check(&self, r: &mut Reader, var: &'static str, url: &str) {
        if !self.schemes.iter().any(|s| url.starts_with(s)) {
            r.problem(var, self.expected);
        }
    }
}

impl Kind<Option<SecretString>> for Url {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> Option<SecretString> {
        let url = r.raw(var)?;
        self.check(r, var, &url);
        Some(SecretString::from(url))
    }

    fn show(&self, value: &Option<SecretString>) -> Value {
        value
            .as_ref()
            .map_or(Value::Null, |u| Value::from(redact_url(u.expose_secret())))
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}

impl Kind<SecretString> for Url {
    type Default = String;

    fn read(&self, r: &mut Reader, var: &'static str, default: String) -> SecretString {
        let url = r.raw(var).unwrap_or(default);
        self.check(r, var, &url);
        SecretString::from(url)
    }

    fn show(&self, value: &SecretString) -> Value {
        Value::from(redact_url(value.expose_secret()))
    }

    fn describe(&self, default: &String) -> String {
        code(redact_url(default))
    }
}
