//! Container image references, and which containers an image patch replaces.

use serde::{Deserialize, Serialize};

/// A container and its image, as recorded before an update and restored by a rollback.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContainerImage {
    /// The container's name.
    pub container: String,
    /// Its image reference.
    pub image: String,
}

/// A replacement: the new image for every container whose image has the same repository
/// (only containers named `container`, when given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePatch {
    /// The new image reference, with a tag or digest.
    pub image: String,
    /// Only containers with this name.
    pub container: Option<String>,
}

/// The repository of an image reference, normalised as the container runtime does: Docker
/// Hub references get `docker.io/` (and `library/` for official images); the tag and digest
/// are dropped. `nginx:1.27` and `docker.io/library/nginx@sha256:…` share `docker.io/library/nginx`.
pub fn repository(reference: &str) -> String {
    let without_digest = reference
        .split_once('@')
        .map_or(reference, |(name, _)| name);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let name = match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    match name.split_once('/') {
        None => format!("docker.io/library/{name}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            name.to_owned()
        }
        Some(_) => format!("docker.io/{name}"),
    }
}

/// Whether `patch` replaces the image of `container`, whose image has repository `repo`:
/// same repository, and the container's name if the patch names one.
fn replaces(patch: &ImagePatch, container: &ContainerImage, repo: &str) -> bool {
    patch
        .container
        .as_ref()
        .is_none_or(|name| *name == container.container)
        && repository(&patch.image) == repo
}

/// Whether `patches` replace the image of at least one of the containers `current`. A
/// workload none of whose containers they replace is not a target of the patch.
pub fn applies(current: &[ContainerImage], patches: &[ImagePatch]) -> bool {
    current.iter().any(|container| {
        let repo = repository(&container.image);
        patches
            .iter()
            .any(|patch| replaces(patch, container, &repo))
    })
}

/// The images after applying `patches` to `current`: each container takes the image of the
/// first patch with its repository (and, if the patch names one, its name). Containers no
/// patch matches keep their image.
pub fn patched(current: &[ContainerImage], patches: &[ImagePatch]) -> Vec<ContainerImage> {
    current
        .iter()
        .map(|container| {
            let repo = repository(&container.image);
            let replacement = patches
                .iter()
                .find(|patch| replaces(patch, container, &repo));
            ContainerImage {
                container: container.container.clone(),
                image: replacement.map_or_else(|| container.image.clone(), |p| p.image.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_normalised() {
        let cases = [
            ("nginx", "docker.io/library/nginx"),
            ("nginx:1.27", "docker.io/library/nginx"),
            ("library/nginx:1.27", "docker.io/library/nginx"),
            ("docker.io/library/nginx:1.27.4", "docker.io/library/nginx"),
            ("bitnami/redis:7", "docker.io/bitnami/redis"),
            ("ghcr.io/acme/web:1.4.2", "ghcr.io/acme/web"),
            ("registry:5000/app:1.2", "registry:5000/app"),
            ("registry:5000/app", "registry:5000/app"),
            ("localhost/app:dev", "localhost/app"),
            ("ghcr.io/acme/web@sha256:abcd", "ghcr.io/acme/web"),
            ("ghcr.io/acme/web:1.4@sha256:abcd", "ghcr.io/acme/web"),
        ];
        for (reference, expected) in cases {
            assert_eq!(repository(reference), expected, "{reference}");
        }
    }

    #[test]
    fn patches_replace_matching_containers_only() {
        let current = vec![
            ContainerImage {
                container: "web".into(),
                image: "nginx:1.25-alpine".into(),
            },
            ContainerImage {
                container: "sidecar".into(),
                image: "docker.io/library/nginx:1.25".into(),
            },
            ContainerImage {
                container: "app".into(),
                image: "ghcr.io/acme/app:3".into(),
            },
        ];
        let all = [ImagePatch {
            image: "docker.io/library/nginx:1.27.4".into(),
            container: None,
        }];
        let images: Vec<String> = patched(&current, &all)
            .into_iter()
            .map(|c| c.image)
            .collect();
        assert_eq!(
            images,
            [
                "docker.io/library/nginx:1.27.4",
                "docker.io/library/nginx:1.27.4",
                "ghcr.io/acme/app:3"
            ]
        );
        let only_web = [ImagePatch {
            image: "nginx:1.27.4".into(),
            container: Some("web".into()),
        }];
        let images: Vec<String> = patched(&current, &only_web)
            .into_iter()
            .map(|c| c.image)
            .collect();
        assert_eq!(
            images,
            [
                "nginx:1.27.4",
                "docker.io/library/nginx:1.25",
                "ghcr.io/acme/app:3"
            ]
        );
    }

    #[test]
    fn a_patch_applies_when_it_replaces_some_container() {
        let container = |name: &str, image: &str| ContainerImage {
            container: name.into(),
            image: image.into(),
        };
        let patch = |image: &str, name: Option<&str>| ImagePatch {
            image: image.into(),
            container: name.map(Into::into),
        };
        let web = [
            container("web", "nginx:1.25"),
            container("cache", "redis:7"),
        ];
        let redis_only = [container("cache", "docker.io/library/redis:7.4.1")];
        let nginx = [patch("docker.io/library/nginx:1.27.4", None)];
        assert!(applies(&web, &nginx));
        assert!(!applies(&redis_only, &nginx));
        assert!(!applies(&[], &nginx));
        assert!(!applies(&web, &[]));
        // The container's name counts when the patch names one.
        assert!(applies(&web, &[patch("nginx:1.27.4", Some("web"))]));
        assert!(!applies(&web, &[patch("nginx:1.27.4", Some("sidecar"))]));
        // Any of several patches will do; already carrying the new image still applies.
        assert!(applies(
            &redis_only,
            &[nginx[0].clone(), patch("redis:7.4.2", None)]
        ));
        assert!(applies(&[container("web", "nginx:1.27.4")], &nginx));
    }
}
