//! `ImageRegistry` on ECR: DescribeImages of the repository's tag in the image's registry and region
//! (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html>). `ImageNotFoundException`
//! and `RepositoryNotFoundException` are no such image; `AccessDeniedException` is `Denied`; a request ECR cannot
//! take as asked (`InvalidParameterException`, `ValidationException`; `UnrecognizedClientException` from a registry
//! in a partition the credentials do not reach), or one that could not be built, is `Refused`; anything else
//! (throttling, 5xx, the network) is `Unavailable` and worth another try.

use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::ImageIdentifier;
use tracing::instrument;

use crate::contract::ports::{ImageRegistry, RegistryError};
use crate::deploy::image::EcrImage;

/// What ECR answers for a request it will never take as asked (a request that could not be built is one too).
const REFUSED: [&str; 3] = ["InvalidParameterException", "ValidationException", "UnrecognizedClientException"];

/// Images in ECR.
#[derive(Debug, Clone)]
pub struct EcrImages {
    client: Client,
}

impl EcrImages {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl ImageRegistry for EcrImages {
    #[instrument(skip(self), fields(repository = %image.repository, tag = %image.tag))]
    async fn digest(&self, image: &EcrImage) -> Result<Option<String>, RegistryError> {
        let asked = self
            .client
            .describe_images()
            .registry_id(&image.registry)
            .repository_name(&image.repository)
            .image_ids(ImageIdentifier::builder().image_tag(&image.tag).build())
            .customize()
            .config_override(
                aws_sdk_ecr::config::Builder::default().region(aws_sdk_ecr::config::Region::new(image.region.clone())),
            )
            .send()
            .await;
        match asked {
            Ok(answer) => Ok(answer.image_details().first().and_then(|d| d.image_digest()).map(str::to_owned)),
            Err(error) => match error.as_service_error().and_then(ProvideErrorMetadata::code) {
                Some("ImageNotFoundException" | "RepositoryNotFoundException") => Ok(None),
                Some("AccessDeniedException") => Err(RegistryError::Denied { source: Box::new(error) }),
                _ if super::refusal(&error, &REFUSED).is_some() => {
                    Err(RegistryError::Refused { source: Box::new(error) })
                }
                _ => Err(RegistryError::Unavailable { source: Box::new(error) }),
            },
        }
    }
}
