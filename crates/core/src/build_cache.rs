//! Where an image's BuildKit cache lives: one registry cache reference per image and branch,
//! in the image's own repository, under a reserved tag.
//!
//! `<image>:buildcache-<branch>` holds the `mode=max` cache of the last build of that branch
//! (every stage's layers, not only the final image's), written with `image-manifest=true` and
//! OCI media types so that ECR stores it like an image. Why this naming:
//! - **the image's own repository**: the credentials that push the image push its cache; ECR
//!   needs no second repository created; Docker Hub no second (possibly private) repository;
//! - **per branch**: a feature branch's build does not overwrite `main`'s cache with its own
//!   layers (each cache manifest replaces the previous one of its reference);
//! - **reads fall back to the default branch**: the first build of a new branch, and every tag
//!   build, reads the default branch's cache too, so a release tag cut from `main` hits the layers
//!   `main`'s last build left. Tag builds write no cache: a tag is built once, and writing would
//!   either pile up a cache per release or overwrite the branch's cache with an older commit's.
//!
//! Builds that make one platform of an image (CodeBuild's native per-platform builds) append
//! `-<os>-<arch>[-<variant>]` to the reference (the buildspec does, from `SLIPWAY_PART_PLATFORM`):
//! two platform builds running at once must not overwrite each other's cache. The branch part
//! leaves room for that suffix within Docker's 128-character tag limit.
//!
//! The same builds push their one-platform image under `buildcache-platform-<os>-<arch>` (a
//! handle for the push only: the merge names the image by digest, so a later build moving that
//! tag changes nothing).
//!
//! Tags starting with [`CACHE_TAG_PREFIX`] are reserved: `build_env` refuses to push an image
//! tag that could overwrite a cache (a branch named `buildcache-main` would).

use sha2::{Digest, Sha256};

use crate::refs::{RefKind, split_ref};

/// Every cache tag starts with this.
pub const CACHE_TAG_PREFIX: &str = "buildcache-";

/// Characters kept free at the end of a cache tag for a platform suffix (`-linux-arm64`).
pub const PLATFORM_SUFFIX_ROOM: usize = 20;

/// The cache references of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRefs {
    /// Written by the build (`--cache-to`); `None` for tag builds.
    pub to: Option<String>,
    /// Read by the build (`--cache-from`), in order; a reference that does not exist yet is
    /// skipped by BuildKit with a warning.
    pub from: Vec<String>,
}

/// The cache tag of a branch: `buildcache-` and the branch's image tag (every character outside
/// `[A-Za-z0-9_.-]` as `-`, as the planner tags branches); a branch too long for the tag limit
/// keeps its first characters and a hash of the whole name, so two long branches do not share a
/// cache by accident.
pub fn cache_tag(branch: &str) -> String {
    let max = 128 - PLATFORM_SUFFIX_ROOM - CACHE_TAG_PREFIX.len();
    // The branch tag's own rule (`feature/x` → `feature-x`), then room for the platform suffix.
    let slug = crate::plan::naming::sanitize_tag(branch).unwrap_or_default();
    if !slug.is_empty() && slug.len() <= max {
        return format!("{CACHE_TAG_PREFIX}{slug}");
    }
    let hash = hex::encode(Sha256::digest(branch.as_bytes()));
    let keep = slug.len().min(max - 17);
    format!("{CACHE_TAG_PREFIX}{}-{}", &slug[..keep], &hash[..16])
}

/// The cache references of a build of `image` (a validated name without tag) pushed by
/// `git_ref`, in a repository whose default branch is `default_branch`.
pub fn cache_refs(image: &str, git_ref: &str, default_branch: &str) -> CacheRefs {
    let default_ref = format!("{image}:{}", cache_tag(default_branch));
    match split_ref(git_ref) {
        Some((RefKind::Branch, branch)) => {
            let own = format!("{image}:{}", cache_tag(branch));
            let mut from = vec![own.clone()];
            if own != default_ref {
                from.push(default_ref);
            }
            CacheRefs {
                to: Some(own),
                from,
            }
        }
        _ => CacheRefs {
            to: None,
            from: vec![default_ref],
        },
    }
}

/// Whether an image tag is reserved for caches.
pub fn is_cache_tag(tag: &str) -> bool {
    tag.starts_with(CACHE_TAG_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_write_their_own_cache_and_read_the_default_branch_too() {
        let r = cache_refs("ghcr.io/acme/web", "refs/heads/feature/login", "main");
        assert_eq!(
            r.to.as_deref(),
            Some("ghcr.io/acme/web:buildcache-feature-login")
        );
        assert_eq!(
            r.from,
            [
                "ghcr.io/acme/web:buildcache-feature-login",
                "ghcr.io/acme/web:buildcache-main"
            ]
        );
        let r = cache_refs("acme/web", "refs/heads/main", "main");
        assert_eq!(r.to.as_deref(), Some("acme/web:buildcache-main"));
        assert_eq!(r.from, ["acme/web:buildcache-main"]);
    }

    #[test]
    fn a_tag_reads_the_default_branch_cache_and_writes_none() {
        let r = cache_refs("acme/web", "refs/tags/v1.2.3", "trunk");
        assert_eq!(r.to, None);
        assert_eq!(r.from, ["acme/web:buildcache-trunk"]);
    }

    #[test]
    fn long_branches_leave_room_for_a_platform_suffix_and_stay_apart() {
        let a = cache_tag(&format!("{}a", "x".repeat(200)));
        let b = cache_tag(&format!("{}b", "x".repeat(200)));
        assert_ne!(a, b);
        for t in [&a, &b] {
            assert_eq!(t.len(), 128 - PLATFORM_SUFFIX_ROOM);
            assert!(crate::names::check_tag(&format!("{t}-linux-arm64")).is_ok());
        }
        assert_eq!(cache_tag("release+1/x"), "buildcache-release-1-x");
        assert!(is_cache_tag(&cache_tag("main")));
        assert!(!is_cache_tag("main"));
    }
}
