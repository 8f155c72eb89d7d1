//! Image references and image patches: the repository of a well-formed reference is a
//! repository of itself (a malformed one such as `nginx::1` may not be); patching
//! keeps every container and its name, changes nothing when the patches apply to none of
//! them, and patching twice is patching once.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use patchpilot_engine::image::{ContainerImage, ImagePatch, applies, patched, repository};

#[derive(Arbitrary, Debug)]
struct Input {
    containers: Vec<(String, String)>,
    patches: Vec<(String, Option<String>)>,
}

/// Whether a reference has the shape `[host[:port]/]path[:tag][@digest]`, each part non-empty
/// and of the characters it may hold.
fn well_formed(reference: &str) -> bool {
    let (name, digest) = reference.split_once('@').unwrap_or((reference, "x"));
    let (name, tag) = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => (&name[..colon], &name[colon + 1..]),
        _ => (name, "x"),
    };
    let word = |text: &str, extra: &[u8]| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || extra.contains(&b))
    };
    let components: Vec<&str> = name.split('/').collect();
    let host_port = components.len() > 1 && word(components[0], b":");
    word(digest, b":")
        && word(tag, b"")
        && components
            .iter()
            .enumerate()
            .all(|(i, c)| word(c, b"") || (i == 0 && host_port))
}

fuzz_target!(|input: Input| {
    let current: Vec<ContainerImage> = input
        .containers
        .into_iter()
        .map(|(container, image)| ContainerImage { container, image })
        .collect();
    let patches: Vec<ImagePatch> = input
        .patches
        .into_iter()
        .map(|(image, container)| ImagePatch { image, container })
        .collect();

    for reference in current
        .iter()
        .map(|c| &c.image)
        .chain(patches.iter().map(|p| &p.image))
    {
        if !well_formed(reference) {
            continue;
        }
        let repo = repository(reference);
        assert_eq!(repository(&repo), repo, "the repository of {reference:?}");
    }

    let after = patched(&current, &patches);
    assert_eq!(after.len(), current.len());
    for (before, after) in current.iter().zip(&after) {
        assert_eq!(before.container, after.container);
        assert_eq!(
            repository(&before.image),
            repository(&after.image),
            "{before:?}"
        );
    }
    if !applies(&current, &patches) {
        assert_eq!(after, current, "patches that apply to none change nothing");
    }
    assert_eq!(
        patched(&after, &patches),
        after,
        "patching twice is patching once"
    );
});
