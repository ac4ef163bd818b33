//! Content: blobs of every size class (a few empty, a few up to 2 MiB) and manifests of every
//! kind referencing them (images, artifacts, indexes, subjects, `data` fields, custom fields,
//! Docker flavours, sha512), as proptest strategies.

use super::GenConfig;
use crate::ops::gen::ARTIFACT_TYPES;
use crate::vocab::content::OCI_EMPTY;
use crate::vocab::{BlobId, BlobSpec, ContentSpec, DigestAlgo, Flavor, ManifestId, ManifestSpec};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// `x` is a multiple of `n`.
fn every<T: Into<u64>>(x: T, n: u64) -> bool {
    x.into().checked_rem(n) == Some(0)
}

const HUGE_BLOB: u32 = 2 << 20;

fn blob_strategy(max_blob_size: u32) -> impl Strategy<Value = BlobSpec> {
    (0u8..100, any::<u32>(), any::<u64>(), 0u8..10).prop_map(move |(class, x, seed, algo)| {
        let size = match class {
            0..=7 => 0,
            8..=9 => 1 + x % HUGE_BLOB,
            10..=39 => 1 + x % 64,
            _ => 1 + x % max_blob_size.max(1),
        };
        BlobSpec {
            size,
            seed,
            algo: if algo == 0 {
                DigestAlgo::Sha512
            } else {
                DigestAlgo::Sha256
            },
        }
    })
}

/// Raw numbers a manifest spec is built from.
type RawManifest = (u8, u8, u16, Vec<u16>, (bool, u16), u8, u8, u8, u8, Vec<u16>);

fn raw_manifest() -> impl Strategy<Value = RawManifest> {
    (
        0u8..10,
        0u8..10,
        any::<u16>(),
        prop::collection::vec(any::<u16>(), 0..4),
        (prop::bool::weighted(0.35), any::<u16>()),
        0u8..10,
        0u8..6,
        0u8..4,
        0u8..8,
        prop::collection::vec(any::<u16>(), 0..4),
    )
}

fn annotations_for(kind: u8) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    match kind {
        1 => {
            a.insert(
                "org.opencontainers.image.created".into(),
                "2024-01-01T00:00:00Z".into(),
            );
        }
        2 => {
            a.insert("org.example.signature.fingerprint".into(), "abcd".into());
            a.insert("org.example.sbom.format".into(), "json".into());
        }
        _ => {}
    }
    a
}

fn build_manifest(i: usize, raw: &RawManifest, blobs: &[BlobSpec]) -> ManifestSpec {
    let (kind, flavor, config, layers, (has_subject, subject), at, ann, flags, algo, children) =
        raw;
    let nb = blobs.len().max(1);
    let flavor = if *flavor == 0 {
        Flavor::Docker
    } else {
        Flavor::Oci
    };
    let oci = flavor == Flavor::Oci;
    // Half the referrers point at the first manifest: real subjects gather several referrers
    // (a signature, an SBOM, attestations), which is what referrers listings and their
    // paging are about.
    let subject = (oci && *has_subject && i > 0).then(|| {
        let s = *subject as usize;
        ManifestId(if s.is_multiple_of(2) { 0 } else { (s / 2) % i } as u16)
    });
    let artifact_type = if oci && ((subject.is_some() && *at < 7) || *at == 9) {
        Some(ARTIFACT_TYPES[*at as usize % ARTIFACT_TYPES.len()].to_string())
    } else {
        None
    };
    let annotations = if *ann < 3 {
        annotations_for(*ann)
    } else {
        BTreeMap::new()
    };
    let algo = if *algo == 0 {
        DigestAlgo::Sha512
    } else {
        DigestAlgo::Sha256
    };
    if i == 0 || *kind < 7 {
        let layers: Vec<BlobId> = layers
            .iter()
            .map(|l| BlobId((*l as usize % nb) as u16))
            .collect();
        let data_field = oci
            && flags & 1 == 1
            && layers
                .first()
                .and_then(|l| blobs.get(l.0 as usize))
                .is_some_and(|b| b.size <= 4096);
        let config_media_type =
            (artifact_type.is_some() && every(*at, 2)).then(|| OCI_EMPTY.to_string());
        ManifestSpec::Image {
            flavor,
            config: BlobId((*config as usize % nb) as u16),
            config_media_type,
            layers,
            subject,
            artifact_type,
            annotations,
            data_field,
            custom_fields: flags & 2 == 2,
            nondistributable: false,
            algo,
        }
    } else {
        let mut seen = BTreeSet::new();
        let manifests: Vec<ManifestId> = children
            .iter()
            .map(|c| ManifestId((*c as usize % i) as u16))
            .filter(|c| seen.insert(*c))
            .collect();
        ManifestSpec::Index {
            flavor,
            manifests,
            subject,
            artifact_type,
            annotations,
            algo,
        }
    }
}

/// Content: 1..=`blobs` seeded blobs and 0..=`manifests` manifests referencing them (acyclic).
pub fn content_strategy(cfg: &GenConfig) -> impl Strategy<Value = ContentSpec> {
    let blobs = prop::collection::vec(
        blob_strategy(cfg.max_blob_size),
        1..=(cfg.blobs.max(1) as usize),
    );
    let manifests = prop::collection::vec(raw_manifest(), 0..=(cfg.manifests as usize));
    (blobs, manifests).prop_map(|(blobs, raws)| {
        let manifests = raws
            .iter()
            .enumerate()
            .map(|(i, r)| build_manifest(i, r, &blobs))
            .collect();
        ContentSpec { blobs, manifests }
    })
}
