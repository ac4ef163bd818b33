//! proptest strategies producing state-aware Sequences: mostly valid, meaningful ops, a tunable share of invalid ones; same seed, same sequence.
//!
//! The strategy draws a `ContentSpec` and a vector of raw "choices" (numbers); a deterministic
//! interpreter (`prop_map`) turns the choices into ops one by one against a `ModelState`, so each
//! op makes sense where it stands (blobs before the manifests that use them, the next range of an
//! open session, pulls of what exists, ...). Shrinking removes or simplifies choices and content;
//! the interpreter re-runs, so shrunk sequences stay meaningful.

use crate::content::{Content, OCI_EMPTY};
use crate::model::{
    BadManifest, BadNameEndpoint, BlobId, BlobSpec, ContentSpec, ContentTypeChoice, DigestAlgo,
    DigestChoice, Flavor, ManifestId, ManifestSpec, Op, PushMethod, Reference, Repo, Sequence,
    Session,
};
use crate::state::ModelState;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::{BTreeMap, BTreeSet};

/// Bounds and mix of generated sequences.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    /// At most this many ops per sequence (at least 1 is generated).
    pub max_ops: usize,
    /// Share (0..=1) of deliberately invalid ops.
    pub invalid_share: f64,
    /// Typical upper bound of blob sizes (a few blobs are empty, a few up to 2 MiB).
    pub max_blob_size: u32,
    /// Repositories `r0 .. r{repos-1}`.
    pub repos: u8,
    /// At most this many blobs in the content (at least 1).
    pub blobs: u16,
    /// At most this many manifests in the content.
    pub manifests: u16,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            max_ops: 24,
            invalid_share: 0.1,
            max_blob_size: 256 << 10,
            repos: 3,
            blobs: 8,
            manifests: 8,
        }
    }
}

/// Tags that exercise ASCIIbetical ordering.
pub const TAG_POOL: [&str; 12] = [
    "latest", "v1", "V1", "v1.0", "v10", "v2", "a_b", "Z9", "0", "1.2.3", "_x", "v1-rc.1",
];

/// Artifact types used by referrers.
pub const ARTIFACT_TYPES: [&str; 3] = [
    "application/vnd.example.sbom.v1",
    "application/vnd.example.signature.v1",
    "application/vnd.ocidiff.test+json",
];

/// Repository names that are invalid (or over the 255-character client limit).
pub fn bad_names() -> Vec<String> {
    vec![
        "UPPER/case".into(),
        "a//b".into(),
        "-lead/x".into(),
        "x/trail-".into(),
        "a..b/c".into(),
        format!("{}/{}", "a".repeat(150), "b".repeat(149)),
    ]
}

/// Tag strings that do not match the tag grammar.
pub fn bad_tags() -> Vec<String> {
    vec!["-x".into(), "a".repeat(129), "a:b".into(), ".dot".into()]
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
    let subject =
        (oci && *has_subject && i > 0).then(|| ManifestId((*subject as usize % i) as u16));
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

/// One raw step: (invalid?, kind, a, b, c).
type Choice = (bool, u16, u32, u32, u32);

/// State-aware sequences (see the module docs).
pub fn sequence_strategy(cfg: GenConfig) -> impl Strategy<Value = Sequence> {
    let share = if cfg.invalid_share.is_finite() {
        cfg.invalid_share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let choices = prop::collection::vec(
        (
            prop::bool::weighted(share),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        1..=cfg.max_ops.max(1),
    );
    (content_strategy(&cfg), choices)
        .prop_map(move |(content, choices)| interpret(&cfg, content, &choices))
}

/// The sequence for `seed`: same seed and config, same sequence.
pub fn generate_sequence(seed: u64, cfg: &GenConfig) -> Sequence {
    let mut seed32 = [0u8; 32];
    for (i, chunk) in seed32.chunks_mut(8).enumerate() {
        let v = seed.rotate_left(i as u32 * 16) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed32),
    );
    match sequence_strategy(cfg.clone()).new_tree(&mut runner) {
        Ok(tree) => tree.current(),
        Err(_) => Sequence::default(),
    }
}

/// Interprets raw choices against a model state.
fn interpret(cfg: &GenConfig, spec: ContentSpec, choices: &[Choice]) -> Sequence {
    let Ok(content) = Content::render(&spec) else {
        return Sequence {
            content: spec,
            ops: Vec::new(),
        };
    };
    let mut b = Builder {
        cfg,
        content: &content,
        state: ModelState::new(),
        dubious: BTreeSet::new(),
        ops: Vec::new(),
    };
    for c in choices {
        b.step(*c);
    }
    let ops = b.ops;
    Sequence { content: spec, ops }
}

/// `x` is a multiple of `n` (written so on purpose: `is_multiple_of` is newer than our MSRV).
fn every<T: Into<u64>>(x: T, n: u64) -> bool {
    x.into().checked_rem(n) == Some(0)
}

fn pick<T: Clone>(v: &[T], x: u32) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v[x as usize % v.len()].clone())
    }
}

const SESSIONS: u8 = 3;

struct Builder<'a> {
    cfg: &'a GenConfig,
    content: &'a Content,
    state: ModelState,
    /// Sessions whose state after an invalid op may legitimately differ between registries.
    dubious: BTreeSet<Session>,
    ops: Vec<Op>,
}

impl Builder<'_> {
    fn emit(&mut self, op: Op) {
        self.state.apply(&op, self.content);
        self.ops.push(op);
    }

    fn repo(&self, x: u32) -> Repo {
        Repo((x % self.cfg.repos.max(1) as u32) as u8)
    }

    fn all_repos(&self) -> Vec<Repo> {
        (0..self.cfg.repos.max(1)).map(Repo).collect()
    }

    fn blob(&self, x: u32) -> BlobId {
        BlobId((x as usize % self.content.blob_count().max(1)) as u16)
    }

    fn blob_size(&self, b: BlobId) -> u32 {
        self.content.blob(b).map(|b| b.len() as u32).unwrap_or(0)
    }

    fn tag(x: u32) -> String {
        TAG_POOL[x as usize % TAG_POOL.len()].to_string()
    }

    /// (repo, blob) pairs present.
    fn linked_blobs(&self) -> Vec<(Repo, BlobId)> {
        let mut out = Vec::new();
        for r in self.state.repos() {
            for b in self.state.blobs(r) {
                out.push((r, b));
            }
        }
        out
    }

    /// (repo, reference naming it as stored, manifest) for stored manifests.
    fn stored_manifests(&self) -> Vec<(Repo, Reference, ManifestId)> {
        let mut out = Vec::new();
        for r in self.state.repos() {
            for (d, m) in self.state.manifests(r) {
                let reference = if self.content.manifest_digest(m) == Some(d.as_str()) {
                    Reference::Digest(m)
                } else {
                    Reference::Raw(d)
                };
                out.push((r, reference, m));
            }
        }
        out
    }

    fn tagged(&self) -> Vec<(Repo, String)> {
        let mut out = Vec::new();
        for r in self.state.repos() {
            for t in self.state.tags(r) {
                out.push((r, t));
            }
        }
        out
    }

    /// Open sessions usable by valid ops.
    fn usable_sessions(&self) -> Vec<(Session, crate::state::SessionState)> {
        self.state
            .open_sessions()
            .into_iter()
            .filter(|(s, _)| !self.dubious.contains(s))
            .collect()
    }

    fn step(&mut self, (invalid, kind, a, b, c): Choice) {
        if self.ops.len() >= self.cfg.max_ops.max(1) {
            return;
        }
        if invalid && self.invalid_step(kind, a, b, c) {
            return;
        }
        self.valid_step(kind, a, b, c);
    }

    fn valid_step(&mut self, kind: u16, a: u32, b: u32, c: u32) {
        const WEIGHTS: [(u8, u16); 18] = [
            (0, 14), // push blob
            (1, 4),  // start upload
            (2, 7),  // patch chunk
            (3, 5),  // complete upload
            (4, 2),  // upload status
            (5, 1),  // cancel upload
            (6, 4),  // mount
            (7, 6),  // head/get blob
            (8, 18), // push manifest
            (9, 9),  // head/get manifest
            (10, 4), // list tags
            (11, 2), // list tags paged
            (12, 5), // referrers
            (13, 1), // catalog
            (14, 3), // delete manifest
            (15, 2), // delete blob
            (16, 1), // check api
            (17, 6), // retag
        ];
        let total: u16 = WEIGHTS.iter().map(|w| w.1).sum();
        let mut k = kind % total;
        let mut cat = 8;
        for (c, w) in WEIGHTS {
            if k < w {
                cat = c;
                break;
            }
            k -= w;
        }
        let done = match cat {
            0 => self.push_blob(a, b, c),
            1 => self.start_upload(a, b, c),
            2 => self.patch_chunk(a, b, c),
            3 => self.complete_upload(a, b),
            4 | 5 => match pick(&self.usable_sessions(), a) {
                Some((s, _)) => {
                    self.emit(if cat == 4 {
                        Op::UploadStatus { session: s }
                    } else {
                        Op::CancelUpload { session: s }
                    });
                    true
                }
                None => false,
            },
            6 => self.mount(a, b, c),
            7 => self.pull_blob(a, b, c),
            9 => self.pull_manifest(a, b, c),
            10 if self.tagged().is_empty() && !every(b, 4) => false,
            10 => {
                let repo = pick(&self.state.repos(), a).unwrap_or(self.repo(a));
                let tags = self.state.tags(repo);
                let n = (!every(b, 3)).then_some(b % 5);
                let last = if every(c, 3) {
                    pick(&tags, c / 3).or_else(|| Some(Self::tag(c)))
                } else {
                    None
                };
                self.emit(Op::ListTags { repo, n, last });
                true
            }
            11 => {
                let repo = pick(&self.state.repos(), a).unwrap_or(self.repo(a));
                self.emit(Op::ListTagsPaged { repo, n: 1 + b % 3 });
                true
            }
            12 => self.referrers(a, b, c),
            13 => {
                self.emit(Op::Catalog { n: None });
                true
            }
            14 => self.delete_manifest(a, b),
            15 => match pick(&self.linked_blobs(), a) {
                Some((repo, blob)) => {
                    self.emit(Op::DeleteBlob { repo, blob });
                    true
                }
                None => false,
            },
            16 => {
                self.emit(Op::CheckApi);
                true
            }
            17 => self.retag(a, c),
            _ => false,
        };
        if !done {
            self.push_manifest(a, b, c);
        }
    }

    fn push_blob(&mut self, a: u32, b: u32, c: u32) -> bool {
        let blob = self.blob(a);
        let repo = self.repo(b);
        let method = self.method(blob, c);
        self.emit(Op::PushBlob {
            repo,
            blob,
            method,
            digest: DigestChoice::Correct,
        });
        true
    }

    fn method(&self, blob: BlobId, c: u32) -> PushMethod {
        let size = self.blob_size(blob);
        match c % 10 {
            _ if size == 0 && every(c, 2) => PushMethod::Monolithic,
            _ if size == 0 => PushMethod::SinglePost,
            0..=3 => PushMethod::Monolithic,
            4..=5 => PushMethod::SinglePost,
            6..=8 => PushMethod::Chunked {
                chunks: 2 + ((c / 10) % 3) as u8,
                last_in_put: (c / 30) % 2 == 1,
            },
            _ => PushMethod::Streamed,
        }
    }

    fn start_upload(&mut self, a: u32, b: u32, c: u32) -> bool {
        let open: BTreeSet<Session> = self
            .state
            .open_sessions()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let session = (0..SESSIONS)
            .map(Session)
            .find(|s| !open.contains(s))
            .unwrap_or(Session((c % SESSIONS as u32) as u8));
        let blob = self.blob(a);
        let digest_algorithm = match self.content.blob_algo(blob) {
            Some(DigestAlgo::Sha512) => Some(DigestAlgo::Sha512),
            _ if every(c, 4) => Some(DigestAlgo::Sha256),
            _ => None,
        };
        self.dubious.remove(&session);
        self.emit(Op::StartUpload {
            repo: self.repo(b),
            session,
            blob,
            digest_algorithm,
        });
        true
    }

    fn patch_chunk(&mut self, a: u32, b: u32, c: u32) -> bool {
        let candidates: Vec<_> = self
            .usable_sessions()
            .into_iter()
            .filter(|(_, s)| s.offset < self.blob_size(s.blob))
            .collect();
        let Some((session, s)) = pick(&candidates, a) else {
            return self.start_upload(a, b, c);
        };
        let remaining = self.blob_size(s.blob) - s.offset;
        let len = if every(c, 3) {
            remaining
        } else {
            1 + b % remaining
        };
        self.emit(Op::PatchChunk {
            session,
            start: s.offset,
            end: s.offset + len,
            streamed: c % 7 == 1,
        });
        true
    }

    fn complete_upload(&mut self, a: u32, b: u32) -> bool {
        let Some((session, s)) = pick(&self.usable_sessions(), a) else {
            return false;
        };
        let rest_in_body = s.offset < self.blob_size(s.blob) || every(b, 2);
        self.emit(Op::CompleteUpload {
            session,
            rest_in_body,
            digest: DigestChoice::Correct,
        });
        true
    }

    fn mount(&mut self, a: u32, b: u32, c: u32) -> bool {
        let Some((from, blob)) = pick(&self.linked_blobs(), a) else {
            return false;
        };
        let others: Vec<Repo> = self
            .all_repos()
            .into_iter()
            .filter(|r| *r != from)
            .collect();
        let repo = pick(&others, b).unwrap_or(from);
        let from = if every(c, 5) { None } else { Some(from) };
        self.emit(Op::MountBlob { repo, blob, from });
        true
    }

    fn pull_blob(&mut self, a: u32, b: u32, c: u32) -> bool {
        let (repo, blob) = if !every(b, 5) {
            match pick(&self.linked_blobs(), a) {
                Some(x) => x,
                None => (self.repo(b), self.blob(a)),
            }
        } else {
            (self.repo(b), self.blob(a))
        };
        if every(c, 3) {
            self.emit(Op::HeadBlob { repo, blob });
            return true;
        }
        let size = self.blob_size(blob);
        let range = match c % 5 {
            1 if size > 0 => {
                let s = (c / 5) % size;
                let e = s + (c / 7) % (size - s);
                Some((s, Some(e)))
            }
            2 if size > 0 => Some(((c / 5) % size, None)),
            _ => None,
        };
        self.emit(Op::GetBlob { repo, blob, range });
        true
    }

    fn pull_manifest(&mut self, a: u32, b: u32, c: u32) -> bool {
        let tagged = self.tagged();
        if tagged.is_empty() && self.stored_manifests().is_empty() && !every(b, 4) {
            return false;
        }
        let (repo, reference) = if every(b, 10) {
            (self.repo(b), Reference::Tag(Self::tag(a)))
        } else if every(b, 2) && !tagged.is_empty() {
            let (r, t) = pick(&tagged, a).unwrap_or((Repo(0), String::new()));
            (r, Reference::Tag(t))
        } else if let Some((r, reference, _)) = pick(&self.stored_manifests(), a) {
            (r, reference)
        } else if self.content.manifest_count() > 0 && every(b, 3) {
            (
                self.repo(b),
                Reference::Digest(ManifestId(
                    (a as usize % self.content.manifest_count()) as u16,
                )),
            )
        } else {
            (self.repo(b), Reference::Tag(Self::tag(a)))
        };
        self.emit(if every(c, 3) {
            Op::HeadManifest { repo, reference }
        } else {
            Op::GetManifest { repo, reference }
        });
        true
    }

    fn referrers(&mut self, a: u32, b: u32, c: u32) -> bool {
        let mut subjects = Vec::new();
        for r in self.state.repos() {
            for (_, m) in self.state.manifests(r) {
                if let Some(s) = self.content.manifest_subject(m) {
                    subjects.push((r, s));
                }
            }
        }
        let (repo, subject) = match pick(&subjects, a) {
            Some(x) => x,
            None => {
                // Nothing refers to anything yet: push a referrer (or its dependencies).
                let referrers: Vec<u32> = (0..self.content.manifest_count())
                    .filter(|i| {
                        self.content
                            .manifest_subject(ManifestId(*i as u16))
                            .is_some()
                    })
                    .map(|i| i as u32)
                    .collect();
                match pick(&referrers, a) {
                    Some(m) if !every(c, 4) => {
                        self.push_manifest(m, b, c);
                        return true;
                    }
                    _ => match pick(&self.stored_manifests(), a) {
                        Some((r, _, m)) => (r, m),
                        None => return false,
                    },
                }
            }
        };
        let artifact_type = if every(c, 3) {
            let at = self
                .state
                .referrers(repo, subject, None, self.content)
                .into_iter()
                .filter_map(|f| f.artifact_type)
                .collect::<Vec<_>>();
            pick(&at, b)
                .or_else(|| Some(ARTIFACT_TYPES[b as usize % ARTIFACT_TYPES.len()].to_string()))
        } else {
            None
        };
        self.emit(Op::ListReferrers {
            repo,
            subject: Reference::Digest(subject),
            artifact_type,
        });
        true
    }

    fn delete_manifest(&mut self, a: u32, b: u32) -> bool {
        let tagged = self.tagged();
        if every(b, 2) && !tagged.is_empty() {
            if let Some((repo, t)) = pick(&tagged, a) {
                self.emit(Op::DeleteManifest {
                    repo,
                    reference: Reference::Tag(t),
                });
                return true;
            }
        }
        match pick(&self.stored_manifests(), a) {
            Some((repo, reference, _)) => {
                self.emit(Op::DeleteManifest { repo, reference });
                true
            }
            None => false,
        }
    }

    /// Pushes manifest `a` to repo `b`, preceded by its missing dependencies (blobs pushed or
    /// mounted, child manifests pushed by digest): at most `CHAIN` ops, within the op budget.
    fn push_manifest(&mut self, a: u32, b: u32, c: u32) {
        const CHAIN: u32 = 6;
        let n = self.content.manifest_count();
        if n == 0 {
            self.push_blob(a, b, c);
            return;
        }
        let repo = self.repo(b);
        let target = ManifestId((a as usize % n) as u16);
        for i in 0..CHAIN {
            if self.ops.len() >= self.cfg.max_ops.max(1) {
                return;
            }
            let c = c.wrapping_add(i.wrapping_mul(7));
            if self.push_manifest_step(repo, target, c) {
                return;
            }
        }
    }

    /// One op towards pushing `target` to `repo`; `true` once `target` itself was pushed (or
    /// cannot be).
    fn push_manifest_step(&mut self, repo: Repo, target: ManifestId, c: u32) -> bool {
        let n = self.content.manifest_count();
        let mut m = target;
        // Walk down to the first unsatisfied dependency (bounded by the content size).
        for _ in 0..=n {
            if let Some(blob) = self
                .content
                .manifest_blobs(m)
                .iter()
                .copied()
                .find(|bl| !self.state.has_blob(repo, *bl))
            {
                if self.state.has_blob_anywhere(blob) && every(c, 3) {
                    let from = self
                        .state
                        .repos()
                        .into_iter()
                        .find(|r| self.state.has_blob(*r, blob));
                    self.emit(Op::MountBlob { repo, blob, from });
                } else {
                    let method = self.method(blob, c);
                    self.emit(Op::PushBlob {
                        repo,
                        blob,
                        method,
                        digest: DigestChoice::Correct,
                    });
                }
                return false;
            }
            let child = self
                .content
                .manifest_children(m)
                .iter()
                .copied()
                .find(|ch| {
                    let d = self.content.manifest_digest(*ch).unwrap_or_default();
                    self.state.manifest_by_digest(repo, d).is_none()
                });
            match child {
                Some(ch) => m = ch,
                None => break,
            }
        }
        if self.state.manifest_pushable(repo, m, self.content).is_err() {
            return true;
        }
        let is_dependency = m != target;
        let sha512 = self
            .content
            .manifest_digest(m)
            .is_some_and(|d| d.starts_with("sha512:"));
        let (reference, tags) = if is_dependency || sha512 || c % 3 == 1 {
            let tags = if !is_dependency && !every(c, 3) {
                let k = 1 + (c / 4) % 3;
                let mut t: Vec<String> = (0..k).map(|i| Self::tag(c / 16 + i * 5)).collect();
                t.dedup();
                t
            } else {
                Vec::new()
            };
            (Reference::Digest(m), tags)
        } else {
            (Reference::Tag(Self::tag(c / 3)), Vec::new())
        };
        self.emit(Op::PushManifest {
            repo,
            manifest: m,
            reference,
            tags,
            content_type: ContentTypeChoice::Matching,
        });
        !is_dependency
    }

    /// Tags a stored (sha256) manifest again, adding or moving a tag.
    fn retag(&mut self, a: u32, c: u32) -> bool {
        let candidates: Vec<(Repo, ManifestId)> = self
            .stored_manifests()
            .into_iter()
            .filter(|(r, _, m)| {
                self.content
                    .manifest_digest(*m)
                    .is_some_and(|d| d.starts_with("sha256:"))
                    && self.state.manifest_pushable(*r, *m, self.content).is_ok()
            })
            .map(|(r, _, m)| (r, m))
            .collect();
        let Some((repo, manifest)) = pick(&candidates, a) else {
            return false;
        };
        self.emit(Op::PushManifest {
            repo,
            manifest,
            reference: Reference::Tag(Self::tag(c)),
            tags: Vec::new(),
            content_type: ContentTypeChoice::Matching,
        });
        true
    }

    /// A deliberately invalid op; `false` when none of the chosen kind is possible now.
    fn invalid_step(&mut self, kind: u16, a: u32, b: u32, c: u32) -> bool {
        match kind % 12 {
            0 | 1 => {
                let blob = self.blob(a);
                let method = self.method(blob, c);
                self.emit(Op::PushBlob {
                    repo: self.repo(b),
                    blob,
                    method,
                    digest: if every(kind, 12) {
                        DigestChoice::Wrong
                    } else {
                        DigestChoice::Malformed
                    },
                });
                true
            }
            2 => {
                let Some((session, _)) = pick(&self.usable_sessions(), a) else {
                    return false;
                };
                self.dubious.insert(session);
                self.emit(Op::CompleteUpload {
                    session,
                    rest_in_body: true,
                    digest: if every(b, 2) {
                        DigestChoice::Wrong
                    } else {
                        DigestChoice::Malformed
                    },
                });
                true
            }
            3 => {
                let candidates: Vec<_> = self
                    .usable_sessions()
                    .into_iter()
                    .filter(|(_, s)| s.offset > 0 || self.blob_size(s.blob) >= 2)
                    .collect();
                let Some((session, s)) = pick(&candidates, a) else {
                    return false;
                };
                let (start, end) = if s.offset > 0 { (0, s.offset) } else { (1, 2) };
                self.emit(Op::PatchChunk {
                    session,
                    start,
                    end,
                    streamed: false,
                });
                true
            }
            4 => {
                let body = match b % 8 {
                    0..=2 => BadManifest::NotJson,
                    3 | 4 => BadManifest::WrongSchemaVersion,
                    5 | 6 => BadManifest::BadDescriptorDigest,
                    _ => BadManifest::Oversized,
                };
                self.emit(Op::PushBadManifest {
                    repo: self.repo(a),
                    reference: Reference::Tag(Self::tag(c)),
                    body,
                });
                true
            }
            5 => {
                let endpoint = match c % 3 {
                    0 => BadNameEndpoint::TagList,
                    1 => BadNameEndpoint::ManifestGet,
                    _ => BadNameEndpoint::BlobUpload,
                };
                let name = pick(&bad_names(), a).unwrap_or_default();
                self.emit(Op::BadName { name, endpoint });
                true
            }
            6 => {
                let tag = pick(&bad_tags(), a).unwrap_or_default();
                let repo = self.repo(b);
                let reference = Reference::Raw(tag);
                let op = match c % 4 {
                    0 => Op::HeadManifest { repo, reference },
                    1 => Op::GetManifest { repo, reference },
                    2 if self.content.manifest_count() > 0 => Op::PushManifest {
                        repo,
                        manifest: ManifestId((a as usize % self.content.manifest_count()) as u16),
                        reference,
                        tags: Vec::new(),
                        content_type: ContentTypeChoice::Matching,
                    },
                    _ => Op::DeleteManifest { repo, reference },
                };
                self.emit(op);
                true
            }
            7 => {
                let unknown =
                    crate::content::digest_of(DigestAlgo::Sha256, b"ocidiff: no such blob");
                let digests = [
                    "sha256:xyz".to_string(),
                    "md5:abc".to_string(),
                    unknown.clone(),
                    unknown.to_ascii_uppercase().replace("SHA256", "sha256"),
                ];
                let digest = pick(&digests, a).unwrap_or_default();
                self.emit(Op::GetBlobRaw {
                    repo: self.repo(b),
                    digest,
                });
                true
            }
            8 => {
                let closed: Vec<Session> = (0..SESSIONS)
                    .map(Session)
                    .filter(|s| self.state.session_closed(*s))
                    .collect();
                let Some(session) = pick(&closed, a) else {
                    return false;
                };
                let op = match b % 4 {
                    0 => Op::UploadStatus { session },
                    1 => Op::PatchChunk {
                        session,
                        start: 0,
                        end: 1,
                        streamed: false,
                    },
                    2 => Op::CompleteUpload {
                        session,
                        rest_in_body: false,
                        digest: DigestChoice::Correct,
                    },
                    _ => Op::CancelUpload { session },
                };
                self.emit(op);
                true
            }
            9 => {
                // Re-push of a stored manifest under the same reference with a wrong or missing
                // Content-Type: rejected or accepted, the state is the same.
                let mut candidates: Vec<(Repo, ManifestId, Reference)> = self
                    .stored_manifests()
                    .into_iter()
                    .filter(|(_, r, _)| matches!(r, Reference::Digest(_)))
                    .map(|(repo, r, m)| (repo, m, r))
                    .collect();
                for (repo, t) in self.tagged() {
                    if let Some(m) = self.state.tag_target(repo, &t) {
                        if self.state.stored_manifest_digest(repo, m)
                            == self.content.manifest_sha256(m)
                        {
                            candidates.push((repo, m, Reference::Tag(t)));
                        }
                    }
                }
                let Some((repo, manifest, reference)) = pick(&candidates, a) else {
                    return false;
                };
                self.emit(Op::PushManifest {
                    repo,
                    manifest,
                    reference,
                    tags: Vec::new(),
                    content_type: if every(b, 2) {
                        ContentTypeChoice::Other("application/json".into())
                    } else {
                        ContentTypeChoice::Missing
                    },
                });
                true
            }
            10 => {
                // A sha512 manifest named by its sha256 digest.
                let candidates: Vec<(Repo, ManifestId)> = self
                    .stored_manifests()
                    .into_iter()
                    .filter(|(_, r, m)| {
                        matches!(r, Reference::Digest(_))
                            && self
                                .content
                                .manifest_digest(*m)
                                .is_some_and(|d| d.starts_with("sha512:"))
                    })
                    .map(|(r, _, m)| (r, m))
                    .collect();
                let Some((repo, m)) = pick(&candidates, a) else {
                    return false;
                };
                let reference = Reference::Raw(
                    self.content
                        .manifest_sha256(m)
                        .unwrap_or_default()
                        .to_string(),
                );
                self.emit(if every(b, 2) {
                    Op::HeadManifest { repo, reference }
                } else {
                    Op::GetManifest { repo, reference }
                });
                true
            }
            _ => {
                // A manifest whose blobs are missing (registries MAY reject it).
                let n = self.content.manifest_count();
                let repo = self.repo(b);
                let candidates: Vec<ManifestId> = (0..n)
                    .map(|i| ManifestId(i as u16))
                    .filter(|m| {
                        self.state
                            .manifest_pushable(repo, *m, self.content)
                            .is_err()
                    })
                    .collect();
                let Some(manifest) = pick(&candidates, a) else {
                    return false;
                };
                self.emit(Op::PushManifest {
                    repo,
                    manifest,
                    reference: Reference::Digest(manifest),
                    tags: Vec::new(),
                    content_type: ContentTypeChoice::Matching,
                });
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let cfg = GenConfig::default();
        for seed in [0u64, 1, 42, u64::MAX] {
            assert_eq!(generate_sequence(seed, &cfg), generate_sequence(seed, &cfg));
        }
        assert_ne!(generate_sequence(1, &cfg), generate_sequence(2, &cfg));
    }

    #[test]
    fn content_always_renders() {
        let cfg = GenConfig::default();
        for seed in 0..200u64 {
            let s = generate_sequence(seed, &cfg);
            assert!(Content::render(&s.content).is_ok(), "seed {seed}");
            assert!(!s.ops.is_empty() && s.ops.len() <= cfg.max_ops);
            assert!(!s.content.blobs.is_empty());
        }
    }

    #[test]
    fn valid_ops_are_valid_against_the_state() {
        let cfg = GenConfig {
            invalid_share: 0.0,
            max_ops: 40,
            ..GenConfig::default()
        };
        let mut pushes = 0;
        let mut completes = 0;
        let mut patches = 0;
        for seed in 0..200u64 {
            let seq = generate_sequence(seed, &cfg);
            let content = Content::render(&seq.content).unwrap();
            let mut state = ModelState::new();
            for op in &seq.ops {
                match op {
                    Op::PushManifest {
                        repo,
                        manifest,
                        reference,
                        tags,
                        content_type,
                    } => {
                        assert!(
                            state.manifest_push_valid(
                                *repo,
                                *manifest,
                                reference,
                                tags,
                                content_type,
                                &content
                            ),
                            "seed {seed}: {op:?}"
                        );
                        pushes += 1;
                    }
                    Op::PushBlob { digest, .. } => assert_eq!(*digest, DigestChoice::Correct),
                    Op::PatchChunk {
                        session,
                        start,
                        end,
                        ..
                    } => {
                        let s = state.session(*session).expect("patch on an open session");
                        assert_eq!(s.offset, *start);
                        assert!(end > start);
                        patches += 1;
                    }
                    Op::CompleteUpload {
                        session,
                        rest_in_body,
                        digest,
                    } => {
                        assert!(
                            state.completes(*session, *rest_in_body, *digest, &content),
                            "seed {seed}"
                        );
                        completes += 1;
                    }
                    Op::UploadStatus { session } | Op::CancelUpload { session } => {
                        assert!(state.session(*session).is_some())
                    }
                    Op::PushBadManifest { .. } | Op::BadName { .. } | Op::GetBlobRaw { .. } => {
                        panic!("invalid op with invalid_share 0: {op:?}")
                    }
                    _ => {}
                }
                state.apply(op, &content);
            }
        }
        assert!(
            pushes > 100 && completes > 10 && patches > 10,
            "{pushes} {completes} {patches}"
        );
    }

    #[test]
    fn invalid_ops_appear() {
        let cfg = GenConfig {
            invalid_share: 0.5,
            ..GenConfig::default()
        };
        let mut kinds = BTreeSet::new();
        for seed in 0..100u64 {
            for op in generate_sequence(seed, &cfg).ops {
                let k = match op {
                    Op::PushBadManifest { .. } => "bad-manifest",
                    Op::BadName { .. } => "bad-name",
                    Op::GetBlobRaw { .. } => "raw-digest",
                    Op::PushBlob {
                        digest: DigestChoice::Wrong,
                        ..
                    } => "wrong-digest",
                    Op::PushManifest {
                        content_type: ContentTypeChoice::Other(_),
                        ..
                    } => "content-type",
                    _ => continue,
                };
                kinds.insert(k);
            }
        }
        assert_eq!(kinds.len(), 5, "{kinds:?}");
    }
}
