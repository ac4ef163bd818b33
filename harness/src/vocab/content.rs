//! Renders a ContentSpec into bytes: deterministic blobs and manifests, their digests and media types.
//!
//! Blob bytes are a splitmix64 stream seeded from `(seed, size)`, so the same spec always renders
//! the same bytes (several MiB render in milliseconds). Manifests render in index order as compact
//! JSON (keys sorted by serde_json's map); descriptors name blobs by each blob's own digest
//! algorithm and child/subject manifests by their spec algorithm.

pub use super::digest::{algo_of, digest_matches, digest_of, sha256_hex};
use super::exchange::ReferrerFacts;
use super::ids::{BlobId, DigestAlgo, ManifestId};
use super::spec::{ContentSpec, DigestChoice, Flavor, ManifestSpec};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// A non-distributable OCI layer (deprecated in image-spec 1.1, still pushed by clients).
pub const OCI_LAYER_NONDISTRIBUTABLE: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// A Docker foreign layer (Windows base layers).
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Every manifest media type ocidiff renders, for `Accept` headers.
pub const ALL_MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Why a `ContentSpec` cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("manifest {manifest} references itself")]
    SelfReference { manifest: u16 },
    #[error("manifest {manifest} references manifest {referenced}, which is not lower (content must be acyclic, in index order)")]
    ForwardReference { manifest: u16, referenced: u16 },
    #[error("manifest {manifest} references blob {blob}, which does not exist ({count} blobs)")]
    MissingBlob {
        manifest: u16,
        blob: u16,
        count: usize,
    },
    #[error("too many blobs or manifests ({0}; at most 65536)")]
    TooMany(usize),
}

#[derive(Debug, Clone)]
struct RenderedBlob {
    bytes: Bytes,
    digest: String,
    /// The digest with the other algorithm, computed when first asked for.
    other: std::sync::OnceLock<String>,
}

#[derive(Debug, Clone)]
struct RenderedManifest {
    bytes: Bytes,
    digest: String,
    sha256: String,
    media_type: String,
    blobs: Vec<BlobId>,
    children: Vec<ManifestId>,
    subject: Option<ManifestId>,
    /// The artifactType a spec-exact referrers response lists (see `referrer_descriptor`).
    referrer_artifact_type: Option<String>,
    annotations: BTreeMap<String, String>,
}

/// A rendered `ContentSpec`: bytes, digests and relations of every blob and manifest.
#[derive(Debug, Clone, Default)]
pub struct Content {
    blobs: Vec<RenderedBlob>,
    manifests: Vec<RenderedManifest>,
}

/// One step of the splitmix64 generator (a bijective mix of `state` after the step).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The deterministic bytes of a blob of `size` bytes from `seed`.
pub fn blob_bytes(seed: u64, size: u32) -> Bytes {
    blob_stream(seed, size, |_| {})
}

/// The bytes of `blob_bytes` with their digest under `algo`, hashed while they are generated
/// (block by block, while each block is in cache). A sha512 blob is hashed with sha256 in the
/// same pass: requests and observations name bodies by their sha256, and it is cheaper here,
/// in the background, than later, on the path of the requests.
fn render_blob(seed: u64, size: u32, algo: DigestAlgo) -> RenderedBlob {
    use sha2::Digest as _;
    match algo {
        DigestAlgo::Sha256 => {
            let mut h = sha2::Sha256::new();
            let bytes = blob_stream(seed, size, |block| h.update(block));
            RenderedBlob {
                bytes,
                digest: format!("sha256:{}", hex::encode(h.finalize())),
                other: std::sync::OnceLock::new(),
            }
        }
        DigestAlgo::Sha512 => {
            let mut h = sha2::Sha512::new();
            let mut h256 = sha2::Sha256::new();
            let bytes = blob_stream(seed, size, |block| {
                h.update(block);
                h256.update(block);
            });
            RenderedBlob {
                bytes,
                digest: format!("sha512:{}", hex::encode(h.finalize())),
                other: format!("sha256:{}", hex::encode(h256.finalize())).into(),
            }
        }
    }
}

/// Generates the splitmix64 stream of a blob in 4 KiB blocks (a multiple of both hashes'
/// block sizes), handing each block to `each` before it is appended.
fn blob_stream(seed: u64, size: u32, mut each: impl FnMut(&[u8])) -> Bytes {
    const BLOCK: usize = 4096;
    let size = size as usize;
    let mut state = seed ^ (size as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let mut out = Vec::with_capacity(size);
    let mut block = [0u8; BLOCK];
    while out.len() < size {
        let n = (size - out.len()).min(BLOCK);
        for w in block[..n.div_ceil(8) * 8].chunks_exact_mut(8) {
            w.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        each(&block[..n]);
        out.extend_from_slice(&block[..n]);
    }
    Bytes::from(out)
}

fn default_config_type(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Oci => OCI_CONFIG,
        Flavor::Docker => DOCKER_CONFIG,
    }
}

impl Content {
    /// Renders every blob and manifest of `spec`.
    pub fn render(spec: &ContentSpec) -> Result<Content, ContentError> {
        if spec.blobs.len() > 65536 || spec.manifests.len() > 65536 {
            return Err(ContentError::TooMany(
                spec.blobs.len().max(spec.manifests.len()),
            ));
        }
        let blobs: Vec<RenderedBlob> = spec
            .blobs
            .iter()
            .map(|b| render_blob(b.seed, b.size, b.algo))
            .collect();
        let mut content = Content {
            blobs,
            manifests: Vec::with_capacity(spec.manifests.len()),
        };
        for (i, m) in spec.manifests.iter().enumerate() {
            let rendered = content.render_manifest(i as u16, m)?;
            content.manifests.push(rendered);
        }
        Ok(content)
    }

    fn check_manifest_ref(&self, me: u16, other: ManifestId) -> Result<(), ContentError> {
        if other.0 == me {
            Err(ContentError::SelfReference { manifest: me })
        } else if other.0 > me || other.0 as usize >= self.manifests.len() {
            Err(ContentError::ForwardReference {
                manifest: me,
                referenced: other.0,
            })
        } else {
            Ok(())
        }
    }

    /// A non-distributable layer's descriptor for blob `id`: the foreign media type and a
    /// `urls` entry outside the registry (`store.example.com`, a reserved name).
    fn foreign_descriptor(
        &self,
        me: u16,
        id: BlobId,
        flavor: Flavor,
    ) -> Result<Value, ContentError> {
        let media_type = match flavor {
            Flavor::Oci => OCI_LAYER_NONDISTRIBUTABLE,
            Flavor::Docker => DOCKER_LAYER_FOREIGN,
        };
        let mut d = self.blob_descriptor(me, id, media_type)?;
        if let (Value::Object(o), Some(b)) = (&mut d, self.blobs.get(id.0 as usize)) {
            let (alg, hex) = b.digest.split_once(':').unwrap_or(("sha256", &b.digest));
            o.insert(
                "urls".into(),
                json!([format!("https://store.example.com/blobs/{alg}/{hex}")]),
            );
        }
        Ok(d)
    }

    fn blob_descriptor(
        &self,
        me: u16,
        id: BlobId,
        media_type: &str,
    ) -> Result<Value, ContentError> {
        let b = self
            .blobs
            .get(id.0 as usize)
            .ok_or(ContentError::MissingBlob {
                manifest: me,
                blob: id.0,
                count: self.blobs.len(),
            })?;
        Ok(json!({"mediaType": media_type, "digest": b.digest, "size": b.bytes.len()}))
    }

    fn manifest_descriptor(&self, id: ManifestId) -> Value {
        // Callers check the reference first.
        match self.manifests.get(id.0 as usize) {
            Some(m) => {
                json!({"mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len()})
            }
            None => Value::Null,
        }
    }

    fn render_manifest(
        &self,
        me: u16,
        spec: &ManifestSpec,
    ) -> Result<RenderedManifest, ContentError> {
        let mut obj = Map::new();
        obj.insert("schemaVersion".into(), json!(2));
        let (media_type, blobs, children, subject, annotations, algo, referrer_at);
        match spec {
            ManifestSpec::Image {
                flavor,
                config,
                config_media_type,
                layers,
                subject: subj,
                artifact_type: at,
                annotations: ann,
                data_field,
                custom_fields,
                nondistributable,
                algo: a,
            } => {
                media_type = match flavor {
                    Flavor::Oci => OCI_MANIFEST,
                    Flavor::Docker => DOCKER_MANIFEST,
                };
                let config_type = config_media_type
                    .clone()
                    .unwrap_or_else(|| default_config_type(*flavor).to_string());
                obj.insert("mediaType".into(), json!(media_type));
                if let Some(at) = at {
                    obj.insert("artifactType".into(), json!(at));
                }
                obj.insert(
                    "config".into(),
                    self.blob_descriptor(me, *config, &config_type)?,
                );
                let layer_type = match flavor {
                    Flavor::Oci => OCI_LAYER,
                    Flavor::Docker => DOCKER_LAYER,
                };
                let mut layer_descs = Vec::with_capacity(layers.len());
                for (i, l) in layers.iter().enumerate() {
                    let foreign = *nondistributable && i + 1 == layers.len();
                    let mut d = if foreign {
                        self.foreign_descriptor(me, *l, *flavor)?
                    } else {
                        self.blob_descriptor(me, *l, layer_type)?
                    };
                    if *data_field && i == 0 {
                        if let (Some(b), Value::Object(o)) = (self.blobs.get(l.0 as usize), &mut d)
                        {
                            o.insert(
                                "data".into(),
                                json!(base64::engine::general_purpose::STANDARD.encode(&b.bytes)),
                            );
                        }
                    }
                    layer_descs.push(d);
                }
                obj.insert("layers".into(), Value::Array(layer_descs));
                if *custom_fields {
                    obj.insert(
                        "io.ocidiff.unknown".into(),
                        json!({"nested": [1, "two", null, {"three": 3.5}], "flag": true}),
                    );
                    obj.insert("zzUnknownField".into(), json!("kept verbatim"));
                }
                let mut bl = vec![*config];
                bl.extend(layers.iter().copied());
                blobs = bl;
                children = Vec::new();
                subject = *subj;
                referrer_at = Some(at.clone().unwrap_or(config_type));
                annotations = ann.clone();
                algo = *a;
            }
            ManifestSpec::Index {
                flavor,
                manifests,
                subject: subj,
                artifact_type: at,
                annotations: ann,
                algo: a,
            } => {
                media_type = match flavor {
                    Flavor::Oci => OCI_INDEX,
                    Flavor::Docker => DOCKER_LIST,
                };
                obj.insert("mediaType".into(), json!(media_type));
                if let Some(at) = at {
                    obj.insert("artifactType".into(), json!(at));
                }
                let mut descs = Vec::with_capacity(manifests.len());
                for (i, c) in manifests.iter().enumerate() {
                    self.check_manifest_ref(me, *c)?;
                    let mut d = self.manifest_descriptor(*c);
                    if *flavor == Flavor::Docker {
                        if let Value::Object(o) = &mut d {
                            let arch = ["amd64", "arm64", "s390x", "ppc64le"][i % 4];
                            o.insert(
                                "platform".into(),
                                json!({"architecture": arch, "os": "linux"}),
                            );
                        }
                    }
                    descs.push(d);
                }
                obj.insert("manifests".into(), Value::Array(descs));
                blobs = Vec::new();
                children = manifests.clone();
                subject = *subj;
                referrer_at = at.clone();
                annotations = ann.clone();
                algo = *a;
            }
        }
        if let Some(s) = subject {
            self.check_manifest_ref(me, s)?;
            obj.insert("subject".into(), self.manifest_descriptor(s));
        }
        if !annotations.is_empty() {
            obj.insert("annotations".into(), json!(annotations));
        }
        let bytes = Bytes::from(serde_json::to_vec(&Value::Object(obj)).unwrap_or_default());
        let digest = digest_of(algo, &bytes);
        let sha256 = if algo == DigestAlgo::Sha256 {
            digest.clone()
        } else {
            digest_of(DigestAlgo::Sha256, &bytes)
        };
        Ok(RenderedManifest {
            bytes,
            digest,
            sha256,
            media_type: media_type.to_string(),
            blobs,
            children,
            subject,
            referrer_artifact_type: referrer_at,
            annotations,
        })
    }

    pub fn blob(&self, id: BlobId) -> Option<&Bytes> {
        self.blobs.get(id.0 as usize).map(|b| &b.bytes)
    }

    /// The blob's digest, with the blob's own algorithm.
    pub fn blob_digest(&self, id: BlobId) -> Option<&str> {
        self.blobs.get(id.0 as usize).map(|b| b.digest.as_str())
    }

    /// The blob's digest with `algo` (its own, or computed once for the other algorithm).
    pub fn blob_digest_as(&self, id: BlobId, algo: DigestAlgo) -> Option<&str> {
        let b = self.blobs.get(id.0 as usize)?;
        if self.blob_algo(id) == Some(algo) {
            return Some(b.digest.as_str());
        }
        Some(b.other.get_or_init(|| digest_of(algo, &b.bytes)).as_str())
    }

    /// Hex sha256 of the blob's bytes.
    pub fn blob_sha256_hex(&self, id: BlobId) -> Option<&str> {
        self.blob_digest_as(id, DigestAlgo::Sha256)
            .map(|d| d.trim_start_matches("sha256:"))
    }

    /// The digest a client sends for blob `id` under `choice`, with `algo`.
    pub fn blob_digest_choice(&self, id: BlobId, choice: DigestChoice, algo: DigestAlgo) -> String {
        let correct = self.blob_digest_as(id, algo).unwrap_or_default();
        choice.digest_from(algo, correct)
    }

    /// The blob's digest algorithm (from its digest prefix).
    pub fn blob_algo(&self, id: BlobId) -> Option<DigestAlgo> {
        self.blob_digest(id).map(algo_of)
    }

    pub fn manifest(&self, id: ManifestId) -> Option<&Bytes> {
        self.manifests.get(id.0 as usize).map(|m| &m.bytes)
    }

    /// The manifest's digest, with the algorithm of its spec.
    pub fn manifest_digest(&self, id: ManifestId) -> Option<&str> {
        self.manifests.get(id.0 as usize).map(|m| m.digest.as_str())
    }

    /// The sha256 (hex) of `body` when it is byte for byte one of this content's blobs or
    /// manifests (compared, not hashed: a memcmp is an order of magnitude cheaper than sha256).
    pub fn sha256_of_known(&self, body: &[u8]) -> Option<String> {
        if let Some(i) = self.blobs.iter().position(|b| b.bytes.as_ref() == body) {
            return self.blob_sha256_hex(BlobId(i as u16)).map(str::to_string);
        }
        self.manifests
            .iter()
            .find(|m| m.bytes.as_ref() == body)
            .map(|m| m.sha256.trim_start_matches("sha256:").to_string())
    }

    /// The sha256 digest of the manifest's bytes (what a registry computes when pushed by tag).
    pub fn manifest_sha256(&self, id: ManifestId) -> Option<&str> {
        self.manifests.get(id.0 as usize).map(|m| m.sha256.as_str())
    }

    pub fn manifest_media_type(&self, id: ManifestId) -> Option<&str> {
        self.manifests
            .get(id.0 as usize)
            .map(|m| m.media_type.as_str())
    }

    /// Blobs an image manifest references (config first, then layers); empty for an index.
    pub fn manifest_blobs(&self, id: ManifestId) -> &[BlobId] {
        self.manifests
            .get(id.0 as usize)
            .map(|m| m.blobs.as_slice())
            .unwrap_or(&[])
    }

    /// Manifests an index references; empty for an image manifest.
    pub fn manifest_children(&self, id: ManifestId) -> &[ManifestId] {
        self.manifests
            .get(id.0 as usize)
            .map(|m| m.children.as_slice())
            .unwrap_or(&[])
    }

    pub fn manifest_subject(&self, id: ManifestId) -> Option<ManifestId> {
        self.manifests.get(id.0 as usize).and_then(|m| m.subject)
    }

    /// What a spec-exact referrers response lists for this manifest (digest with the spec's
    /// algorithm; callers storing it under another digest replace `digest`).
    pub fn referrer_descriptor(&self, id: ManifestId) -> Option<ReferrerFacts> {
        self.manifests.get(id.0 as usize).map(|m| ReferrerFacts {
            digest: m.digest.clone(),
            media_type: m.media_type.clone(),
            artifact_type: m.referrer_artifact_type.clone(),
            size: m.bytes.len() as u64,
            annotations: m.annotations.clone(),
        })
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    pub fn manifest_count(&self) -> usize {
        self.manifests.len()
    }

    /// Content read from a registry (`ocidiff conformance --read-only`) instead of rendered:
    /// each blob and manifest under the digest it was fetched by. Relations come from the
    /// manifests' JSON: `config` / `layers` descriptors naming a blob here, `manifests`
    /// descriptors and `subject` naming a manifest here (descriptors of content not here are
    /// not relations); the referrers artifactType is `artifactType`, else an image's config
    /// `mediaType`.
    pub fn from_literal(
        blobs: Vec<(String, Bytes)>,
        manifests: Vec<(String, String, Bytes)>,
    ) -> Result<Content, ContentError> {
        if blobs.len() > 65536 || manifests.len() > 65536 {
            return Err(ContentError::TooMany(blobs.len().max(manifests.len())));
        }
        let blob_ids: BTreeMap<&str, BlobId> = blobs
            .iter()
            .enumerate()
            .map(|(i, (d, _))| (d.as_str(), BlobId(i as u16)))
            .collect();
        let manifest_ids: BTreeMap<&str, ManifestId> = manifests
            .iter()
            .enumerate()
            .map(|(i, (d, _, _))| (d.as_str(), ManifestId(i as u16)))
            .collect();
        let digest_in = |v: &Value| v.get("digest").and_then(Value::as_str).map(str::to_string);
        let mut rendered = Vec::with_capacity(manifests.len());
        for (digest, media_type, bytes) in &manifests {
            let json: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            let descs = |key: &str| -> Vec<String> {
                match json.get(key) {
                    Some(Value::Array(a)) => a.iter().filter_map(digest_in).collect(),
                    Some(v @ Value::Object(_)) => digest_in(v).into_iter().collect(),
                    _ => Vec::new(),
                }
            };
            let blob_refs: Vec<BlobId> = descs("config")
                .iter()
                .chain(&descs("layers"))
                .filter_map(|d| blob_ids.get(d.as_str()).copied())
                .collect();
            let children: Vec<ManifestId> = descs("manifests")
                .iter()
                .filter_map(|d| manifest_ids.get(d.as_str()).copied())
                .collect();
            let subject = json
                .get("subject")
                .and_then(digest_in)
                .and_then(|d| manifest_ids.get(d.as_str()).copied());
            let str_of = |v: Option<&Value>| {
                v.and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let referrer_artifact_type = str_of(json.get("artifactType"))
                .or_else(|| str_of(json.get("config").and_then(|c| c.get("mediaType"))));
            let annotations: BTreeMap<String, String> = json
                .get("annotations")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            let sha256 = if digest.starts_with("sha256:") {
                digest.clone()
            } else {
                digest_of(DigestAlgo::Sha256, bytes)
            };
            rendered.push(RenderedManifest {
                bytes: bytes.clone(),
                digest: digest.clone(),
                sha256,
                media_type: media_type.clone(),
                blobs: blob_refs,
                children,
                subject,
                referrer_artifact_type,
                annotations,
            });
        }
        Ok(Content {
            blobs: blobs
                .into_iter()
                .map(|(digest, bytes)| RenderedBlob {
                    bytes,
                    digest,
                    other: std::sync::OnceLock::new(),
                })
                .collect(),
            manifests: rendered,
        })
    }

    /// The blob whose digest (own algorithm) is `digest`, if any.
    pub fn blob_by_digest(&self, digest: &str) -> Option<BlobId> {
        self.blobs
            .iter()
            .position(|b| b.digest == digest)
            .map(|i| BlobId(i as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::spec::BlobSpec;

    fn blob(size: u32, seed: u64) -> BlobSpec {
        BlobSpec {
            size,
            seed,
            algo: DigestAlgo::Sha256,
        }
    }

    fn image(config: u16, layers: &[u16]) -> ManifestSpec {
        ManifestSpec::Image {
            flavor: Flavor::Oci,
            config: BlobId(config),
            config_media_type: None,
            layers: layers.iter().map(|l| BlobId(*l)).collect(),
            subject: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
            data_field: false,
            custom_fields: false,
            nondistributable: false,
            algo: DigestAlgo::Sha256,
        }
    }

    #[test]
    fn a_nondistributable_last_layer_names_urls_outside_the_registry() {
        let mut m = image(0, &[1, 2]);
        if let ManifestSpec::Image {
            nondistributable, ..
        } = &mut m
        {
            *nondistributable = true;
        }
        let spec = ContentSpec {
            blobs: vec![blob(2, 1), blob(5, 2), blob(7, 3)],
            manifests: vec![m],
        };
        let c = Content::render(&spec).unwrap();
        let v: Value = serde_json::from_slice(c.manifest(ManifestId(0)).unwrap()).unwrap();
        assert_eq!(v["layers"][0]["mediaType"], OCI_LAYER);
        assert!(v["layers"][0].get("urls").is_none());
        let foreign = &v["layers"][1];
        assert_eq!(foreign["mediaType"], OCI_LAYER_NONDISTRIBUTABLE);
        let digest = c.blob_digest(BlobId(2)).unwrap();
        assert_eq!(foreign["digest"], digest);
        assert_eq!(
            foreign["urls"][0],
            format!(
                "https://store.example.com/blobs/sha256/{}",
                digest.trim_start_matches("sha256:")
            )
        );
        // The model still counts it among the manifest's blobs (a registry MAY reject it).
        assert_eq!(
            c.manifest_blobs(ManifestId(0)),
            [BlobId(0), BlobId(1), BlobId(2)]
        );
    }

    #[test]
    fn blobs_are_deterministic_and_digests_match() {
        let a = blob_bytes(7, 1000);
        assert_eq!(a, blob_bytes(7, 1000));
        assert_ne!(a, blob_bytes(8, 1000));
        assert_eq!(a.len(), 1000);
        assert_eq!(blob_bytes(1, 0).len(), 0);
        for size in [0u32, 1, 7, 8, 4095, 4096, 4097, 70_001] {
            for algo in [DigestAlgo::Sha256, DigestAlgo::Sha512] {
                let b = render_blob(5, size, algo);
                assert_eq!(b.bytes, blob_bytes(5, size), "size {size}");
                assert_eq!(b.digest, digest_of(algo, &b.bytes), "size {size} {algo:?}");
                if algo == DigestAlgo::Sha512 {
                    let sha256 = digest_of(DigestAlgo::Sha256, &b.bytes);
                    assert_eq!(b.other.get(), Some(&sha256), "size {size}");
                }
            }
        }
        // The stream itself is fixed: corpora and reproducers name blobs by these digests.
        assert_eq!(
            sha256_hex(&blob_bytes(7, 1003)),
            "bc6d1b7a1200136cb0e2caa72e1a8d546c0e5b51e4fd9e03f8c528a1c5bb4d48"
        );
        assert_eq!(
            sha256_hex(&blob_bytes(u64::MAX, 16)),
            "6f83f0ec32f1f0990c41f5fb27833a412bb482f0aad83a3fbecd9c8cdf95a0a4"
        );
        let spec = ContentSpec {
            blobs: vec![
                blob(3, 1),
                BlobSpec {
                    size: 10,
                    seed: 2,
                    algo: DigestAlgo::Sha512,
                },
            ],
            manifests: vec![],
        };
        let c = Content::render(&spec).unwrap();
        let b0 = c.blob(BlobId(0)).unwrap();
        assert_eq!(
            c.blob_digest(BlobId(0)).unwrap(),
            digest_of(DigestAlgo::Sha256, b0)
        );
        let d1 = c.blob_digest(BlobId(1)).unwrap();
        assert!(d1.starts_with("sha512:") && d1.len() == 7 + 128);
        assert_eq!(c.blob_algo(BlobId(1)), Some(DigestAlgo::Sha512));
        assert!(c.blob(BlobId(2)).is_none());
    }

    #[test]
    fn known_bodies_are_named_by_their_sha256_and_others_are_not() {
        let spec = ContentSpec {
            blobs: vec![
                blob(300, 1),
                BlobSpec {
                    size: 300,
                    seed: 2,
                    algo: DigestAlgo::Sha512,
                },
                blob(0, 3),
            ],
            manifests: vec![image(0, &[1])],
        };
        let c = Content::render(&spec).unwrap();
        for id in [0u16, 1, 2] {
            let b = c.blob(BlobId(id)).unwrap();
            assert_eq!(c.sha256_of_known(b), Some(sha256_hex(b)), "blob {id}");
        }
        let m = c.manifest(ManifestId(0)).unwrap();
        assert_eq!(c.sha256_of_known(m), Some(sha256_hex(m)));
        // Same length, one byte off; a prefix; a longer body: not known, so hashed by the caller.
        let mut off = c.blob(BlobId(0)).unwrap().to_vec();
        off[299] ^= 1;
        assert_eq!(c.sha256_of_known(&off), None);
        assert_eq!(c.sha256_of_known(&c.blob(BlobId(0)).unwrap()[..299]), None);
        let mut longer = m.to_vec();
        longer.push(b'\n');
        assert_eq!(c.sha256_of_known(&longer), None);
    }

    #[test]
    fn big_blob_renders_fast() {
        let t = std::time::Instant::now();
        let b = blob_bytes(42, 4 << 20);
        assert_eq!(b.len(), 4 << 20);
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn manifests_render_with_expected_fields() {
        let mut ann = BTreeMap::new();
        ann.insert("org.example".to_string(), "x".to_string());
        let spec = ContentSpec {
            blobs: vec![blob(2, 1), blob(5, 2), blob(0, 3)],
            manifests: vec![
                image(0, &[1, 2]),
                ManifestSpec::Image {
                    flavor: Flavor::Oci,
                    config: BlobId(0),
                    config_media_type: Some(OCI_EMPTY.into()),
                    layers: vec![BlobId(1)],
                    subject: Some(ManifestId(0)),
                    artifact_type: None,
                    annotations: ann.clone(),
                    data_field: true,
                    custom_fields: true,
                    nondistributable: false,
                    algo: DigestAlgo::Sha512,
                },
                ManifestSpec::Index {
                    flavor: Flavor::Docker,
                    manifests: vec![ManifestId(0), ManifestId(1)],
                    subject: None,
                    artifact_type: None,
                    annotations: BTreeMap::new(),
                    algo: DigestAlgo::Sha256,
                },
                ManifestSpec::Index {
                    flavor: Flavor::Oci,
                    manifests: vec![],
                    subject: Some(ManifestId(1)),
                    artifact_type: None,
                    annotations: ann,
                    algo: DigestAlgo::Sha256,
                },
            ],
        };
        let c = Content::render(&spec).unwrap();
        let c2 = Content::render(&spec).unwrap();
        assert_eq!(c.manifest(ManifestId(3)), c2.manifest(ManifestId(3)));
        let m0: Value = serde_json::from_slice(c.manifest(ManifestId(0)).unwrap()).unwrap();
        assert_eq!(m0["schemaVersion"], 2);
        assert_eq!(m0["mediaType"], OCI_MANIFEST);
        assert_eq!(m0["config"]["mediaType"], OCI_CONFIG);
        assert_eq!(m0["config"]["digest"], c.blob_digest(BlobId(0)).unwrap());
        assert_eq!(m0["layers"][1]["size"], 0);
        assert_eq!(m0["layers"][0]["mediaType"], OCI_LAYER);
        assert_eq!(
            c.manifest_blobs(ManifestId(0)),
            &[BlobId(0), BlobId(1), BlobId(2)]
        );

        let m1: Value = serde_json::from_slice(c.manifest(ManifestId(1)).unwrap()).unwrap();
        assert_eq!(
            m1["subject"]["digest"],
            c.manifest_digest(ManifestId(0)).unwrap()
        );
        assert!(m1["layers"][0]["data"].is_string());
        assert!(m1["zzUnknownField"].is_string());
        let d1 = c.manifest_digest(ManifestId(1)).unwrap();
        assert_eq!(
            d1,
            digest_of(DigestAlgo::Sha512, c.manifest(ManifestId(1)).unwrap())
        );
        assert!(c
            .manifest_sha256(ManifestId(1))
            .unwrap()
            .starts_with("sha256:"));
        let r1 = c.referrer_descriptor(ManifestId(1)).unwrap();
        assert_eq!(r1.artifact_type.as_deref(), Some(OCI_EMPTY));
        assert_eq!(r1.annotations.len(), 1);
        assert_eq!(c.manifest_subject(ManifestId(1)), Some(ManifestId(0)));

        let m2: Value = serde_json::from_slice(c.manifest(ManifestId(2)).unwrap()).unwrap();
        assert_eq!(m2["mediaType"], DOCKER_LIST);
        assert_eq!(m2["manifests"][1]["digest"], d1);
        assert_eq!(m2["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(
            c.manifest_children(ManifestId(2)),
            &[ManifestId(0), ManifestId(1)]
        );
        assert_eq!(c.manifest_media_type(ManifestId(2)), Some(DOCKER_LIST));

        let r3 = c.referrer_descriptor(ManifestId(3)).unwrap();
        assert_eq!(r3.artifact_type, None);
        assert_eq!(r3.media_type, OCI_INDEX);
        assert_eq!(c.manifest_count(), 4);
        assert_eq!(c.blob_count(), 3);
    }

    #[test]
    fn bad_references_are_errors() {
        let mut spec = ContentSpec {
            blobs: vec![blob(1, 1)],
            manifests: vec![image(0, &[3])],
        };
        assert!(matches!(
            Content::render(&spec),
            Err(ContentError::MissingBlob { blob: 3, .. })
        ));
        spec.manifests = vec![ManifestSpec::Index {
            flavor: Flavor::Oci,
            manifests: vec![ManifestId(0)],
            subject: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
            algo: DigestAlgo::Sha256,
        }];
        assert!(matches!(
            Content::render(&spec),
            Err(ContentError::SelfReference { .. })
        ));
        spec.manifests = vec![image(0, &[]), image(0, &[])];
        if let ManifestSpec::Image { subject, .. } = &mut spec.manifests[0] {
            *subject = Some(ManifestId(1));
        }
        assert!(matches!(
            Content::render(&spec),
            Err(ContentError::ForwardReference { .. })
        ));
    }
}
