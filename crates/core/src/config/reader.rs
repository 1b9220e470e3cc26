//! Reads raw variables into typed values, collecting every problem instead of
//! stopping at the first, so an operator fixes a bad environment in one pass.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One configuration problem: the variable and what is wrong with it. The
/// message never repeats a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub var: &'static str,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

/// All problems found while loading; `Display` gives one line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "invalid configuration: {p}")?;
        }
        Ok(())
    }
}

/// A request rate such as `5/minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = || format!("expected `N/second|minute|hour|day`, got `{s}`");
        let (count, unit) = s.split_once('/').ok_or_else(expected)?;
        let count: u32 = count.trim().parse().map_err(|_| expected())?;
        if count == 0 {
            return Err(format!("the count must be at least 1, got `{s}`"));
        }
        let secs = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(expected()),
        };
        Ok(Self {
            count,
            period: Duration::from_secs(secs),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            _ => "day",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Reads variables for every group of settings and collects their problems;
/// [`Reader::finish`] reports them all at once.
pub struct Reader {
    vars: BTreeMap<String, String>,
    problems: Vec<Problem>,
}

/// Names only: values may be secrets.
impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("problems", &self.problems)
            .finish()
    }
}

impl Reader {
    pub fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            problems: Vec::new(),
        }
    }

    /// The configuration read, or every problem found while reading it.
    pub fn finish<T>(self, config: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }

    pub fn problem(&mut self, var: &'static str, message: impl Into<String>) {
        self.problems.push(Problem {
            var,
            message: message.into(),
        });
    }

    /// The trimmed value, `None` when unset or blank.
    pub fn raw(&self, var: &'static str) -> Option<String> {
        self.vars
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn string(&self, var: &'static str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_owned())
    }

    /// Parses a non-secret value; the error names the variable and the value.
    pub fn parse<T>(&mut self, var: &'static str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(var) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(v) => v,
                Err(e) => {
                    self.problem(var, format!("cannot parse `{raw}`: {e}"));
                    default
                }
            },
        }
    }

    pub fn bool(&mut self, var: &'static str, default: bool) -> bool {
        match self.raw(var).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    self.problem(var, format!("expected true or false, got `{v}`"));
                    default
                }
            },
        }
    }

    /// An integer within `min..=max`.
    pub fn int<T>(&mut self, var: &'static str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Display,
    {
        let Some(raw) = self.raw(var) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                self.problem(
                    var,
                    format!("expected a whole number from {min} to {max}, got `{raw}`"),
                );
                default
            }
        }
    }

    /// Comma-separated list, blanks dropped.
    pub fn list(&self, var: &'static str, default: &str) -> Vec<String> {
        self.string(var, default)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            "5/minute".parse::<Rate>().unwrap(),
            Rate {
                count: 5,
                period: Duration::from_secs(60)
            }
        );
        assert_eq!(
            "10 / s".parse::<Rate>().unwrap().period,
            Duration::from_secs(1)
        );
        assert!("0/minute".parse::<Rate>().is_err());
        assert!("five/minute".parse::<Rate>().is_err());
        assert!("5/fortnight".parse::<Rate>().is_err());
        assert!("5".parse::<Rate>().is_err());
        assert_eq!("3/hour".parse::<Rate>().unwrap().to_string(), "3/hour");
    }
}
