//! The one duration syntax of flags, the config file and the web config file: humantime's
//! (`90d`, `15m`, `1h30m`, `500ms`), which also reads Prometheus's and Go's common forms.

use std::time::Duration;

/// A duration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all.
    #[error("invalid duration {text:?}: {reason} (expected e.g. 90d, 15m, 1h30m)")]
    Invalid {
        /// What was written.
        text: String,
        /// Why humantime refused it.
        reason: String,
    },
    /// Zero where only a positive duration makes sense.
    #[error("the duration must be greater than zero")]
    Zero,
}

/// Parses a duration; `0` alone is zero.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| DurationError::Invalid {
        text: text.to_owned(),
        reason: e.to_string(),
    })
}

/// Parses a duration greater than zero.
pub fn parse_positive(text: &str) -> Result<Duration, DurationError> {
    match parse(text)? {
        d if d.is_zero() => Err(DurationError::Zero),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse(" 500ms "), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse_positive("0s"), Err(DurationError::Zero));
        let e = parse("soon").unwrap_err().to_string();
        assert!(e.starts_with("invalid duration \"soon\": "), "{e}");
    }
}
