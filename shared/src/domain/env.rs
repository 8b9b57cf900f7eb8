//! The environment as settings read it: empty values count as unset, and each kind of value is
//! parsed with a message naming the variable.

use std::time::Duration;

/// A setting that is missing or out of its bounds, named.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// The environment as settings read it: empty values count as unset, each kind of value parsed
/// with a message naming the variable.
pub struct Env<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn get(&self, k: &str) -> Option<String> {
        (self.0)(k).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, k: &str) -> Result<String, ConfigError> {
        self.get(k)
            .ok_or_else(|| ConfigError(format!("{k} is not set")))
    }

    fn number<T: std::str::FromStr>(&self, k: &str, what: &str) -> Result<Option<T>, ConfigError> {
        self.get(k)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| ConfigError(format!("{k} must be {what}")))
            })
            .transpose()
    }

    pub fn ms(&self, k: &str, default: Duration) -> Result<Duration, ConfigError> {
        let v = self.number(k, "a whole number of milliseconds")?;
        Ok(v.map_or(default, Duration::from_millis))
    }

    pub fn secs(&self, k: &str, default: Duration) -> Result<Duration, ConfigError> {
        let v = self.number(k, "a whole number of seconds")?;
        Ok(v.map_or(default, Duration::from_secs))
    }

    /// A whole number where 0 means something (switched off).
    pub fn whole(&self, k: &str, default: u64) -> Result<u64, ConfigError> {
        Ok(self.number(k, "a whole number")?.unwrap_or(default))
    }

    pub fn count(&self, k: &str, default: usize) -> Result<usize, ConfigError> {
        match self.number::<usize>(k, "a positive whole number") {
            Ok(None) => Ok(default),
            Ok(Some(n)) if n > 0 => Ok(n),
            _ => Err(ConfigError(format!("{k} must be a positive whole number"))),
        }
    }

    pub fn flag(&self, k: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(k).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ConfigError(format!("{k} must be true or false"))),
        }
    }
}
