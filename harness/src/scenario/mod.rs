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

pub mod checks;

use crate::ops::{Op, Sequence};
use crate::vocab::ContentSpec;
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
    /// The body is exactly the bytes of this blob (length and digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<u16>,
    /// The body is exactly the bytes of this manifest (length and digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<u16>,
    /// The referrers descriptors are exactly these manifests (any order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_manifests: Option<Vec<u16>>,
    /// The `artifactType` of every referrers descriptor (sorted; "" for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_types: Option<Vec<String>>,
    /// The `name` of a tag list (placeholders allowed: `{repo:0}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tags of all the op's exchanges (every page of `list_tags_paged`), concatenated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_tags: Option<Vec<String>>,
    /// Every referrers descriptor that names a manifest of the content has that manifest's
    /// `mediaType` and `size`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub referrer_descriptors: bool,
    /// Every referrers descriptor that names a manifest of the content carries that manifest's
    /// annotations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub referrer_annotations: bool,
}

/// How binding a check is: `must` failures fail; `should` / `may` failures are warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Must,
    Should,
    May,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Must => "must",
            Level::Should => "should",
            Level::May => "may",
        })
    }
}

/// An explicit expectation on one op's exchange(s), checked on every target by `engine::replay`
/// and `ocidiff run` / `ocidiff conformance` (see `checks`).
///
/// String values of `headers` and `matches` may name content symbolically: `{blob:N}` /
/// `{manifest:N}` (digest), `{blob-size:N}` / `{manifest-size:N}`, `{manifest-type:N}` and
/// `{repo:N}` (the repository name on the target).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Index into `ops`.
    pub op: usize,
    /// Name of the check, unique within the file (default: `op<N>-<label>`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `must` (default, or from `rule`'s class), `should` or `may`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// A rule id of `oracle::RULES`: supplies the endpoint, the spec sentence and the level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Endpoint id ("end-2", ...); default: the rule's, else the exchange's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The quoted spec sentence; default: the rule's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
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
    /// Headers whose (normalized) value must match a regular expression.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matches: BTreeMap<String, String>,
    /// Headers whose (normalized) value, when the header is sent, must match a regular
    /// expression (an optional header's format).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matches_if_present: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyExpect>,
    /// Statuses meaning "optional feature declined": the check is skipped (unsupported).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub unsupported: Vec<u16>,
    /// Names of earlier checks this one depends on: skipped unless each passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// At least this many exchanges (e.g. pages of `list_tags_paged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_exchanges: Option<usize>,
    /// Skip (rather than fail) when the op has no exchange `label` (it took another path, e.g.
    /// no `put-fallback` after a single POST answered 201).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_if_absent: bool,
}

impl Expect {
    /// The check's name (`name`, or `op<N>-<label>`).
    pub fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        match &self.label {
            Some(l) => format!("op{}-{l}", self.op),
            None => format!("op{}", self.op),
        }
    }
}

/// Ops run concurrently (each as its own request sequence, on every target), e.g. pushes to one
/// repository at the same time. The ops must be consecutive and must not use upload sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concurrent {
    pub ops: Vec<usize>,
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
    pub concurrent: Vec<Concurrent>,
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
    /// A well-formed file that names things that do not exist (or similar); `line` / `column`
    /// point at the offending entry (best effort, 1-based).
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
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
    validate(&sc).map_err(|(at, message)| {
        let (line, column) = locate(text, at);
        ScenarioError::Invalid {
            file: file.to_path_buf(),
            line,
            column,
            message,
        }
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

/// Where in the file a semantic error is.
#[derive(Clone, Copy, Debug)]
enum At {
    Manifest(usize),
    Op(usize),
    Expect(usize),
    Concurrent(usize),
}

/// Best-effort 1-based (line, column) of an entry, found by re-reading the file with spans.
fn locate(text: &str, at: At) -> (usize, usize) {
    use toml::Spanned;
    #[derive(Deserialize)]
    struct C {
        #[serde(default)]
        manifests: Vec<Spanned<toml::Value>>,
    }
    #[derive(Deserialize)]
    struct S {
        #[serde(default)]
        content: Option<C>,
        #[serde(default)]
        ops: Vec<Spanned<toml::Value>>,
        #[serde(default)]
        expect: Vec<Spanned<toml::Value>>,
        #[serde(default)]
        concurrent: Vec<Spanned<toml::Value>>,
    }
    let Ok(s) = toml::from_str::<S>(text) else {
        return (1, 1);
    };
    let span = match at {
        At::Manifest(i) => s
            .content
            .as_ref()
            .and_then(|c| c.manifests.get(i))
            .map(|v| v.span()),
        At::Op(i) => s.ops.get(i).map(|v| v.span()),
        At::Expect(i) => s.expect.get(i).map(|v| v.span()),
        At::Concurrent(i) => s.concurrent.get(i).map(|v| v.span()),
    };
    span.map(|sp| line_col(text, sp.start)).unwrap_or((1, 1))
}

/// Checks symbolic references: every blob / manifest id used exists; manifests only reference
/// lower-numbered manifests; expectations name existing ops, labels of the right form, valid
/// regular expressions and earlier checks; concurrent groups are consecutive and session-free.
fn validate(sc: &Scenario) -> Result<(), (At, String)> {
    validate_content_ops(sc)?;
    validate_expect(sc)?;
    validate_concurrent(sc)
}

fn validate_expect(sc: &Scenario) -> Result<(), (At, String)> {
    let mut names: Vec<String> = Vec::new();
    for (i, e) in sc.expect.iter().enumerate() {
        let err = |m: String| (At::Expect(i), format!("expect[{i}]: {m}"));
        if e.op >= sc.ops.len() {
            return Err(err(format!(
                "op {} does not exist ({} ops)",
                e.op,
                sc.ops.len()
            )));
        }
        if let Some(r) = &e.rule {
            if !crate::compare::RULES.iter().any(|x| x.id == r) {
                return Err(err(format!(
                    "unknown rule {r:?} (see oracle::RULES / `scenarios/README.md`)"
                )));
            }
        }
        for (h, re) in &e.matches {
            if let Err(x) = regex::Regex::new(&without_placeholders(re)) {
                return Err(err(format!("matches.{h}: invalid regular expression: {x}")));
            }
        }
        for r in &e.requires {
            if !names.contains(r) {
                return Err(err(format!(
                    "requires {r:?}, which is not the name of an earlier check"
                )));
            }
        }
        let body_name = e.body.as_ref().and_then(|b| b.name.as_ref());
        for v in e
            .headers
            .values()
            .chain(e.matches.values())
            .chain(body_name)
        {
            check_placeholders(v, sc).map_err(err)?;
        }
        let name = e.display_name();
        if names.contains(&name) {
            return Err(err(format!("duplicate check name {name:?}")));
        }
        names.push(name);
        if let Some(b) = &e.body {
            let nb = sc.content.blobs.len();
            let nm = sc.content.manifests.len();
            if b.blob.is_some_and(|x| x as usize >= nb) {
                return Err(err(format!("body.blob: blob does not exist ({nb} blobs)")));
            }
            let bad_m = |x: u16| x as usize >= nm;
            if b.manifest.is_some_and(bad_m)
                || b.referrer_manifests
                    .as_ref()
                    .is_some_and(|v| v.iter().any(|x| bad_m(*x)))
            {
                return Err(err(format!(
                    "body: manifest does not exist ({nm} manifests)"
                )));
            }
        }
    }
    Ok(())
}

/// `re` with each `{kind:N}` placeholder replaced by a literal, to compile-check it.
fn without_placeholders(re: &str) -> String {
    const KINDS: [&str; 6] = [
        "blob",
        "blob-size",
        "manifest",
        "manifest-size",
        "manifest-type",
        "repo",
    ];
    let mut out = String::new();
    let mut rest = re;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let placeholder = after.find('}').filter(|close| {
            after[1..*close].split_once(':').is_some_and(|(k, n)| {
                KINDS.contains(&k) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            })
        });
        match placeholder {
            Some(close) => {
                out.push('x');
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `{kind:N}` placeholders must name existing content.
fn check_placeholders(v: &str, sc: &Scenario) -> Result<(), String> {
    let mut rest = v;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let Some((kind, n)) = inner.split_once(':') else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else {
            continue;
        };
        let (exists, what) = match kind {
            "blob" | "blob-size" => (n < sc.content.blobs.len(), "blob"),
            "manifest" | "manifest-size" | "manifest-type" => {
                (n < sc.content.manifests.len(), "manifest")
            }
            "repo" => (n <= u8::MAX as usize, "repo"),
            _ => continue,
        };
        if !exists {
            return Err(format!(
                "placeholder {{{inner}}}: {what} {n} does not exist"
            ));
        }
    }
    Ok(())
}

fn validate_concurrent(sc: &Scenario) -> Result<(), (At, String)> {
    // Segment of each op: sequential runs share a segment; each concurrent op has its own.
    let mut in_group = vec![None; sc.ops.len()];
    for (g, c) in sc.concurrent.iter().enumerate() {
        let err = |m: String| (At::Concurrent(g), format!("concurrent[{g}]: {m}"));
        if c.ops.len() < 2 {
            return Err(err("a concurrent group needs at least two ops".into()));
        }
        for (k, &o) in c.ops.iter().enumerate() {
            if o >= sc.ops.len() {
                return Err(err(format!("op {o} does not exist ({} ops)", sc.ops.len())));
            }
            if k > 0 && o != c.ops[k - 1] + 1 {
                return Err(err(
                    "the ops of a group must be consecutive and ascending".into()
                ));
            }
            if in_group[o].is_some() {
                return Err(err(format!("op {o} is in two groups")));
            }
            in_group[o] = Some(g);
            if session_of(&sc.ops[o]).is_some() {
                return Err(err(format!(
                    "op {o} uses an upload session; concurrent ops must be self-contained"
                )));
            }
        }
    }
    if sc.concurrent.is_empty() {
        return Ok(());
    }
    // A session must be used in the segment that started it.
    let mut segment = 0usize;
    let mut started: BTreeMap<crate::vocab::Session, usize> = BTreeMap::new();
    let mut prev_group: Option<usize> = None;
    for (i, op) in sc.ops.iter().enumerate() {
        if in_group[i].is_some() || prev_group.is_some() {
            segment += 1;
        }
        prev_group = in_group[i];
        match op {
            Op::StartUpload(start) => {
                started.insert(start.session, segment);
            }
            _ => {
                if let Some(s) = session_of(op) {
                    if started.get(&s).is_some_and(|seg| *seg != segment) {
                        return Err((
                            At::Op(i),
                            format!(
                                "ops[{i}]: session {} was started before a concurrent group; \
                                 sessions do not survive a concurrent group",
                                s.0
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The upload session an op uses, if any.
pub fn session_of(op: &Op) -> Option<crate::vocab::Session> {
    op.op().ids().sessions.first().copied()
}

fn validate_content_ops(sc: &Scenario) -> Result<(), (At, String)> {
    use crate::vocab::ManifestSpec;
    let nb = sc.content.blobs.len();
    let nm = sc.content.manifests.len();
    let blob_ok = |b: crate::vocab::BlobId, what: &str| -> Result<(), String> {
        if (b.0 as usize) < nb {
            Ok(())
        } else {
            Err(format!("{what}: blob {} does not exist ({nb} blobs)", b.0))
        }
    };
    for (i, m) in sc.content.manifests.iter().enumerate() {
        let what = format!("content.manifests[{i}]");
        let at = At::Manifest(i);
        let below = |id: crate::vocab::ManifestId| -> Result<(), String> {
            if (id.0 as usize) < i {
                Ok(())
            } else {
                Err(format!(
                    "{what}: references manifest {} (must be lower than {i})",
                    id.0
                ))
            }
        };
        let r: Result<(), String> = (|| {
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
            Ok(())
        })();
        r.map_err(|m| (at, m))?;
    }
    for (i, op) in sc.ops.iter().enumerate() {
        let what = format!("ops[{i}]");
        for b in op.op().ids().blobs {
            blob_ok(b, &what).map_err(|m| (At::Op(i), m))?;
        }
        for m in op.op().ids().manifests {
            if (m.0 as usize) >= nm {
                return Err((
                    At::Op(i),
                    format!("{what}: manifest {} does not exist ({nm} manifests)", m.0),
                ));
            }
        }
    }
    Ok(())
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
            Some(v) => crate::vocab::serde_util::serde_u64::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "crate::vocab::serde_util::serde_u64")] u64);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequence using every `Op` variant and every content feature.
    pub(crate) fn every_variant() -> Sequence {
        crate::ops::every_op()
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
        let mut matches = BTreeMap::new();
        matches.insert("location".into(), "^/v2/{repo:0}/blobs/{blob:1}$".into());
        sc.expect = vec![
            Expect {
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
                ..Expect::default()
            },
            Expect {
                op: 7,
                name: "status \"quoted\"".into(),
                level: Some(Level::Should),
                rule: Some("end-13/204".into()),
                endpoint: Some("end-13".into()),
                spec: Some("The response ... MUST be `204 No Content`".into()),
                matches,
                unsupported: vec![404, 405],
                requires: vec!["op6-patch".into()],
                min_exchanges: Some(2),
                skip_if_absent: true,
                body: Some(BodyExpect {
                    blob: Some(1),
                    manifest: Some(2),
                    referrer_manifests: Some(vec![1, 2]),
                    artifact_types: Some(vec!["".into(), "a/b".into()]),
                    all_tags: Some(vec![]),
                    name: Some("{repo:0}".into()),
                    referrers: Some(0),
                    len: Some(3),
                    sha256: Some("sha256:00".into()),
                    ..BodyExpect::default()
                }),
                ..Expect::default()
            },
        ];
        sc.concurrent = vec![Concurrent { ops: vec![1, 2, 3] }];
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
