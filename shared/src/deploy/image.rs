//! Which image a build made, read from its `imageDetail.json`'s `ImageURI`: already pinned by digest
//! (`repository@sha256:...`), a tag in an ECR repository (which sluice pins by looking its digest up once, when the
//! build ends), or a tag elsewhere (deployed as named). Pure.

/// What an `ImageURI` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `name@sha256:<64 hex digits>`: the image's bytes, whatever its tags do later.
    Pinned,
    /// A tag (or no tag: `latest`) in an ECR repository.
    EcrTag(EcrImage),
    /// A tag in a registry other than ECR: sluice cannot look its digest up.
    ElsewhereByTag,
    /// A reference no registry could serve, and why: a digest that is not one (`@sha256:` without 64 lowercase
    /// hexadecimal digits, or another algorithm), an empty or malformed tag, a repository ECR could not hold.
    Malformed(String),
}

/// A tagged image in ECR: `<registry>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>[:<tag>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    /// The registry's host, as the URI gives it.
    pub host: String,
    /// The registry's id: the AWS account that owns it.
    pub registry: String,
    pub region: String,
    pub repository: String,
    pub tag: String,
}

impl EcrImage {
    /// The same image pinned by `digest` (`sha256:...`), as ECS pulls it.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.host, self.repository)
    }
}

impl ImageRef {
    /// Reads `uri` as Docker does: the registry host before the first `/`, the tag after the last `:` of the rest,
    /// the digest after `@`.
    pub fn parse(uri: &str) -> Self {
        if let Some((_, digest)) = uri.split_once('@') {
            return match digest.strip_prefix("sha256:") {
                Some(hex)
                    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
                {
                    ImageRef::Pinned
                }
                _ => ImageRef::Malformed(format!(
                    "it names digest {digest}, which is not a sha256 digest (sha256: and 64 lowercase hexadecimal digits)"
                )),
            };
        }
        let Some((host, path)) = uri.split_once('/') else { return ImageRef::ElsewhereByTag };
        let Some((registry, region)) = ecr_host(host) else { return ImageRef::ElsewhereByTag };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) => (repository, tag),
            None => (path, "latest"),
        };
        // https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageIdentifier.html and
        // API_CreateRepository.html: a tag of 1 to 300 characters, a repository of lowercase names joined by `/`.
        let tag_ok = (1..=300).contains(&tag.len())
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !tag_ok {
            return ImageRef::Malformed(format!("its tag {tag:?} is not one ECR holds (letters, digits, _ . -)"));
        }
        let name_ok = |name: &str| {
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
        };
        if repository.len() > 256 || !repository.split('/').all(name_ok) {
            return ImageRef::Malformed(format!(
                "its repository {repository:?} is not one ECR holds (lowercase names joined by /)"
            ));
        }
        ImageRef::EcrTag(EcrImage {
            host: host.to_owned(),
            registry: registry.to_owned(),
            region: region.to_owned(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

/// The registry id and region of an ECR registry's host
/// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html>), or `None` for another registry.
fn ecr_host(host: &str) -> Option<(&str, &str)> {
    let rest = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (registry, rest) = rest.split_once('.')?;
    let region = rest.strip_prefix("dkr.ecr.").or_else(|| rest.strip_prefix("dkr.ecr-fips."))?;
    let registry_ok = registry.len() == 12 && registry.bytes().all(|b| b.is_ascii_digit());
    let region_ok =
        !region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (registry_ok && region_ok).then_some((registry, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4e2f0a6c7b1d9e8f3a2b5c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";

    #[test]
    fn a_tag_in_ecr_is_read_with_its_registry_region_repository_and_tag() {
        let uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:9b2c5f0";
        let ImageRef::EcrTag(image) = ImageRef::parse(uri) else { panic!("not ECR: {uri}") };
        assert_eq!(
            (image.registry.as_str(), image.region.as_str(), image.repository.as_str(), image.tag.as_str()),
            ("123456789012", "eu-west-1", "team/web", "9b2c5f0")
        );
        assert_eq!(image.pinned(DIGEST), format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web@{DIGEST}"));
        let latest = ImageRef::parse("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/web");
        assert!(
            matches!(latest, ImageRef::EcrTag(EcrImage { ref tag, ref region, .. }) if tag == "latest" && region == "us-gov-west-1")
        );
        let china = ImageRef::parse("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/web:1");
        assert!(matches!(china, ImageRef::EcrTag(EcrImage { ref region, .. }) if region == "cn-north-1"));
    }

    #[test]
    fn a_digest_pins_the_image_and_a_digest_that_is_not_one_is_told() {
        let pinned = format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@{DIGEST}");
        assert_eq!(ImageRef::parse(&pinned), ImageRef::Pinned);
        assert_eq!(ImageRef::parse(&format!("ghcr.io/acme/web:1@{DIGEST}")), ImageRef::Pinned);
        let ImageRef::Malformed(said) = ImageRef::parse("web@sha256:4e2f") else { panic!("a short digest") };
        assert!(said.contains("names digest sha256:4e2f, which is not a sha256 digest"), "{said}");
        let upper = format!("web@{}", DIGEST.to_uppercase().replace("SHA256", "sha256"));
        assert!(matches!(ImageRef::parse(&upper), ImageRef::Malformed(_)));
        assert!(matches!(ImageRef::parse("web@md5:0123"), ImageRef::Malformed(_)));
    }

    #[test]
    fn an_ecr_tag_or_repository_ecr_could_not_hold_is_malformed_not_looked_up() {
        let host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        for (uri, said) in [
            (format!("{host}/web:"), "its tag \"\" is not one ECR holds"),
            (format!("{host}/web:v1/x"), "is not one ECR holds"),
            (format!("{host}/Web:v1"), "its repository \"Web\" is not one ECR holds"),
            (format!("{host}/team//web:v1"), "its repository \"team//web\""),
        ] {
            let ImageRef::Malformed(found) = ImageRef::parse(&uri) else { panic!("{uri} read as well-formed") };
            assert!(found.contains(said), "{uri}: {found}");
        }
    }

    #[test]
    fn a_tag_outside_ecr_is_deployed_as_named() {
        for uri in [
            "nginx:1.27",
            "ghcr.io/acme/web:9b2c5f0",
            "localhost:5000/web:1",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example/web:1",
            "12345.dkr.ecr.eu-west-1.amazonaws.com/web:1",
        ] {
            assert_eq!(ImageRef::parse(uri), ImageRef::ElsewhereByTag, "{uri}");
        }
    }
}
