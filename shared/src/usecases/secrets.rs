//! The webhook's secrets as a function keeps them: read at start-up, and read again when a signature does not match
//! (at most once a minute), so that a rotation takes effect at once on warm instances without a read per delivery.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::github::{SignatureError, WebhookSecrets, verify_signature};
use crate::ports::{SecretError, WebhookSecretSource};
use crate::telemetry::Chain;

/// The shortest time between two reads of the secret.
pub const REREAD_AFTER: Duration = Duration::from_secs(60);

/// The webhook's secrets, kept and refreshed.
pub struct WebhookKeys<K> {
    source: K,
    kept: Mutex<(Instant, Arc<WebhookSecrets>)>,
}

impl<K: WebhookSecretSource> WebhookKeys<K> {
    /// Reads the secrets once: a function that cannot read them fails at start-up, naming the secret.
    pub async fn load(source: K) -> Result<Self, SecretError> {
        let secrets = source.read().await?;
        Ok(Self { source, kept: Mutex::new((Instant::now(), Arc::new(secrets))) })
    }

    fn kept(&self) -> (Instant, Arc<WebhookSecrets>) {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        (kept.0, Arc::clone(&kept.1))
    }

    /// Verifies a delivery's signature; on a mismatch, reads the secret again (if the last read is a minute old) and
    /// verifies once more.
    pub async fn verify(&self, body: &[u8], header: Option<&str>, now: DateTime<Utc>) -> Result<(), SignatureError> {
        let (read_at, secrets) = self.kept();
        match verify_signature(&secrets, body, header, now) {
            Err(SignatureError::Mismatch) if read_at.elapsed() >= REREAD_AFTER => {}
            other => return other,
        }
        // Whatever the read gives, the next one waits a minute: a flood of forged deliveries cannot make a read each.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner).0 = Instant::now();
        match self.source.read().await {
            Ok(fresh) => {
                info!("webhook secret read again after a signature mismatch");
                let fresh = Arc::new(fresh);
                self.kept.lock().unwrap_or_else(PoisonError::into_inner).1 = Arc::clone(&fresh);
                verify_signature(&fresh, body, header, now)
            }
            Err(error) => {
                warn!(error = %Chain(&error), "webhook secret not read again; keeping the one read before");
                Err(SignatureError::Mismatch)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use secrecy::SecretString;

    use super::*;
    use crate::github::sign;

    /// A secret that an operator rotates; counts its reads.
    struct Rotated {
        value: Mutex<String>,
        reads: AtomicUsize,
    }

    impl WebhookSecretSource for &Rotated {
        async fn read(&self) -> Result<WebhookSecrets, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(WebhookSecrets::new([SecretString::from(self.value.lock().expect("lock").clone())]))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_secret_takes_effect_on_a_warm_instance_with_at_most_one_read_a_minute() {
        let secret = Rotated { value: Mutex::new("old".into()), reads: AtomicUsize::new(0) };
        let keys = WebhookKeys::load(&secret).await.expect("read");
        let body = b"{}";
        let now = Utc::now();
        assert_eq!(keys.verify(body, Some(&sign("old", body)), now).await, Ok(()));

        // GIVEN the secret is rotated, and GitHub signs with the new one
        *secret.value.lock().expect("lock") = "new".into();
        // WHEN a delivery comes within the minute after the last read, THEN it is refused without reading again
        assert_eq!(keys.verify(body, Some(&sign("new", body)), now).await, Err(SignatureError::Mismatch));
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1);
        // WHEN one comes a minute later, THEN the secret is read again and the delivery verifies
        tokio::time::advance(REREAD_AFTER).await;
        assert_eq!(keys.verify(body, Some(&sign("new", body)), now).await, Ok(()));
        assert_eq!(secret.reads.load(Ordering::SeqCst), 2);
        // AND forged deliveries right after do not make it read again
        for _ in 0..5 {
            assert_eq!(keys.verify(body, Some(&sign("forged", body)), now).await, Err(SignatureError::Mismatch));
        }
        assert_eq!(secret.reads.load(Ordering::SeqCst), 2);
    }
}
