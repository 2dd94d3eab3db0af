//! Where sluice signs in to GitHub: its API, and the stack's GitHub secret (a token, or a GitHub App's JSON), read
//! when first needed and kept.

use crate::contract::ports::{SecretError, SecretSource};
use crate::github::sign_in::{CredentialsError, GitHubCredentials};
use crate::usecases::KeptSecret;

/// GitHub's API, and the credentials to sign in to it with.
pub struct GitHubAccess<G, K> {
    pub github: G,
    /// A token or a GitHub App, with the permissions the caller's requests need.
    pub credentials: KeptSecret<K>,
}

/// Why sluice could not sign in to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// For now, maybe: Secrets Manager did not answer.
    #[error("the GitHub secret could not be read")]
    Unreadable(#[source] SecretError),
    /// Until someone fixes the secret.
    #[error("sluice cannot sign in to GitHub")]
    Unusable(#[source] CredentialsError),
}

impl<G, K: SecretSource> GitHubAccess<G, K> {
    /// The credentials the secret holds.
    pub async fn sign_in(&self) -> Result<GitHubCredentials, SignInError> {
        let secret = self.credentials.get().await.map_err(SignInError::Unreadable)?;
        GitHubCredentials::parse(&secret).map_err(SignInError::Unusable)
    }
}
