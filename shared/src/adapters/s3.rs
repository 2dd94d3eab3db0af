//! `ArtifactStore` on S3: GetObject of `<prefix>/<name>` (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>).
//! `NoSuchKey` is a missing file; a 403 is `Denied` (S3 answers 403, not 404, for a missing key when the caller lacks
//! `s3:ListBucket`); anything else (5xx, throttling, the network) is `Unavailable` and worth another try.

use aws_sdk_s3::Client;
use tracing::instrument;

use crate::contract::ports::{ArtifactError, ArtifactLocation, ArtifactStore};

/// Build artifacts on S3.
#[derive(Debug, Clone)]
pub struct S3Artifacts {
    client: Client,
}

impl S3Artifacts {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl ArtifactStore for S3Artifacts {
    #[instrument(skip(self), fields(bucket = %location.bucket, prefix = %location.prefix))]
    async fn read(&self, location: &ArtifactLocation, name: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        let key = match location.prefix.trim_end_matches('/') {
            "" => name.to_owned(),
            prefix => format!("{prefix}/{name}"),
        };
        match self.client.get_object().bucket(&location.bucket).key(key).send().await {
            Ok(object) => {
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(|error| ArtifactError::Unavailable { source: Box::new(error) })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(error) if error.raw_response().is_some_and(|response| response.status().as_u16() == 403) => {
                Err(ArtifactError::Denied { source: Box::new(error) })
            }
            Err(error) => Err(ArtifactError::Unavailable { source: Box::new(error) }),
        }
    }
}
