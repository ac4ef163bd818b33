//! The TOML scenario format shared by reproducers (`findings/<id>/scenario.toml`), hand-written
//! `scenarios/` and `corpora/`.
//!
//! ```toml
//! [meta]
//! title = "chunked upload answers 416 out of order"
//! description = "..."
//! spec = ["If a chunk is uploaded out of order, the registry MUST respond with a `416 ...`"]
//! seed = 42
//! targets = ["reference", "distribution"]
//!
//! [content]
//! blobs = [{ size = 10, seed = 1 }]
//!
//! [[ops]]
//! op = "push_blob"
//! repo = 0
//! blob = 0
//! method = "monolithic"
//!
//! [[expect]]          # optional, per op index (and optionally per exchange label)
//! op = 0
//! label = "put"
//! status = [201]
//! headers = { location = "..." }   # equals
//! present = ["location"]
//!
//! [divergence]        # reproducers only: what this scenario is expected to show
//! target = "distribution"
//! ...
//! ```
//!
//! `read` never panics on bad input: errors carry the file, line and column.

use crate::model::{ContentSpec, Op, Sequence};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Free-form description of a scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Spec sentences this scenario exercises (quoted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spec: Vec<String>,
    /// Seed the sequence was generated from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_u64")]
    pub seed: Option<u64>,
    /// Target names the scenario was written against (informational).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

/// Facts a response body must have.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyExpect {
    /// `BodyFacts` kind: "empty", "content", "errors", "tags", "referrers", "catalog", "other".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Error codes (any order) the body must contain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<String>,
    /// The exact tag list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Number of referrers descriptors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrers: Option<usize>,
}

/// An explicit expectation on one op's exchange(s), checked on every target by `engine::replay`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Index into `ops`.
    pub op: usize,
    /// Exchange label ("put", "patch#2", ...); `None` = the op's last exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Allowed statuses (any of); `status = 200` or `status = [201, 202]`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub status: Vec<u16>,
    /// Headers (lower-case names) that must equal these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Headers that must be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<String>,
    /// Headers that must be absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyExpect>,
}

/// For reproducers: the divergence this scenario demonstrates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedDivergence {
    pub target: String,
    pub op_index: usize,
    pub endpoint: String,
    pub field: String,
    /// "violation" / "variation" / "unsupported".
    pub class: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
}

/// A whole scenario file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub meta: Meta,
    #[serde(default)]
    pub content: ContentSpec,
    #[serde(default)]
    pub ops: Vec<Op>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Expect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<ExpectedDivergence>,
}

impl Scenario {
    /// A scenario holding just a sequence.
    pub fn from_sequence(seq: &Sequence) -> Scenario {
        Scenario {
            content: seq.content.clone(),
            ops: seq.ops.clone(),
            ..Scenario::default()
        }
    }

    /// The sequence (content + ops) this scenario runs.
    pub fn sequence(&self) -> Sequence {
        Sequence {
            content: self.content.clone(),
            ops: self.ops.clone(),
        }
    }
}

/// Reading or writing a scenario failed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax or shape error; `line` / `column` are 1-based (0 when unknown).
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: semantic error: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("cannot serialize scenario: {0}")]
    Serialize(String),
}

/// Reads and validates a scenario file.
pub fn read(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    from_str(&text, path)
}

/// Parses scenario text; `file` only names the source in errors.
pub fn from_str(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
    let sc: Scenario = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        ScenarioError::Parse {
            file: file.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    validate(&sc).map_err(|message| ScenarioError::Invalid {
        file: file.to_path_buf(),
        message,
    })?;
    Ok(sc)
}

/// Serializes a scenario to TOML text.
pub fn to_string(sc: &Scenario) -> Result<String, ScenarioError> {
    toml::to_string(sc).map_err(|e| ScenarioError::Serialize(e.to_string()))
}

/// Writes a scenario atomically (temp file + rename).
pub fn write(sc: &Scenario, path: impl AsRef<Path>) -> Result<(), ScenarioError> {
    let path = path.as_ref();
    let text = to_string(sc)?;
    let io = |source| ScenarioError::Io {
        file: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut line = 1;
    let mut col = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Checks symbolic references: every blob / manifest id used exists; manifests only reference
/// lower-numbered manifests; expectations name existing ops.
fn validate(sc: &Scenario) -> Result<(), String> {
    use crate::model::ManifestSpec;
    let nb = sc.content.blobs.len();
    let nm = sc.content.manifests.len();
    let blob_ok = |b: crate::model::BlobId, what: &str| -> Result<(), String> {
        if (b.0 as usize) < nb {
            Ok(())
        } else {
            Err(format!("{what}: blob {} does not exist ({nb} blobs)", b.0))
        }
    };
    for (i, m) in sc.content.manifests.iter().enumerate() {
        let what = format!("content.manifests[{i}]");
        let below = |id: crate::model::ManifestId| -> Result<(), String> {
            if (id.0 as usize) < i {
                Ok(())
            } else {
                Err(format!(
                    "{what}: references manifest {} (must be lower than {i})",
                    id.0
                ))
            }
        };
        match m {
            ManifestSpec::Image {
                config,
                layers,
                subject,
                ..
            } => {
                blob_ok(*config, &what)?;
                for l in layers {
                    blob_ok(*l, &what)?;
                }
                if let Some(s) = subject {
                    below(*s)?;
                }
            }
            ManifestSpec::Index {
                manifests, subject, ..
            } => {
                for c in manifests {
                    below(*c)?;
                }
                if let Some(s) = subject {
                    below(*s)?;
                }
            }
        }
    }
    for (i, op) in sc.ops.iter().enumerate() {
        let what = format!("ops[{i}]");
        for b in op_blobs(op) {
            blob_ok(b, &what)?;
        }
        for m in op_manifests(op) {
            if (m.0 as usize) >= nm {
                return Err(format!(
                    "{what}: manifest {} does not exist ({nm} manifests)",
                    m.0
                ));
            }
        }
    }
    for (i, e) in sc.expect.iter().enumerate() {
        if e.op >= sc.ops.len() {
            return Err(format!(
                "expect[{i}]: op {} does not exist ({} ops)",
                e.op,
                sc.ops.len()
            ));
        }
    }
    Ok(())
}

/// Blob ids an op names directly.
pub fn op_blobs(op: &Op) -> Vec<crate::model::BlobId> {
    match op {
        Op::PushBlob { blob, .. }
        | Op::StartUpload { blob, .. }
        | Op::MountBlob { blob, .. }
        | Op::HeadBlob { blob, .. }
        | Op::GetBlob { blob, .. }
        | Op::DeleteBlob { blob, .. } => vec![*blob],
        _ => vec![],
    }
}

/// Manifest ids an op names directly (including through `Reference::Digest`).
pub fn op_manifests(op: &Op) -> Vec<crate::model::ManifestId> {
    use crate::model::Reference;
    let r = |r: &Reference| match r {
        Reference::Digest(m) => vec![*m],
        _ => vec![],
    };
    match op {
        Op::PushManifest {
            manifest,
            reference,
            ..
        } => {
            let mut v = vec![*manifest];
            v.extend(r(reference));
            v
        }
        Op::HeadManifest { reference, .. }
        | Op::GetManifest { reference, .. }
        | Op::DeleteManifest { reference, .. }
        | Op::PushBadManifest { reference, .. } => r(reference),
        Op::ListReferrers { subject, .. } => r(subject),
        _ => vec![],
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        One(u16),
        Many(Vec<u16>),
    }
    Ok(match Repr::deserialize(d)? {
        Repr::One(v) => vec![v],
        Repr::Many(v) => v,
    })
}

mod opt_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => crate::model::serde_u64::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "crate::model::serde_u64")] u64);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    /// A sequence using every `Op` variant and every content feature.
    pub(crate) fn every_variant() -> Sequence {
        let mut ann = BTreeMap::new();
        ann.insert("org.example.k".to_string(), "v \"quoted\"".to_string());
        Sequence {
            content: ContentSpec {
                blobs: vec![
                    BlobSpec {
                        size: 10,
                        seed: 1,
                        algo: DigestAlgo::Sha256,
                    },
                    BlobSpec {
                        size: 0,
                        seed: u64::MAX,
                        algo: DigestAlgo::Sha512,
                    },
                ],
                manifests: vec![
                    ManifestSpec::Image {
                        flavor: Flavor::Oci,
                        config: BlobId(0),
                        config_media_type: None,
                        layers: vec![BlobId(1)],
                        subject: None,
                        artifact_type: None,
                        annotations: BTreeMap::new(),
                        data_field: true,
                        custom_fields: true,
                        algo: DigestAlgo::Sha256,
                    },
                    ManifestSpec::Image {
                        flavor: Flavor::Docker,
                        config: BlobId(0),
                        config_media_type: Some("application/x-cfg".into()),
                        layers: vec![],
                        subject: Some(ManifestId(0)),
                        artifact_type: Some("application/vnd.example".into()),
                        annotations: ann.clone(),
                        data_field: false,
                        custom_fields: false,
                        algo: DigestAlgo::Sha512,
                    },
                    ManifestSpec::Index {
                        flavor: Flavor::Oci,
                        manifests: vec![ManifestId(0), ManifestId(1)],
                        subject: Some(ManifestId(0)),
                        artifact_type: Some("application/x-idx".into()),
                        annotations: ann,
                        algo: DigestAlgo::Sha256,
                    },
                ],
            },
            ops: vec![
                Op::CheckApi,
                Op::PushBlob {
                    repo: Repo(0),
                    blob: BlobId(0),
                    method: PushMethod::Monolithic,
                    digest: DigestChoice::Correct,
                },
                Op::PushBlob {
                    repo: Repo(0),
                    blob: BlobId(1),
                    method: PushMethod::SinglePost,
                    digest: DigestChoice::Wrong,
                },
                Op::PushBlob {
                    repo: Repo(1),
                    blob: BlobId(0),
                    method: PushMethod::Chunked {
                        chunks: 3,
                        last_in_put: true,
                    },
                    digest: DigestChoice::Malformed,
                },
                Op::PushBlob {
                    repo: Repo(1),
                    blob: BlobId(1),
                    method: PushMethod::Streamed,
                    digest: DigestChoice::Correct,
                },
                Op::StartUpload {
                    repo: Repo(0),
                    session: Session(0),
                    blob: BlobId(0),
                    digest_algorithm: Some(DigestAlgo::Sha512),
                },
                Op::PatchChunk {
                    session: Session(0),
                    start: 0,
                    end: 5,
                    streamed: true,
                },
                Op::UploadStatus {
                    session: Session(0),
                },
                Op::CompleteUpload {
                    session: Session(0),
                    rest_in_body: true,
                    digest: DigestChoice::Correct,
                },
                Op::CancelUpload {
                    session: Session(0),
                },
                Op::MountBlob {
                    repo: Repo(2),
                    blob: BlobId(0),
                    from: Some(Repo(0)),
                },
                Op::MountBlob {
                    repo: Repo(2),
                    blob: BlobId(1),
                    from: None,
                },
                Op::HeadBlob {
                    repo: Repo(0),
                    blob: BlobId(0),
                },
                Op::GetBlob {
                    repo: Repo(0),
                    blob: BlobId(0),
                    range: Some((1, None)),
                },
                Op::GetBlob {
                    repo: Repo(0),
                    blob: BlobId(0),
                    range: Some((1, Some(3))),
                },
                Op::GetBlob {
                    repo: Repo(0),
                    blob: BlobId(0),
                    range: None,
                },
                Op::PushManifest {
                    repo: Repo(0),
                    manifest: ManifestId(0),
                    reference: Reference::Digest(ManifestId(0)),
                    tags: vec!["a".into(), "b".into()],
                    content_type: ContentTypeChoice::Other("text/plain".into()),
                },
                Op::PushManifest {
                    repo: Repo(0),
                    manifest: ManifestId(1),
                    reference: Reference::Tag("v1".into()),
                    tags: vec![],
                    content_type: ContentTypeChoice::Missing,
                },
                Op::PushBadManifest {
                    repo: Repo(0),
                    reference: Reference::Raw("sha256:zz".into()),
                    body: BadManifest::Oversized,
                },
                Op::HeadManifest {
                    repo: Repo(0),
                    reference: Reference::Tag("v1".into()),
                },
                Op::GetManifest {
                    repo: Repo(0),
                    reference: Reference::Digest(ManifestId(2)),
                },
                Op::ListTags {
                    repo: Repo(0),
                    n: Some(0),
                    last: Some("a".into()),
                },
                Op::ListTagsPaged {
                    repo: Repo(0),
                    n: 1,
                },
                Op::ListReferrers {
                    repo: Repo(0),
                    subject: Reference::Digest(ManifestId(0)),
                    artifact_type: Some("application/vnd.example".into()),
                },
                Op::Catalog { n: Some(5) },
                Op::Catalog { n: None },
                Op::DeleteManifest {
                    repo: Repo(0),
                    reference: Reference::Tag("v1".into()),
                },
                Op::DeleteBlob {
                    repo: Repo(0),
                    blob: BlobId(1),
                },
                Op::BadName {
                    name: "UPPER/../x".into(),
                    endpoint: BadNameEndpoint::BlobUpload,
                },
                Op::GetBlobRaw {
                    repo: Repo(0),
                    digest: "sha256:".into(),
                },
            ],
        }
    }

    fn generated(seed: u64) -> Sequence {
        crate::generate::generate_sequence(seed, &crate::generate::GenConfig::default())
    }

    fn roundtrip(sc: &Scenario) {
        let text = to_string(sc).expect("serialize");
        let back = from_str(&text, Path::new("mem.toml"))
            .unwrap_or_else(|e| panic!("{e}\n--- text ---\n{text}"));
        assert_eq!(&back, sc, "round trip changed the scenario:\n{text}");
    }

    #[test]
    fn roundtrip_every_variant() {
        let mut sc = Scenario::from_sequence(&every_variant());
        sc.meta = Meta {
            title: "t".into(),
            description: "multi\nline \"d\"".into(),
            spec: vec!["A GET request ... MUST be `200 OK`.".into()],
            seed: Some(u64::MAX - 3),
            targets: vec!["reference".into(), "x".into()],
        };
        let mut headers = BTreeMap::new();
        headers.insert("range".into(), "0-4".into());
        sc.expect = vec![Expect {
            op: 6,
            label: Some("patch".into()),
            status: vec![202],
            headers,
            present: vec!["location".into()],
            absent: vec!["link".into()],
            body: Some(BodyExpect {
                kind: Some("tags".into()),
                tags: Some(vec!["a".into()]),
                error_codes: vec!["X".into()],
                ..BodyExpect::default()
            }),
        }];
        sc.divergence = Some(ExpectedDivergence {
            target: "x".into(),
            op_index: 3,
            endpoint: "end-6".into(),
            field: "status".into(),
            class: "violation".into(),
            rule: "end-6/put-201".into(),
            summary: String::new(),
        });
        roundtrip(&sc);
        roundtrip(&Scenario::default());
    }

    #[test]
    fn roundtrip_generated() {
        for seed in [0u64, 1, 2, 7, 42, 1234, u64::MAX] {
            let seq = generated(seed);
            let mut sc = Scenario::from_sequence(&seq);
            sc.meta.seed = Some(seed);
            roundtrip(&sc);
        }
    }

    #[test]
    fn file_roundtrip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        let sc = Scenario::from_sequence(&every_variant());
        write(&sc, &p).unwrap();
        assert_eq!(read(&p).unwrap(), sc);

        // Syntax error on line 3.
        let bad = "[meta]\ntitle = \"x\"\n[[ops]]\nop = \"check_api\"\nfoo = = 1\n";
        std::fs::write(&p, bad).unwrap();
        match read(&p) {
            Err(ScenarioError::Parse { line, column, .. }) => {
                assert_eq!(line, 5);
                assert!(column >= 1);
            }
            other => panic!("expected parse error, got {other:?}"),
        }
        // Unknown op variant: points at the [[ops]] entry.
        let bad = "[meta]\ntitle = \"x\"\n\n[[ops]]\nop = \"frobnicate\"\n";
        std::fs::write(&p, bad).unwrap();
        match read(&p) {
            Err(e @ ScenarioError::Parse { line, .. }) => {
                assert!((4..=5).contains(&line), "{e}");
                assert!(e.to_string().contains("s.toml:"), "{e}");
            }
            other => panic!("expected parse error, got {other:?}"),
        }
        // A single status is accepted as well as a list.
        let one = "[[ops]]\nop = \"check_api\"\n[[expect]]\nop = 0\nstatus = 200\n";
        std::fs::write(&p, one).unwrap();
        assert_eq!(read(&p).unwrap().expect[0].status, vec![200]);
        // Dangling blob reference.
        let bad = "[[ops]]\nop = \"head_blob\"\nrepo = 0\nblob = 3\n";
        std::fs::write(&p, bad).unwrap();
        assert!(matches!(read(&p), Err(ScenarioError::Invalid { .. })));
        // Missing file.
        assert!(matches!(
            read(dir.path().join("nope.toml")),
            Err(ScenarioError::Io { .. })
        ));
        // Wrong type.
        let bad = "[[ops]]\nop = \"head_blob\"\nrepo = \"zero\"\nblob = 0\n";
        std::fs::write(&p, bad).unwrap();
        assert!(matches!(read(&p), Err(ScenarioError::Parse { .. })));
    }
}
