//! Why caller input was refused, before any I/O. The messages name the field and never quote
//! the values a request carried (encrypt_codes, openids).

/// Bad input found by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Malformed, missing or unknown fields, bad values (400).
    #[error("{0}")]
    Invalid(String),
    /// A body or list over the documented limits (413).
    #[error("{0}")]
    TooLarge(String),
}

impl InputError {
    pub fn invalid(message: impl Into<String>) -> Self {
        InputError::Invalid(message.into())
    }
}

/// Caller-supplied text quoted in a message is cut short.
pub fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
