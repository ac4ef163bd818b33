//! Concurrent cases: a sequential prefix that sets up shared state, a segment of clients
//! acting on it at the same time, and the reads after it that show what the segment left.
//!
//! Each case draws one family of races (real registries' races, see issue 11):
//! `tags` (different manifests PUT to the same tags while they are read and listed),
//! `blobs` (one blob pushed by several sessions, monolithic / single POST / chunked / mount,
//! racing reads and deletes), `deletes` (manifest, tag and blob deletes racing pulls and
//! pushes that reference them), `referrers` (referrers of one subject pushed and deleted
//! while listed), `uploads` (upload sessions interleaved in one repository, each client its
//! own session) and `mixed`.

use crate::ops::blob_pull::{GetBlob, HeadBlob};
use crate::ops::blob_push::{PushBlob, PushMethod};
use crate::ops::delete::{DeleteBlob, DeleteManifest};
use crate::ops::manifest_pull::{GetManifest, HeadManifest};
use crate::ops::manifest_push::PushManifest;
use crate::ops::mount::MountBlob;
use crate::ops::referrers::ListReferrers;
use crate::ops::tags::ListTags;
use crate::ops::upload::{CompleteUpload, PatchChunk, StartUpload};
use crate::ops::{Op, Sequence};
use crate::vocab::spec::{BlobSpec, ContentSpec, ManifestSpec, Reference};
use crate::vocab::{BlobId, ManifestId, Repo, Session};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The race families, in the order `--race-kinds` names them.
pub const KINDS: &[&str] = &["tags", "blobs", "deletes", "referrers", "uploads", "mixed"];

/// One concurrent case (also the `race.toml` of a finding).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaceCase {
    /// The race family it was drawn from.
    pub kind: String,
    #[serde(default)]
    pub content: ContentSpec,
    /// Run first, one op after the other, judged by the sequential oracle.
    #[serde(default)]
    pub prefix: Vec<Op>,
    /// The segment: each client's ops, all clients at once.
    pub clients: Vec<Client>,
    /// Run after every client is done, one after the other.
    #[serde(default)]
    pub after: Vec<Op>,
}

/// One client of a segment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub ops: Vec<Op>,
}

impl RaceCase {
    /// The prefix as a sequence.
    pub fn prefix_seq(&self) -> Sequence {
        Sequence {
            content: self.content.clone(),
            ops: self.prefix.clone(),
        }
    }

    /// Every client's ops.
    pub fn client_ops(&self) -> Vec<Vec<Op>> {
        self.clients.iter().map(|c| c.ops.clone()).collect()
    }

    /// Orders in which the segment's ops can run one at a time, each client's ops in their
    /// order (the sequential controls of a race): client by client first, then the clients
    /// reversed, then every other interleaving while there are at most `max` in all, else
    /// interleavings drawn at random (seeded by `seed`). At most `max` orders, each once.
    pub fn serial_orders(&self, max: usize, seed: u64) -> Vec<Vec<Op>> {
        let clients = self.client_ops();
        let mut orders: Vec<Vec<Op>> = Vec::new();
        let push = |orders: &mut Vec<Vec<Op>>, o: Vec<Op>| {
            if orders.len() < max && !orders.contains(&o) {
                orders.push(o);
            }
        };
        push(&mut orders, clients.iter().flatten().cloned().collect());
        push(
            &mut orders,
            clients.iter().rev().flatten().cloned().collect(),
        );
        let mut all = Vec::new();
        if interleavings(
            &clients,
            &mut vec![0; clients.len()],
            &mut Vec::new(),
            &mut all,
            max + 1,
        ) <= max
        {
            for o in all {
                push(&mut orders, o);
            }
            return orders;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..max * 4 {
            let mut next = vec![0; clients.len()];
            let mut o = Vec::new();
            while o.len() < self.segment_ops() {
                let open: Vec<usize> = (0..clients.len())
                    .filter(|c| next[*c] < clients[*c].len())
                    .collect();
                let c = open[rng.gen_range(0..open.len())];
                o.push(clients[c][next[c]].clone());
                next[c] += 1;
            }
            push(&mut orders, o);
        }
        orders
    }

    /// Ops in the segment.
    pub fn segment_ops(&self) -> usize {
        self.clients.iter().map(|c| c.ops.len()).sum()
    }

    /// The case as TOML.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// A case read back from TOML, with a clear error.
    pub fn from_toml(text: &str) -> anyhow::Result<RaceCase> {
        let c: RaceCase = toml::from_str(text)?;
        if c.clients.is_empty() {
            anyhow::bail!("a race case needs at least one client");
        }
        Ok(c)
    }
}

/// Bounds of generated segments.
#[derive(Clone, Debug)]
pub struct RaceConfig {
    /// At most this many clients (at least 2 are drawn).
    pub max_clients: usize,
    /// At most this many ops per client.
    pub max_ops: usize,
    /// Families to draw from (names of [`KINDS`]).
    pub kinds: Vec<String>,
    /// Exactly `max_clients` clients of `max_ops` ops each (the checker's worst case).
    pub exact: bool,
}

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig {
            max_clients: 4,
            max_ops: 3,
            kinds: KINDS.iter().map(|s| s.to_string()).collect(),
            exact: false,
        }
    }
}

const R0: Repo = Repo(0);
const R1: Repo = Repo(1);
const TAGS: &[&str] = &["a", "b", "c"];
/// Image manifests M0..M3 (pushed in the prefix), referrers of M0: M4..M6 (not pushed).
const IMAGES: u16 = 4;
const REFERRERS: std::ops::Range<u16> = 4..7;
/// Blobs B0..B7 are pushed in the prefix; B8, B9 are what blob races push.
const RACE_BLOBS: [u16; 2] = [8, 9];

fn content(rng: &mut ChaCha8Rng) -> ContentSpec {
    let blobs = (0..10)
        .map(|i| BlobSpec {
            size: if i == 0 { 2 } else { rng.gen_range(1..=4096) },
            seed: rng.gen(),
            algo: Default::default(),
        })
        .collect();
    let image = |layer: u16, subject: Option<u16>| ManifestSpec::Image {
        flavor: Default::default(),
        config: BlobId(0),
        config_media_type: None,
        layers: vec![BlobId(layer)],
        subject: subject.map(ManifestId),
        artifact_type: subject.map(|_| "application/vnd.ocidiff.race.test".to_string()),
        annotations: Default::default(),
        data_field: false,
        custom_fields: false,
        nondistributable: false,
        algo: Default::default(),
    };
    let manifests = (0..IMAGES)
        .map(|i| image(1 + i, None))
        .chain(REFERRERS.map(|i| image(1 + i, Some(0))))
        .collect();
    ContentSpec { blobs, manifests }
}

fn prefix() -> Vec<Op> {
    let mut v: Vec<Op> = (0..8)
        .map(|b| {
            Op::from(PushBlob {
                repo: R0,
                blob: BlobId(b),
                // POST, one PATCH, closing PUT: the push every registry tried takes.
                method: PushMethod::Chunked {
                    chunks: 1,
                    last_in_put: false,
                },
                digest: Default::default(),
            })
        })
        .collect();
    // By tag (`m0` ...): a registry that cannot push by digest still gets a judged segment.
    for m in 0..IMAGES {
        v.push(PushManifest::new(R0, ManifestId(m), Reference::Tag(format!("m{m}"))).into());
    }
    v.push(PushManifest::new(R0, ManifestId(0), Reference::Tag("a".into())).into());
    v
}

fn after() -> Vec<Op> {
    let mut v: Vec<Op> = TAGS
        .iter()
        .map(|t| {
            Op::from(GetManifest {
                repo: R0,
                reference: Reference::Tag(t.to_string()),
            })
        })
        .collect();
    v.push(
        ListTags {
            repo: R0,
            n: None,
            last: None,
        }
        .into(),
    );
    v.push(
        ListReferrers {
            repo: R0,
            subject: Reference::Digest(ManifestId(0)),
            artifact_type: None,
        }
        .into(),
    );
    for b in RACE_BLOBS {
        v.push(
            HeadBlob {
                repo: R0,
                blob: BlobId(b),
            }
            .into(),
        );
    }
    v.push(
        HeadBlob {
            repo: R1,
            blob: BlobId(8),
        }
        .into(),
    );
    for m in 0..IMAGES {
        v.push(
            HeadManifest {
                repo: R0,
                reference: Reference::Digest(ManifestId(m)),
            }
            .into(),
        );
    }
    v
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, v: &[T]) -> T {
    v[rng.gen_range(0..v.len())]
}

fn tag(rng: &mut ChaCha8Rng) -> Reference {
    Reference::Tag(pick(rng, TAGS).to_string())
}

fn image(rng: &mut ChaCha8Rng) -> ManifestId {
    ManifestId(rng.gen_range(0..IMAGES))
}

fn tags_op(rng: &mut ChaCha8Rng) -> Op {
    match rng.gen_range(0..10) {
        0..=3 => PushManifest::new(R0, image(rng), tag(rng)).into(),
        4 | 5 => GetManifest {
            repo: R0,
            reference: tag(rng),
        }
        .into(),
        6 => HeadManifest {
            repo: R0,
            reference: tag(rng),
        }
        .into(),
        7 | 8 => ListTags {
            repo: R0,
            n: None,
            last: None,
        }
        .into(),
        _ => DeleteManifest {
            repo: R0,
            reference: tag(rng),
        }
        .into(),
    }
}

/// The blob most blob races are about (readers poll it; most pushes push it).
const HOT_BLOB: BlobId = BlobId(RACE_BLOBS[0]);

fn blobs_op(rng: &mut ChaCha8Rng) -> Op {
    let blob = if rng.gen_bool(0.75) {
        HOT_BLOB
    } else {
        BlobId(RACE_BLOBS[1])
    };
    match rng.gen_range(0..10) {
        0..=4 => PushBlob {
            repo: R0,
            blob,
            method: match rng.gen_range(0..3) {
                0 => PushMethod::Monolithic,
                1 => PushMethod::SinglePost,
                _ => PushMethod::Chunked {
                    chunks: 2,
                    last_in_put: false,
                },
            },
            digest: Default::default(),
        }
        .into(),
        5 => MountBlob {
            repo: R1,
            blob,
            from: Some(R0),
        }
        .into(),
        6 => HeadBlob { repo: R0, blob }.into(),
        7 | 8 => GetBlob {
            repo: R0,
            blob,
            range: None,
        }
        .into(),
        _ => DeleteBlob { repo: R0, blob }.into(),
    }
}

fn deletes_op(rng: &mut ChaCha8Rng) -> Op {
    match rng.gen_range(0..10) {
        0 | 1 => DeleteManifest {
            repo: R0,
            reference: Reference::Digest(image(rng)),
        }
        .into(),
        2 => DeleteManifest {
            repo: R0,
            reference: tag(rng),
        }
        .into(),
        3 | 4 => PushManifest::new(R0, image(rng), tag(rng)).into(),
        5 => GetManifest {
            repo: R0,
            reference: Reference::Digest(image(rng)),
        }
        .into(),
        6 => GetManifest {
            repo: R0,
            reference: tag(rng),
        }
        .into(),
        7 => DeleteBlob {
            repo: R0,
            blob: BlobId(rng.gen_range(1..=IMAGES)),
        }
        .into(),
        8 => GetBlob {
            repo: R0,
            blob: BlobId(rng.gen_range(1..=IMAGES)),
            range: None,
        }
        .into(),
        _ => ListTags {
            repo: R0,
            n: None,
            last: None,
        }
        .into(),
    }
}

fn referrers_op(rng: &mut ChaCha8Rng) -> Op {
    let r = ManifestId(rng.gen_range(REFERRERS));
    match rng.gen_range(0..10) {
        0..=4 => PushManifest::new(R0, r, Reference::Digest(r)).into(),
        5..=7 => ListReferrers {
            repo: R0,
            subject: Reference::Digest(ManifestId(0)),
            artifact_type: None,
        }
        .into(),
        8 => DeleteManifest {
            repo: R0,
            reference: Reference::Digest(r),
        }
        .into(),
        _ => GetManifest {
            repo: R0,
            reference: Reference::Digest(r),
        }
        .into(),
    }
}

/// A client's own upload session: open, one chunk, close with the rest.
fn upload_client(session: Session, blob: BlobId, size: u32) -> Vec<Op> {
    let half = size / 2;
    let mut v: Vec<Op> = vec![StartUpload {
        repo: R0,
        session,
        blob,
        digest_algorithm: None,
    }
    .into()];
    if half > 0 {
        v.push(
            PatchChunk {
                session,
                start: 0,
                end: half,
                streamed: false,
            }
            .into(),
        );
    }
    v.push(
        CompleteUpload {
            session,
            rest_in_body: true,
            digest: Default::default(),
            gap: false,
        }
        .into(),
    );
    v
}

/// Draws the concurrent case of `seed`.
pub fn generate_race(seed: u64, cfg: &RaceConfig) -> RaceCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7261_6365);
    let content = content(&mut rng);
    let kinds: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| cfg.kinds.iter().any(|c| c == k))
        .collect();
    let kind = if kinds.is_empty() {
        "mixed"
    } else {
        pick(&mut rng, &kinds)
    };
    let max_clients = cfg.max_clients.max(2);
    let n = if cfg.exact {
        max_clients
    } else {
        rng.gen_range(2..=max_clients)
    };
    let mut clients = Vec::with_capacity(n);
    for c in 0..n {
        let k = if cfg.exact {
            cfg.max_ops.max(1)
        } else {
            rng.gen_range(1..=cfg.max_ops.max(1))
        };
        let family = match kind {
            "mixed" => pick(&mut rng, &KINDS[..5]),
            k => k,
        };
        let ops: Vec<Op> = match family {
            "uploads" if c % 2 == 0 => {
                let blob = pick(&mut rng, &RACE_BLOBS);
                let size = content.blobs[usize::from(blob)].size;
                upload_client(Session(c as u8), BlobId(blob), size)
            }
            "uploads" => (0..k).map(|_| blobs_op(&mut rng)).collect(),
            // A reader polling one blob while others push it: reads spread over the time
            // the pushes take.
            "blobs" if c > 0 && rng.gen_bool(0.5) => {
                let blob = HOT_BLOB;
                (0..cfg.max_ops.max(4))
                    .map(|_| match rng.gen_bool(0.5) {
                        true => HeadBlob { repo: R0, blob }.into(),
                        false => GetBlob {
                            repo: R0,
                            blob,
                            range: None,
                        }
                        .into(),
                    })
                    .collect()
            }
            "tags" => (0..k).map(|_| tags_op(&mut rng)).collect(),
            // The first client pushes the hot blob first (the others race it).
            "blobs" if c == 0 => std::iter::once(
                PushBlob {
                    repo: R0,
                    blob: HOT_BLOB,
                    method: match rng.gen_bool(0.5) {
                        true => PushMethod::SinglePost,
                        false => PushMethod::Monolithic,
                    },
                    digest: Default::default(),
                }
                .into(),
            )
            .chain((1..k).map(|_| blobs_op(&mut rng)))
            .collect(),
            "blobs" => (0..k).map(|_| blobs_op(&mut rng)).collect(),
            "deletes" => (0..k).map(|_| deletes_op(&mut rng)).collect(),
            _ => (0..k).map(|_| referrers_op(&mut rng)).collect(),
        };
        clients.push(Client { ops });
    }
    RaceCase {
        kind: kind.to_string(),
        content,
        prefix: prefix(),
        clients,
        after: after(),
    }
}

/// Every interleaving of `clients` (each client's ops in order) after `prefix`, into `out`, up
/// to `cap` of them; returns how many there were (stops counting at `cap`).
fn interleavings(
    clients: &[Vec<Op>],
    next: &mut Vec<usize>,
    prefix: &mut Vec<Op>,
    out: &mut Vec<Vec<Op>>,
    cap: usize,
) -> usize {
    if out.len() >= cap {
        return out.len();
    }
    let mut any = false;
    for c in 0..clients.len() {
        if next[c] >= clients[c].len() {
            continue;
        }
        any = true;
        prefix.push(clients[c][next[c]].clone());
        next[c] += 1;
        interleavings(clients, next, prefix, out, cap);
        next[c] -= 1;
        prefix.pop();
    }
    if !any {
        out.push(prefix.clone());
    }
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::content::Content;

    #[test]
    fn cases_render_and_round_trip_through_toml() {
        for seed in 0..60 {
            let c = generate_race(seed, &RaceConfig::default());
            assert!(c.clients.len() >= 2 && c.clients.len() <= 4, "{seed}");
            assert!(Content::render(&c.content).is_ok());
            let back = RaceCase::from_toml(&c.to_toml().unwrap()).unwrap();
            assert_eq!(back, c);
        }
        let kinds: std::collections::BTreeSet<String> = (0..60)
            .map(|s| generate_race(s, &RaceConfig::default()).kind)
            .collect();
        assert_eq!(kinds.len(), KINDS.len(), "{kinds:?}");
        assert!(RaceCase::from_toml("kind = \"x\"\nclients = []\n").is_err());
    }

    #[test]
    fn serial_orders_keep_each_clients_order() {
        use crate::ops::blob_pull::HeadBlob;
        use crate::vocab::{BlobId, Repo};
        let head = |b: u16| {
            Op::HeadBlob(HeadBlob {
                repo: Repo(0),
                blob: BlobId(b),
            })
        };
        let case = RaceCase {
            kind: "test".into(),
            content: Default::default(),
            prefix: Vec::new(),
            clients: vec![
                Client {
                    ops: vec![head(0), head(1)],
                },
                Client { ops: vec![head(2)] },
            ],
            after: Vec::new(),
        };
        // Small: every interleaving (3), client by client and reversed first.
        let orders = case.serial_orders(6, 1);
        assert_eq!(
            orders,
            vec![
                vec![head(0), head(1), head(2)],
                vec![head(2), head(0), head(1)],
                vec![head(0), head(2), head(1)],
            ]
        );
        // Bounded: at most `max`, each client's ops in order, none twice.
        let big = RaceCase {
            clients: (0..4)
                .map(|c| Client {
                    ops: (0..3).map(|k| head(c * 3 + k)).collect(),
                })
                .collect(),
            ..case
        };
        let orders = big.serial_orders(6, 1);
        assert_eq!(orders.len(), 6);
        for o in &orders {
            for c in big.client_ops() {
                let at: Vec<usize> = c
                    .iter()
                    .map(|op| o.iter().position(|x| x == op).unwrap())
                    .collect();
                assert!(at.windows(2).all(|w| w[0] < w[1]), "{o:?}");
            }
        }
        let unique: std::collections::BTreeSet<String> =
            orders.iter().map(|o| format!("{o:?}")).collect();
        assert_eq!(unique.len(), orders.len());
    }
}
