//! Approval links' tokens: 256 bits from the operating system's CSPRNG, sent once (in the email's link), stored only
//! as their SHA-256. The page's form carries a second token derived from the link's (an HMAC keyed by it), checked
//! on POST: a decision comes from the page served for that link.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::present::text::hex;

/// Bytes of randomness in a link token.
pub const TOKEN_BYTES: usize = 32;
/// A token's length as it appears in a link (unpadded base64url).
pub const TOKEN_CHARS: usize = 43;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The operating system could not give random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// The secret part of an approval link. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken([u8; TOKEN_BYTES]);

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(..)")
    }
}

impl LinkToken {
    /// A new token from the CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|error| RandomError(error.to_string()))?;
        Ok(Self(bytes))
    }

    /// Reads a token as it appears in a link; `None` for anything that is not exactly one.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// As it appears in a link.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// What is stored: the SHA-256 of the token, in hex.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.0))
    }

    /// The token the page's form carries for this link.
    pub fn form_token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.form_mac().finalize().into_bytes())
    }

    /// Whether `given` is this link's form token, compared in constant time.
    pub fn accepts_form(&self, given: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(given) {
            Ok(bytes) => self.form_mac().verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    fn form_mac(&self) -> HmacSha256 {
        // An HMAC takes a key of any length; 32 bytes cannot be refused.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(b"sluice approval form v1");
        mac
    }
}

/// Whether two stored hashes are the same, in constant time.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_256_random_bits_that_read_back_from_its_link() {
        let token = LinkToken::generate().expect("random bytes");
        let text = token.encode();
        assert_eq!(text.len(), TOKEN_CHARS);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{text}");
        assert_eq!(LinkToken::parse(&text), Some(token.clone()));
        assert_ne!(LinkToken::generate().expect("random bytes"), token, "two tokens differ");
    }

    #[test]
    fn only_the_hash_is_kept_and_it_does_not_reveal_the_token() {
        let token = LinkToken([7; TOKEN_BYTES]);
        let hash = token.hash();
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token.encode()));
        assert_eq!(format!("{token:?}"), "LinkToken(..)");
    }

    #[test]
    fn a_tampered_truncated_or_padded_token_is_not_a_token() {
        let text = LinkToken([9; TOKEN_BYTES]).encode();
        let mut tampered = text.clone().into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_ne!(LinkToken::parse(&tampered).map(|t| t.hash()), Some(LinkToken([9; TOKEN_BYTES]).hash()));
        assert_eq!(LinkToken::parse(&text[..42]), None);
        assert_eq!(LinkToken::parse(&format!("{text}=")), None);
        assert_eq!(LinkToken::parse(&format!("{}!", &text[..42])), None);
        assert_eq!(LinkToken::parse(""), None);
    }

    #[test]
    fn the_form_token_is_bound_to_its_link() {
        let link = LinkToken([1; TOKEN_BYTES]);
        let other = LinkToken([2; TOKEN_BYTES]);
        assert!(link.accepts_form(&link.form_token()));
        assert!(!link.accepts_form(&other.form_token()));
        assert!(!link.accepts_form(""));
        assert!(!link.accepts_form("not base64 !"));
        assert!(!link.accepts_form(&link.encode()), "the link token is not the form token");
    }

    #[test]
    fn hashes_are_compared_whole() {
        let hash = LinkToken([3; TOKEN_BYTES]).hash();
        assert!(same_hash(&hash, &hash.clone()));
        assert!(!same_hash(&hash, &hash[..63]));
        assert!(!same_hash(&hash, &LinkToken([4; TOKEN_BYTES]).hash()));
    }
}
