//! Test-only fault injection.
//!
//! Each fault is a realistic, independent misbehaviour that the ocidiff
//! harness must be able to detect. All are off by default and none is
//! reachable from the CLI. Every check lives here, as one small function;
//! handlers call these functions instead of reading `Faults` fields.

use axum::http::StatusCode;
use bytes::Bytes;

/// Which faults are injected. `Faults::default()` is a correct registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The completing upload `PUT` (end-6) answers 200 instead of 201.
    pub blob_put_status_200: bool,
    /// `GET`/`HEAD` manifest (end-3) omits `Docker-Content-Digest`.
    pub manifest_get_no_digest_header: bool,
    /// The tag list (end-8) is returned in reverse order.
    pub tags_unsorted: bool,
    /// The tag list (end-8b) ignores `n`.
    pub tags_ignore_n: bool,
    /// `GET` blob (end-2) flips one byte of a non-empty body.
    pub blob_corrupt_byte: bool,
    /// `DELETE` manifest (end-9) answers 202 but deletes nothing.
    pub manifest_delete_noop: bool,
    /// The `Range` header of `GET` blob is ignored (200, full body).
    pub range_ignored: bool,
    /// Referrers descriptors (end-12) lack `artifactType`.
    pub referrers_drop_artifact_type: bool,
    /// The closing `PUT` (end-6) accepts a final chunk whose `Content-Range` does not start
    /// at the session's offset (appended as if in order).
    pub final_chunk_order_ignored: bool,
    /// The tag list's `Link` (end-8b) is a bare URL: no `<...>`, no `rel="next"`.
    pub link_malformed: bool,
    /// `GET` / `HEAD` blob (end-2) serves any blob the registry stores, whatever repository
    /// it was pushed to (one content store, no per-repository links).
    pub blobs_shared_across_repos: bool,
    /// A manifest `PUT` (end-7) by digest is rejected (400 `MANIFEST_INVALID`); by tag it works.
    pub manifest_put_by_digest_rejected: bool,
    /// A manifest `DELETE` (end-9) by tag removes the manifest the tag pointed to, with every
    /// tag pointing to it (olareg v0.1.2 and nora-registry 1.4.3 do this): one mutating op
    /// breaks the state, and later reads by digest and deletes by digest fail.
    pub tag_delete_removes_manifest: bool,
    // ---- races (`RACE_NAMES`): each is invisible to one client at a time and shows only
    // when requests overlap; every racy step pauses `RACE_PAUSE` in its window.
    /// A manifest PUT by tag reads the repository's tag map, pauses, and writes the map back
    /// with its tag set: tag changes made meanwhile are lost (read-modify-write, no lock).
    pub tag_update_lost: bool,
    /// A manifest DELETE by digest removes the tags that pointed to the manifest when it
    /// began: a tag moved meanwhile to another manifest is removed, one added meanwhile stays.
    pub delete_stale_tags: bool,
    /// A completing upload PUT makes the blob readable with the first half of its content,
    /// pauses, stores the rest, then answers 201 (memory storage).
    pub blob_commit_early: bool,
    /// A manifest PUT with a `subject` reads the subject's referrers, pauses, and writes the
    /// index back with itself added: referrers pushed meanwhile drop out of the listing.
    pub referrers_lost_update: bool,
}

/// How long a racy step of a race fault waits inside its window.
pub const RACE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// The pause of a race fault.
pub(crate) async fn race_pause() {
    tokio::time::sleep(RACE_PAUSE).await;
}

impl Faults {
    /// The name of every fault, as accepted by [`Faults::only`].
    pub const NAMES: &'static [&'static str] = &[
        "blob_put_status_200",
        "manifest_get_no_digest_header",
        "tags_unsorted",
        "tags_ignore_n",
        "blob_corrupt_byte",
        "manifest_delete_noop",
        "range_ignored",
        "referrers_drop_artifact_type",
        "final_chunk_order_ignored",
        "link_malformed",
        "blobs_shared_across_repos",
        "manifest_put_by_digest_rejected",
        "tag_delete_removes_manifest",
    ];

    /// The race faults: detectable only by concurrent clients (`ocidiff race`), accepted by
    /// [`Faults::only`] like the others.
    pub const RACE_NAMES: &'static [&'static str] = &[
        "tag_update_lost",
        "delete_stale_tags",
        "blob_commit_early",
        "referrers_lost_update",
    ];

    /// A `Faults` with exactly the named fault on; `None` for an unknown name.
    pub fn only(name: &str) -> Option<Faults> {
        let mut f = Faults::default();
        let flag = match name {
            "blob_put_status_200" => &mut f.blob_put_status_200,
            "manifest_get_no_digest_header" => &mut f.manifest_get_no_digest_header,
            "tags_unsorted" => &mut f.tags_unsorted,
            "tags_ignore_n" => &mut f.tags_ignore_n,
            "blob_corrupt_byte" => &mut f.blob_corrupt_byte,
            "manifest_delete_noop" => &mut f.manifest_delete_noop,
            "range_ignored" => &mut f.range_ignored,
            "referrers_drop_artifact_type" => &mut f.referrers_drop_artifact_type,
            "final_chunk_order_ignored" => &mut f.final_chunk_order_ignored,
            "link_malformed" => &mut f.link_malformed,
            "blobs_shared_across_repos" => &mut f.blobs_shared_across_repos,
            "manifest_put_by_digest_rejected" => &mut f.manifest_put_by_digest_rejected,
            "tag_delete_removes_manifest" => &mut f.tag_delete_removes_manifest,
            "tag_update_lost" => &mut f.tag_update_lost,
            "delete_stale_tags" => &mut f.delete_stale_tags,
            "blob_commit_early" => &mut f.blob_commit_early,
            "referrers_lost_update" => &mut f.referrers_lost_update,
            _ => return None,
        };
        *flag = true;
        Some(f)
    }

    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

/// Whether a blob is served in a repository: when linked there, or (fault) stored at all.
pub(crate) fn blob_visible(f: &Faults, linked: bool) -> bool {
    linked || f.blobs_shared_across_repos
}

/// Whether a manifest `PUT` by digest is refused.
pub(crate) fn refuses_put_by_digest(f: &Faults) -> bool {
    f.manifest_put_by_digest_rejected
}

/// Whether the closing `PUT` checks that its final chunk starts at the session's offset.
pub(crate) fn checks_final_chunk_order(f: &Faults) -> bool {
    !f.final_chunk_order_ignored
}

/// The tag list's `Link` as sent: as built, or (fault) the bare URL inside it.
pub(crate) fn tags_link(f: &Faults, link: String) -> String {
    if !f.link_malformed {
        return link;
    }
    link.split('<')
        .nth(1)
        .and_then(|r| r.split('>').next())
        .map(str::to_string)
        .unwrap_or(link)
}

/// Status of a successful completing upload `PUT`.
pub(crate) fn blob_put_status(f: &Faults) -> StatusCode {
    if f.blob_put_status_200 {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// Whether manifest `GET`/`HEAD` sends `Docker-Content-Digest`.
pub(crate) fn manifest_sends_digest(f: &Faults) -> bool {
    !f.manifest_get_no_digest_header
}

/// Final ordering of a page of tags.
pub(crate) fn order_tag_page(f: &Faults, page: &mut [&str]) {
    if f.tags_unsorted {
        page.reverse();
    }
}

/// The effective `n` of a tag list request.
pub(crate) fn tags_n(f: &Faults, n: Option<usize>) -> Option<usize> {
    if f.tags_ignore_n {
        None
    } else {
        n
    }
}

/// Whether blob bodies are corrupted.
pub(crate) fn corrupts_blobs(f: &Faults) -> bool {
    f.blob_corrupt_byte
}

/// Flips the first byte of a (non-empty) chunk.
pub(crate) fn corrupt(chunk: Bytes) -> Bytes {
    if chunk.is_empty() {
        return chunk;
    }
    let mut v = chunk.to_vec();
    v[0] ^= 0xff;
    Bytes::from(v)
}

/// Whether a manifest `DELETE` actually deletes.
pub(crate) fn manifest_delete_effective(f: &Faults) -> bool {
    !f.manifest_delete_noop
}

/// Whether `Range` is honoured on blob `GET`.
pub(crate) fn honours_range(f: &Faults) -> bool {
    !f.range_ignored
}

/// Whether referrers descriptors carry `artifactType`.
pub(crate) fn referrers_artifact_type(f: &Faults) -> bool {
    !f.referrers_drop_artifact_type
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_each_name() {
        for name in Faults::NAMES.iter().chain(Faults::RACE_NAMES) {
            let f = Faults::only(name).unwrap();
            assert!(f.any(), "{name}");
        }
        assert!(Faults::only("nope").is_none());
        assert!(!Faults::default().any());
    }
}
