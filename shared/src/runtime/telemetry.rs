//! Logging at the edge: an error is logged once, where it stops, with its whole cause chain (the SDK's reason is
//! usually two or three sources down, and `%error` alone would drop it).

use std::error::Error as StdError;
use std::fmt;

/// Displays an error and each of its sources, joined by `: `. Log with `error = %Chain(&error)`.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Some errors repeat their source's text in their own message; say each thing once.
            if !text.is_empty() && !self.0.to_string().ends_with(&text) {
                write!(f, ": {text}")?;
            }
            source = cause.source();
        }
        Ok(())
    }
}

/// The start of an input that was not understood, for a log line: its JSON, cut to 300 characters.
pub fn excerpt(value: &serde_json::Value) -> String {
    value.to_string().chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the build could not start")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("CodeBuild refused")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_down_to_the_root() {
        let error = Outer(Middle(std::io::Error::other("AccessDeniedException: not authorized")));
        assert_eq!(
            Chain(&error).to_string(),
            "the build could not start: CodeBuild refused: AccessDeniedException: not authorized"
        );
    }
}
