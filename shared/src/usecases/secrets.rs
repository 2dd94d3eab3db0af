//! The webhook's secrets as a function keeps them: read at start-up, and read again when a signature does not match
//! (at most once a minute), so that a rotation takes effect at once on warm instances without a read per delivery.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::github::webhook::{SignatureError, WebhookSecrets, verify_signature};
use secrecy::SecretString;

use crate::contract::ports::{SecretError, SecretSource, WebhookSecretSource};
use crate::runtime::telemetry::Chain;

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

/// One of sluice's own secrets (the status page's key, the GitHub token), read when first needed and again once it
/// is a minute old: a rotation takes effect within a minute, at one read a minute at most. A read that fails keeps
/// the value read before, if there is one.
pub struct KeptSecret<K> {
    source: K,
    kept: Mutex<Option<(Instant, SecretString)>>,
}

impl<K: SecretSource> KeptSecret<K> {
    pub fn new(source: K) -> Self {
        Self { source, kept: Mutex::new(None) }
    }

    pub async fn get(&self) -> Result<SecretString, SecretError> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some((read_at, value)) = &kept
            && read_at.elapsed() < REREAD_AFTER
        {
            return Ok(value.clone());
        }
        match (self.source.read().await, kept) {
            (Ok(value), _) => {
                *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), value.clone()));
                Ok(value)
            }
            (Err(error), Some((_, value))) => {
                warn!(error = %Chain(&error), "secret not read again; keeping the value read before");
                *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), value.clone()));
                Ok(value)
            }
            (Err(error), None) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::github::webhook::sign;

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

    /// A plain secret that can be rotated or cut off; counts its reads.
    struct Plain {
        value: Mutex<Option<String>>,
        reads: AtomicUsize,
    }

    impl SecretSource for &Plain {
        async fn read(&self) -> Result<SecretString, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            match self.value.lock().expect("lock").clone() {
                Some(value) => Ok(SecretString::from(value)),
                None => Err(SecretError::Empty { secret_id: "status".into() }),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_secret_is_read_when_first_needed_then_once_a_minute_and_survives_a_failed_read() {
        use secrecy::ExposeSecret;
        let secret = Plain { value: Mutex::new(None), reads: AtomicUsize::new(0) };
        let kept = KeptSecret::new(&secret);
        assert_eq!(secret.reads.load(Ordering::SeqCst), 0, "nothing is read before it is needed");
        // An unreadable secret with nothing kept is an error, and the next request reads again.
        assert!(kept.get().await.is_err());
        *secret.value.lock().expect("lock") = Some("first".into());
        assert_eq!(kept.get().await.expect("read").expose_secret(), "first");
        assert_eq!(kept.get().await.expect("kept").expose_secret(), "first");
        assert_eq!(secret.reads.load(Ordering::SeqCst), 2);

        // Rotated: the new value after a minute.
        *secret.value.lock().expect("lock") = Some("second".into());
        assert_eq!(kept.get().await.expect("kept").expose_secret(), "first");
        tokio::time::advance(REREAD_AFTER).await;
        assert_eq!(kept.get().await.expect("read").expose_secret(), "second");

        // Unreadable later: the value read before serves, and the next read waits another minute.
        *secret.value.lock().expect("lock") = None;
        tokio::time::advance(REREAD_AFTER).await;
        assert_eq!(kept.get().await.expect("kept").expose_secret(), "second");
        assert_eq!(kept.get().await.expect("kept").expose_secret(), "second");
        assert_eq!(secret.reads.load(Ordering::SeqCst), 4);
    }
}
