//! The execute stage: runs each op's request plan (`vocab::plan`) against every target, all
//! targets concurrently, op by op.
//!
//! Each target keeps its own upload `Location` per `Session` (resolved against the URL of the
//! response that gave it, query string kept; further query pairs appended). `Repo(n)` renders
//! as `[<prefix>/]{namespace}/r{n}`. Nothing here panics on what a registry sends: transport
//! failures become `status: 0` observations with `transport_error`.
//!
//! Auth (see `auth`): HTTP basic when a username is set. Once a target has sent a
//! `WWW-Authenticate: Bearer realm=...` challenge, every request first gets a token for its own
//! scope (cached per scope until it expires); a 401 with a bearer challenge fetches a token for
//! the challenge's scope and retries once. Credentials and tokens never reach the recorded
//! exchanges.

pub mod auth;

use crate::observe;
use crate::ops::{Op, Sequence};
use crate::vocab::content::{sha256_hex, Content};
use crate::vocab::exchange::{
    BodyFacts, CaseOutcome, Exchange, History, Observation, OpOutcome, RequestRecord, TimedOp,
};
use crate::vocab::ids::DigestAlgo;
use crate::vocab::plan::{
    name_segments, path_segment, Body, Effect, Method, Plan, Seg, Step, Url as PlanUrl, Val,
    OCTET_STREAM,
};
use crate::vocab::redact::redact;
use crate::vocab::{BlobId, Repo, Session};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// One registry to run sequences against.
#[derive(Clone, PartialEq, Eq)]
pub struct ExecTarget {
    pub name: String,
    pub base_url: Url,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Per-target tuning: repository name prefix, TLS.
    pub options: TargetOptions,
}

impl std::fmt::Debug for ExecTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecTarget")
            .field("name", &self.name)
            .field("base_url", &redact(self.base_url.as_str()))
            .field("username", &self.username.as_ref().map(|_| "***"))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("options", &self.options)
            .finish()
    }
}

/// What differs per target beyond its URL and credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetOptions {
    /// Prepended to every repository name (`<prefix>/<namespace>/r<n>`), e.g. a Harbor project.
    /// Empty: none. Stripped again from repository names in observed bodies.
    pub repo_prefix: String,
    /// Accept any TLS certificate (`--insecure` / `insecure = true`).
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Repositories this target names literally instead of `<namespace>/r<n>` (content that
    /// is already there: `ocidiff conformance --read-only --repo R`). Observed tag-list names
    /// are mapped back to the symbolic form, so targets compare alike.
    pub repo_names: BTreeMap<u8, String>,
    /// Upload sessions held open at once on this target at most (`max_open_sessions` in
    /// `ocidiff.toml`); `None`: the run's (`--max-open-sessions`).
    pub max_open_sessions: Option<usize>,
    /// The spec version this registry claims (`spec_version` in `ocidiff.toml`); `None`: the
    /// run's (`--spec-version`).
    pub spec_version: Option<crate::vocab::spec_version::SpecVersion>,
    /// The least time between two requests to this target (`rate` in `ocidiff.toml`, as
    /// requests per second); `None`: the run's (`--rate`).
    pub min_interval: Option<Duration>,
    /// Requests this run may send to this target in all (`max_requests`); `None`: the run's
    /// (`--max-requests`).
    pub max_requests: Option<u64>,
}

/// The least time between two requests for a rate in requests per second: a clear error for
/// a rate that is not a positive number a run can keep (at most 10,000 per second).
pub fn interval_of_rate(rate: f64) -> Result<Duration, String> {
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!(
            "rate must be a positive number of requests per second, got {rate}"
        ));
    }
    if rate > 10_000.0 {
        return Err(format!(
            "rate {rate} requests per second is more than ocidiff can pace (at most 10000)"
        ));
    }
    Ok(Duration::from_secs_f64(1.0 / rate))
}

/// Bounds on every request.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Whole-request timeout (connect, send, read body).
    pub request_timeout: Duration,
    /// Response bodies are read up to this many bytes.
    pub max_body_bytes: u64,
    /// A paged step follows at most this many pages.
    pub max_pages: u32,
    /// At most this many requests in flight to one target (across every case sharing this
    /// executor and its subsets); `None`: no limit.
    pub max_inflight: Option<usize>,
    /// A target whose last this-many requests all went unanswered (timeouts, refused or reset
    /// connections) is dropped: later requests to it are not sent (skipped). `None`: never.
    pub unresponsive_after: Option<u32>,
    /// The spec version targets are judged by unless they claim one (`--spec-version`).
    pub spec_version: crate::vocab::spec_version::SpecVersion,
    /// A throttled request (`429`, or `503` with `Retry-After`) is sent again after the time
    /// the registry asks (exponential backoff from 0.5 s without one), at most this many
    /// times and for at most `throttle_wait` in all; still throttled then, it is recorded as
    /// not sent ("skipped: throttled"): the case is inconclusive there, never a divergence.
    pub throttle_retries: u32,
    pub throttle_wait: Duration,
    /// At most this many upload sessions held open at once on a target (across every case):
    /// a `POST` that would open another waits for room (at most `SESSION_WAIT`, then goes
    /// anyway and the target may throttle it). `None`: no bound.
    pub max_open_sessions: Option<usize>,
    /// The least time between two requests to a target (`--rate`), unless it sets its own
    /// (not the reference, the first target).
    pub min_interval: Option<Duration>,
    /// Requests a run may send to each target (`--max-requests`), unless it sets its own:
    /// once spent, later requests are recorded as not sent ("skipped: request budget spent")
    /// and drivers start no more cases.
    pub max_requests: Option<u64>,
}

/// The longest a `POST` waits for room under `ExecOptions::max_open_sessions`.
const SESSION_WAIT: Duration = Duration::from_secs(10);

/// The default bound on open upload sessions per target: well under the caps registries set
/// (nora-registry: 100 by default).
pub const DEFAULT_MAX_OPEN_SESSIONS: usize = 32;

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            request_timeout: Duration::from_secs(15),
            max_body_bytes: 16 << 20,
            max_pages: 50,
            max_inflight: None,
            unresponsive_after: Some(3),
            spec_version: Default::default(),
            throttle_retries: 6,
            throttle_wait: Duration::from_secs(30),
            max_open_sessions: Some(DEFAULT_MAX_OPEN_SESSIONS),
            min_interval: None,
            max_requests: None,
        }
    }
}

/// Why an executor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("target `{target}`: bad CA certificate: {reason}")]
    BadCa { target: String, reason: String },
    #[error("target `{target}`: cannot build an HTTP client: {reason}")]
    Client { target: String, reason: String },
}

struct TargetClient {
    target: ExecTarget,
    client: reqwest::Client,
    creds: Option<auth::Credentials>,
    bearer: auth::BearerState,
    inflight: Option<Arc<tokio::sync::Semaphore>>,
    health: Health,
    stats: TargetStats,
    /// Room for open upload sessions (`ExecOptions::max_open_sessions`).
    session_room: Option<Arc<tokio::sync::Semaphore>>,
    /// The least time between two requests, and when the next may go.
    pacer: Option<(Duration, tokio::sync::Mutex<tokio::time::Instant>)>,
    /// The request budget, and how much of it is left.
    budget: Option<(u64, std::sync::atomic::AtomicU64)>,
    /// After this instant (the run's deadline) only clean-up requests go out: the request in
    /// flight then still gets its answer, so a session it moved is cancelled by its new URL.
    stop_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl TargetClient {
    /// Waits for this target's next request slot under its rate.
    async fn pace(&self) {
        let Some((interval, next)) = &self.pacer else {
            return;
        };
        let slot = {
            let mut next = next.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + *interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Takes one request from the budget; `false` when it is spent.
    fn take_budget(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        match &self.budget {
            None => true,
            Some((_, left)) => left
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// Whether the budget is spent.
    fn budget_spent(&self) -> bool {
        self.budget
            .as_ref()
            .is_some_and(|(_, left)| left.load(std::sync::atomic::Ordering::Relaxed) == 0)
    }
}

/// What a target's requests cost beyond their answers: throttling and upload sessions.
#[derive(Default)]
struct TargetStats {
    /// Answers that asked to slow down (429, 503 with Retry-After), and the time waited.
    throttled: std::sync::atomic::AtomicU64,
    throttled_ms: std::sync::atomic::AtomicU64,
    /// Requests still throttled after the retries (recorded as not sent).
    gave_up: std::sync::atomic::AtomicU64,
    /// Requests sent (every attempt: retries, challenges answered and redirects followed).
    requests: std::sync::atomic::AtomicU64,
    sessions: SessionCounters,
    /// Upload sessions of runs dropped before their end (a case cut at the run's deadline):
    /// cancelled by `Executor::cancel_orphans`.
    orphans: std::sync::Mutex<Vec<Url>>,
    /// What the run created (every `201` of a blob or manifest), in order, for
    /// `Executor::delete_pushed`.
    pushed: std::sync::Mutex<Vec<Pushed>>,
}

/// A blob or manifest a run pushed to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pushed {
    manifest: bool,
    /// Its URL, by digest.
    url: Url,
}

/// Something a run pushed and could not delete at its end (`leftovers.json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Leftover {
    pub target: String,
    /// `manifest` or `blob`.
    pub kind: String,
    /// The path it lives at (`/v2/<name>/manifests/<digest>`, `/v2/<name>/blobs/<digest>`).
    pub path: String,
    /// The answer to its `DELETE` (0: none).
    pub status: u16,
    /// Why it stayed, in words.
    pub reason: String,
}

/// What `Executor::delete_pushed` did on one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cleanup {
    pub target: String,
    /// Deleted now, or gone already (404: a case deleted it, or a manifest's delete took it).
    pub deleted: u64,
    pub left: Vec<Leftover>,
}

/// Why a `DELETE` of pushed content did not delete it.
fn leftover_reason(o: &crate::vocab::exchange::Observation) -> String {
    use crate::vocab::exchange::BodyFacts;
    let codes = match &o.body {
        BodyFacts::Errors { codes } if !codes.is_empty() => format!(" ({})", codes.join(", ")),
        _ => String::new(),
    };
    match o.status {
        0 => o
            .transport_error
            .clone()
            .unwrap_or_else(|| "no answer".to_string()),
        405 => format!("deletes disabled or not supported (405){codes}"),
        401 => format!("not authorized to delete (401){codes}"),
        403 => format!("deleting is forbidden to these credentials (403){codes}"),
        s => format!("DELETE answered {s}{codes}"),
    }
}

/// Upload sessions a run opened on a target and what became of them.
#[derive(Default)]
struct SessionCounters {
    opened: std::sync::atomic::AtomicU64,
    /// Closed by a successful `PUT` (or gone when cancelled: 404).
    closed: std::sync::atomic::AtomicU64,
    /// Cancelled by `DELETE`, the case's own or ocidiff's at the end of the case.
    cancelled: std::sync::atomic::AtomicU64,
    /// Still open: the target refused the cancel (405, no cancel route) or did not answer.
    left_open: std::sync::atomic::AtomicU64,
    /// Why a cancel was refused, the first time.
    refusal: std::sync::Mutex<Option<String>>,
}

/// A target's throttling and upload-session figures for a run (`Executor::stats`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetRunStats {
    pub target: String,
    pub throttled: u64,
    pub throttled_seconds: f64,
    pub throttled_gave_up: u64,
    /// Requests sent to the target (every attempt).
    #[serde(default)]
    pub requests: u64,
    /// Its request budget (`max_requests`), when it has one, and whether the run spent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    #[serde(default)]
    pub budget_spent: bool,
    pub sessions_opened: u64,
    pub sessions_closed: u64,
    pub sessions_cancelled: u64,
    pub sessions_left_open: u64,
    /// Why the target refused to cancel a session (once per run), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_refused: Option<String>,
}

impl TargetRunStats {
    /// One line for the summary: what throttling and sessions cost on this target.
    pub fn line(&self) -> String {
        let budget = match self.max_requests {
            Some(n) if self.budget_spent => format!(" (budget of {n} spent)"),
            Some(n) => format!(" (budget {n})"),
            None => String::new(),
        };
        let mut s = format!(
            "{}: {} requests{budget}; upload sessions opened {}, closed {}, cancelled {}, left open {}",
            self.target,
            self.requests,
            self.sessions_opened,
            self.sessions_closed,
            self.sessions_cancelled,
            self.sessions_left_open
        );
        if let Some(why) = &self.cancel_refused {
            s.push_str(&format!(" (cancel refused: {why})"));
        }
        if self.throttled > 0 {
            s.push_str(&format!(
                "; throttled {} times, {:.1} s waited, {} requests given up (inconclusive)",
                self.throttled, self.throttled_seconds, self.throttled_gave_up
            ));
        }
        s
    }
}

/// A request given up (its case cut at the run's deadline) after waiting this long without an
/// answer counts as unanswered.
const ABANDONED_AFTER: Duration = Duration::from_secs(5);

/// A request in flight: dropped before it completed, after `ABANDONED_AFTER`, it counts as
/// unanswered.
struct Pending<'a> {
    health: &'a Health,
    limit: Option<u32>,
    started: std::time::Instant,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let waited = self.started.elapsed();
        if !self.done && waited >= ABANDONED_AFTER {
            let why = format!(
                "given up after {:.0} s without an answer",
                waited.as_secs_f64()
            );
            self.health.record(Some(&why), self.limit);
        }
    }
}

/// Whether a target still answers: consecutive unanswered requests, and the verdict.
#[derive(Default)]
struct Health {
    unanswered: std::sync::atomic::AtomicU32,
    dropped: std::sync::Mutex<Option<String>>,
}

impl Health {
    fn dropped(&self) -> Option<String> {
        self.dropped.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Records an answer (or its absence, with why); returns true when this drops the target.
    fn record(&self, failure: Option<&str>, limit: Option<u32>) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(why) = failure else {
            self.unanswered.store(0, SeqCst);
            return false;
        };
        let n = self.unanswered.fetch_add(1, SeqCst) + 1;
        match (limit, self.dropped.lock()) {
            (Some(limit), Ok(mut d)) if n >= limit && d.is_none() => {
                *d = Some(format!(
                    "{n} consecutive requests got no answer; the last: {why}"
                ));
                true
            }
            _ => false,
        }
    }
}

/// Runs sequences against a fixed set of targets.
pub struct Executor {
    targets: Vec<Arc<TargetClient>>,
    opts: ExecOptions,
}

impl Executor {
    pub fn new(targets: Vec<ExecTarget>, opts: ExecOptions) -> Result<Executor, ExecError> {
        let mut out = Vec::with_capacity(targets.len());
        for (i, target) in targets.into_iter().enumerate() {
            // The run's rate and budget are for the registries under test, not the reference
            // (the first target).
            let (run_interval, run_budget) = if i == 0 {
                (None, None)
            } else {
                (opts.min_interval, opts.max_requests)
            };
            let mut builder = reqwest::Client::builder()
                .timeout(opts.request_timeout)
                .connect_timeout(opts.request_timeout)
                // Redirects are followed by `send`, which keeps the registry's own answer.
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(8);
            if target.options.insecure {
                builder = builder.danger_accept_invalid_certs(true);
            }
            if let Some(pem) = &target.options.ca_pem {
                let certs =
                    reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ExecError::BadCa {
                        target: target.name.clone(),
                        reason: e.to_string(),
                    })?;
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
            let client = builder.build().map_err(|e| ExecError::Client {
                target: target.name.clone(),
                reason: e.to_string(),
            })?;
            let creds = target.username.as_ref().map(|u| auth::Credentials {
                username: u.clone(),
                password: target.password.clone().unwrap_or_default(),
            });
            let session_room = target
                .options
                .max_open_sessions
                .or(opts.max_open_sessions)
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
            out.push(Arc::new(TargetClient {
                client,
                creds,
                bearer: auth::BearerState::default(),
                inflight: opts
                    .max_inflight
                    .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1)))),
                health: Health::default(),
                stats: TargetStats::default(),
                session_room,
                pacer: target
                    .options
                    .min_interval
                    .or(run_interval)
                    .map(|i| (i, tokio::sync::Mutex::new(tokio::time::Instant::now()))),
                budget: target
                    .options
                    .max_requests
                    .or(run_budget)
                    .map(|n| (n, std::sync::atomic::AtomicU64::new(n))),
                stop_at: std::sync::Mutex::new(None),
                target,
            }));
        }
        Ok(Executor { targets: out, opts })
    }

    /// An executor for some of these targets (by index, in that order), sharing their
    /// clients, tokens and in-flight limits.
    pub fn subset(&self, indices: &[usize]) -> Executor {
        Executor {
            targets: indices
                .iter()
                .filter_map(|i| self.targets.get(*i).cloned())
                .collect(),
            opts: self.opts.clone(),
        }
    }

    /// From `at` on, requests other than clean-ups (cancelling upload sessions, deleting
    /// pushed content) are recorded as not sent: a case running at the run's deadline finishes
    /// its request in flight, skips the rest and cancels its sessions by their latest URL
    /// (cut mid-request instead, a session that request moved could not be cancelled on
    /// registries that sign the session's state into its URL, as distribution does).
    /// `None` lifts it (the run's next part has its own deadline).
    pub fn stop_new_requests_at(&self, at: Option<std::time::Instant>) {
        for t in &self.targets {
            if let Ok(mut s) = t.stop_at.lock() {
                *s = at;
            }
        }
    }

    /// The targets dropped for not answering (see `ExecOptions::unresponsive_after`), with why.
    pub fn unresponsive(&self) -> Vec<(String, String)> {
        self.targets
            .iter()
            .filter_map(|t| t.health.dropped().map(|why| (t.target.name.clone(), why)))
            .collect()
    }

    /// This executor without the target named `name`.
    pub fn without(&self, name: &str) -> Executor {
        let keep: Vec<usize> = (0..self.targets.len())
            .filter(|i| self.targets[*i].target.name != name)
            .collect();
        self.subset(&keep)
    }

    pub fn target_names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.target.name.clone()).collect()
    }

    /// Throttling and upload sessions per target, so far.
    pub fn stats(&self) -> Vec<TargetRunStats> {
        use std::sync::atomic::Ordering::Relaxed;
        self.targets
            .iter()
            .map(|t| {
                let s = &t.stats;
                TargetRunStats {
                    target: t.target.name.clone(),
                    throttled: s.throttled.load(Relaxed),
                    throttled_seconds: s.throttled_ms.load(Relaxed) as f64 / 1000.0,
                    throttled_gave_up: s.gave_up.load(Relaxed),
                    requests: s.requests.load(Relaxed),
                    max_requests: t.budget.as_ref().map(|(n, _)| *n),
                    budget_spent: t.budget_spent(),
                    sessions_opened: s.sessions.opened.load(Relaxed),
                    sessions_closed: s.sessions.closed.load(Relaxed),
                    sessions_cancelled: s.sessions.cancelled.load(Relaxed),
                    sessions_left_open: s.sessions.left_open.load(Relaxed),
                    cancel_refused: s.sessions.refusal.lock().ok().and_then(|r| r.clone()),
                }
            })
            .collect()
    }

    /// Deletes what the run pushed to the targets named in `only` (registries whose storage
    /// ocidiff does not own): manifests by digest, newest first (an index before what it
    /// lists), then blobs; four at a time per target. Returns per target what was deleted and
    /// what stayed, with why.
    pub async fn delete_pushed(&self, only: &[String]) -> Vec<Cleanup> {
        let targets = self
            .targets
            .iter()
            .filter(|t| only.contains(&t.target.name));
        futures::future::join_all(targets.map(|tc| async move {
            use futures::StreamExt as _;
            let mut pushed = tc
                .stats
                .pushed
                .lock()
                .map(|mut p| std::mem::take(&mut *p))
                .unwrap_or_default();
            pushed.reverse();
            let mut seen = std::collections::BTreeSet::new();
            pushed.retain(|p| seen.insert(p.url.clone()));
            // Manifests first (stable: newest first within each kind).
            pushed.sort_by_key(|p| !p.manifest);
            let run = TargetRun::new(tc, &self.opts, "");
            let run = &run;
            let mut cleanup = Cleanup {
                target: tc.target.name.clone(),
                ..Cleanup::default()
            };
            // Manifests before blobs: a blob a manifest still names may be refused.
            for manifests in [true, false] {
                let results: Vec<(Pushed, Sent)> = futures::stream::iter(
                    pushed.iter().filter(|p| p.manifest == manifests).cloned(),
                )
                .map(|p| async move {
                    let req = Req {
                        label: "cleanup".into(),
                        endpoint: if p.manifest { "end-9" } else { "end-10" },
                        method: reqwest::Method::DELETE,
                        url: p.url.clone(),
                        headers: Vec::new(),
                        body: None,
                        body_sha256: None,
                        hash_body: false,
                    };
                    let sent = run.send(req, None).await;
                    (p, sent)
                })
                .buffer_unordered(4)
                .collect()
                .await;
                for (p, sent) in results {
                    let o = &sent.exchange.observation;
                    if (200..300).contains(&o.status) || o.status == 404 {
                        cleanup.deleted += 1;
                    } else {
                        cleanup.left.push(Leftover {
                            target: tc.target.name.clone(),
                            kind: if p.manifest { "manifest" } else { "blob" }.to_string(),
                            path: p.url.path().to_string(),
                            status: o.status,
                            reason: leftover_reason(o),
                        });
                    }
                }
            }
            cleanup
                .left
                .sort_by(|a, b| (&a.kind, &a.path).cmp(&(&b.kind, &b.path)));
            cleanup
        }))
        .await
    }

    /// The targets whose request budget (`max_requests`) is spent.
    pub fn budget_spent(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter(|t| t.budget_spent())
            .map(|t| t.target.name.clone())
            .collect()
    }

    /// Cancels the upload sessions of runs that were dropped before their end (cases cut at the
    /// run's deadline, whose futures are dropped mid-op): call once the run is over.
    pub async fn cancel_orphans(&self) {
        futures::future::join_all(self.targets.iter().map(|tc| async move {
            let orphans = tc
                .stats
                .orphans
                .lock()
                .map(|mut o| std::mem::take(&mut *o))
                .unwrap_or_default();
            let mut run = TargetRun::new(tc, &self.opts, "");
            for url in orphans {
                run.open_uploads.insert(url.path().to_string(), (url, None));
            }
            run.cancel_open_uploads().await;
        }))
        .await;
    }

    /// The spec version of the run (`--spec-version`): targets that claim none are judged by it.
    pub fn spec_version(&self) -> crate::vocab::spec_version::SpecVersion {
        self.opts.spec_version
    }

    /// The spec version each target is judged by: its own claim, else the run's.
    pub fn versions(&self) -> Vec<crate::vocab::spec_version::SpecVersion> {
        self.targets
            .iter()
            .map(|t| {
                t.target
                    .options
                    .spec_version
                    .unwrap_or(self.opts.spec_version)
            })
            .collect()
    }

    /// Runs `seq` on every target; op by op, all targets concurrently.
    pub async fn run(&self, seq: &Sequence, content: &Content, namespace: &str) -> CaseOutcome {
        let mut runs: Vec<TargetRun<'_>> = self
            .targets
            .iter()
            .map(|t| TargetRun::new(t, &self.opts, namespace))
            .collect();
        let mut ops = Vec::with_capacity(seq.ops.len());
        for op in &seq.ops {
            let plan = op.op().plan(content);
            let per_target =
                futures::future::join_all(runs.iter_mut().map(|r| r.run_plan(&plan, content)))
                    .await;
            ops.push(OpOutcome { per_target });
        }
        futures::future::join_all(runs.iter_mut().map(|r| r.cancel_open_uploads())).await;
        CaseOutcome {
            targets: self.target_names(),
            ops,
            versions: self.versions(),
        }
    }

    /// Runs a concurrent segment: every client's ops in order, all clients of a target at the
    /// same time (a barrier releases them together), all targets at the same time. Each client
    /// has its own upload sessions. Every op is timed from its first request to its last
    /// answer, relative to the release of the barrier, for the linearizability oracle.
    ///
    /// `after` runs once every client is done, one op after the other (client index
    /// `clients.len()`, same clock): the reads that show the state the segment left.
    pub async fn run_segment(
        &self,
        clients: &[Vec<Op>],
        after: &[Op],
        content: &Content,
        namespace: &str,
    ) -> History {
        let per_target = futures::future::join_all(self.targets.iter().map(|tc| async move {
            let barrier = tokio::sync::Barrier::new(clients.len().max(1));
            let epoch = std::sync::OnceLock::<std::time::Instant>::new();
            let runs = clients.iter().enumerate().map(|(c, ops)| {
                let barrier = &barrier;
                let epoch = &epoch;
                async move {
                    let mut run = TargetRun::new(tc, &self.opts, namespace);
                    barrier.wait().await;
                    let t0 = *epoch.get_or_init(std::time::Instant::now);
                    let timed = run.run_timed(ops, c, t0, content).await;
                    run.cancel_open_uploads().await;
                    timed
                }
            });
            let mut all: Vec<TimedOp> = futures::future::join_all(runs)
                .await
                .into_iter()
                .flatten()
                .collect();
            let t0 = epoch.get().copied().unwrap_or_else(std::time::Instant::now);
            let mut run = TargetRun::new(tc, &self.opts, namespace);
            all.extend(run.run_timed(after, clients.len(), t0, content).await);
            run.cancel_open_uploads().await;
            all
        }))
        .await;
        History {
            targets: self.target_names(),
            per_target,
        }
    }

    /// Runs one op on every target in a fresh case namespace.
    pub async fn run_op(&self, op: &Op, content: &Content, namespace: &str) -> OpOutcome {
        let seq = Sequence {
            content: Default::default(),
            ops: vec![op.clone()],
        };
        self.run(&seq, content, namespace)
            .await
            .ops
            .pop()
            .unwrap_or_default()
    }
}

/// A target's view of one upload session.
struct SessionSlot {
    location: Option<Url>,
    blob: BlobId,
    /// Bytes the target accepted so far (advanced on 2xx PATCH).
    sent: u32,
}

struct TargetRun<'a> {
    tc: &'a TargetClient,
    opts: &'a ExecOptions,
    namespace: String,
    sessions: HashMap<Session, SessionSlot>,
    /// Upload sessions this run opened and did not see closed or cancelled, by location
    /// path, each with its room (`ExecOptions::max_open_sessions`): cancelled (`DELETE`,
    /// end-14) when the case ends.
    open_uploads: BTreeMap<String, (Url, Option<tokio::sync::OwnedSemaphorePermit>)>,
}

/// A run dropped with sessions still open (its case was cut mid-op) hands them to its target,
/// for `Executor::cancel_orphans`.
impl Drop for TargetRun<'_> {
    fn drop(&mut self) {
        if self.open_uploads.is_empty() {
            return;
        }
        if let Ok(mut orphans) = self.tc.stats.orphans.lock() {
            orphans.extend(
                std::mem::take(&mut self.open_uploads)
                    .into_values()
                    .map(|(url, _)| url),
            );
        }
    }
}

impl<'a> TargetRun<'a> {
    /// A run on one target in case namespace `namespace`, with no upload session yet.
    fn new(tc: &'a TargetClient, opts: &'a ExecOptions, namespace: &str) -> TargetRun<'a> {
        TargetRun {
            tc,
            opts,
            namespace: namespace.to_string(),
            sessions: HashMap::new(),
            open_uploads: BTreeMap::new(),
        }
    }

    /// Room for one more upload session, when `req` may open one (a `POST` to
    /// `/blobs/uploads/`): the case's first session waits at most `SESSION_WAIT` for it, so a
    /// run's open sessions stay near `max_open_sessions` (over it by at most the sessions
    /// cases open while already holding one).
    async fn session_room(
        &self,
        method: &reqwest::Method,
        path: &str,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if *method != reqwest::Method::POST || !path.ends_with("/blobs/uploads/") {
            return None;
        }
        let room = self.tc.session_room.clone()?;
        // A case that already holds room never waits (cases waiting on each other's sessions
        // would stall the run): it takes room if there is some, else goes on without.
        if self.open_uploads.values().any(|(_, held)| held.is_some()) {
            return room.try_acquire_owned().ok();
        }
        tokio::time::timeout(SESSION_WAIT, room.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Follows upload sessions through one answer: a `202` with an upload `Location` opens
    /// (or moves) one; a `2xx` `PUT` to it closes it; a `DELETE` answered `2xx` / `404`
    /// cancels it.
    fn track_upload(
        &mut self,
        method: &reqwest::Method,
        path: &str,
        sent: &Sent,
        room: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        let status = sent.status();
        let counters = &self.tc.stats.sessions;
        let known = self.open_uploads.contains_key(path);
        if known && *method == reqwest::Method::PUT && (200..300).contains(&status) {
            self.open_uploads.remove(path);
            counters.closed.fetch_add(1, Relaxed);
            return;
        }
        if known
            && *method == reqwest::Method::DELETE
            && ((200..300).contains(&status) || status == 404)
        {
            self.open_uploads.remove(path);
            counters.cancelled.fetch_add(1, Relaxed);
            return;
        }
        if status != 202 {
            return;
        }
        let Some(loc) = sent
            .location
            .as_ref()
            .filter(|l| l.path().contains("/uploads/"))
        else {
            return;
        };
        let room = match self.open_uploads.remove(path) {
            // The session moved (a PATCH answered with a new Location): its room goes along.
            Some((_, held)) => held,
            None => {
                counters.opened.fetch_add(1, Relaxed);
                room
            }
        };
        self.open_uploads
            .insert(loc.path().to_string(), (loc.clone(), room));
    }

    /// Remembers what a `201` created, a manifest (`PUT /v2/<name>/manifests/<ref>`) or a
    /// blob (a closing `PUT`, a single `POST`, a mount), by digest: the digest from its
    /// `Location`, else `Docker-Content-Digest`, else the request's own.
    fn track_pushed(&self, sent: &Sent) {
        if sent.status() != 201 {
            return;
        }
        let Ok(req) = Url::parse(&sent.exchange.request.url) else {
            return;
        };
        let path = req.path().to_string();
        let Some(rest) = path.strip_prefix("/v2/") else {
            return;
        };
        let (name, manifest) = match (rest.rsplit_once("/manifests/"), rest.split_once("/blobs/")) {
            (Some((name, _)), _) => (name.to_string(), true),
            (None, Some((name, _))) => (name.to_string(), false),
            _ => return,
        };
        let kind = if manifest { "/manifests/" } else { "/blobs/" };
        let digest_in = |p: &str| -> Option<String> {
            let d = p.rsplit_once(kind)?.1;
            d.contains(':').then(|| d.to_string())
        };
        let o = &sent.exchange.observation;
        let digest = sent
            .location
            .as_ref()
            .and_then(|l| digest_in(l.path()))
            .or_else(|| o.headers.get("docker-content-digest").cloned())
            .or_else(|| digest_in(&path))
            .or_else(|| {
                req.query_pairs()
                    .find(|(k, _)| k == "digest")
                    .map(|(_, v)| v.into_owned())
            });
        let Some(digest) = digest else {
            return;
        };
        let Ok(url) = self
            .tc
            .target
            .base_url
            .join(&format!("/v2/{name}{kind}{digest}"))
        else {
            return;
        };
        if let Ok(mut p) = self.tc.stats.pushed.lock() {
            p.push(Pushed { manifest, url });
        }
    }

    /// Cancels every upload session this run left open (`DELETE`, not recorded: the case is
    /// over); a target that refuses is counted as leaving them open, with why, once. A session
    /// leaves `open_uploads` only once its `DELETE` is answered: a run dropped mid-way (a case
    /// cut at the run's deadline) hands the rest to its target as orphans (`Drop`), so every
    /// session opened is counted once as closed, cancelled or left open.
    async fn cancel_open_uploads(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        while let Some((key, url)) = self
            .open_uploads
            .iter()
            .next()
            .map(|(k, (u, _))| (k.clone(), u.clone()))
        {
            let req = Req {
                label: "cancel".into(),
                endpoint: "end-14",
                method: reqwest::Method::DELETE,
                url,
                headers: Vec::new(),
                body: None,
                body_sha256: None,
                hash_body: false,
            };
            let sent = self.send(req, None).await;
            // Answered: the session (and its room) leaves the run.
            self.open_uploads.remove(&key);
            let status = sent.status();
            let counters = &self.tc.stats.sessions;
            if (200..300).contains(&status) {
                counters.cancelled.fetch_add(1, Relaxed);
            } else if status == 404 {
                // Gone already: a failed close or an expiry ended it.
                counters.closed.fetch_add(1, Relaxed);
            } else {
                counters.left_open.fetch_add(1, Relaxed);
                if let Ok(mut r) = counters.refusal.lock() {
                    if r.is_none() {
                        *r = Some(if status == 0 {
                            "no answer".to_string()
                        } else {
                            format!("DELETE of an upload session answered {status}")
                        });
                    }
                }
            }
        }
    }

    /// Runs `ops` one after the other as client `client`, each timed from its first request
    /// to its last answer in microseconds since `t0`.
    async fn run_timed(
        &mut self,
        ops: &[Op],
        client: usize,
        t0: std::time::Instant,
        content: &Content,
    ) -> Vec<TimedOp> {
        let mut out = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let plan = op.op().plan(content);
            let start_us = t0.elapsed().as_micros() as u64;
            let exchanges = self.run_plan(&plan, content).await;
            let end_us = t0.elapsed().as_micros() as u64;
            out.push(TimedOp {
                client,
                index,
                start_us,
                end_us,
                exchanges,
            });
        }
        out
    }
}

/// Literal request bodies (invalid manifests, odd payloads) up to this size are hashed for
/// `RequestRecord::body_sha256`; bigger ones are recorded by length only. Bodies cut from the
/// case's content (chunks, session slices) are not hashed either: the content and the request's
/// `Content-Range` name them, and hashing every chunk cost the engine more CPU than anything
/// but rendering.
const RECORD_HASH_MAX: usize = 64 * 1024;

/// One request to send.
struct Req {
    label: String,
    endpoint: &'static str,
    method: reqwest::Method,
    url: Url,
    headers: Vec<(&'static str, String)>,
    body: Option<Bytes>,
    /// The body's sha256 (hex) when known without hashing it (a whole blob or manifest).
    body_sha256: Option<String>,
    /// Whether the record may hash the body when its sha256 is not known (a literal body).
    hash_body: bool,
}

/// What a sent request gave back: the exchange plus the raw values the plan follows.
struct Sent {
    exchange: Exchange,
    location: Option<Url>,
    link_next: Option<Url>,
}

impl Sent {
    fn status(&self) -> u16 {
        self.exchange.observation.status
    }
}

fn reqwest_method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

fn with_query(mut url: Url, pairs: &[(&str, String)]) -> Url {
    if !pairs.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    url
}

/// `url` with `n` and `last` set (other query pairs kept, `n` / `last` replaced).
fn with_last(url: &Url, n: u32, last: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "n" && k != "last")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut u = url.clone();
    u.set_query(None);
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair("n", &n.to_string());
        q.append_pair("last", last);
    }
    u
}

/// `path` appended to `base`'s path, as `Url::parse` of the two strings joined would give it;
/// only the path is parsed when that is the same (no query or fragment on either side).
fn under_base(base: &Url, path: &str) -> Url {
    if base.query().is_none() && base.fragment().is_none() && !path.contains(['?', '#']) {
        let mut url = base.clone();
        url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
        return url;
    }
    let joined = format!("{}{path}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).unwrap_or_else(|_| base.clone())
}

/// `bytes[start..end]`, clamped.
fn slice(bytes: &Bytes, start: u32, end: Option<u32>) -> Bytes {
    let s = (start as usize).min(bytes.len());
    let e = end
        .map(|e| e as usize)
        .unwrap_or(bytes.len())
        .clamp(s, bytes.len());
    bytes.slice(s..e)
}

/// Removes a target's repository prefix from what is compared (repository names in bodies,
/// `Location` / `Link` paths), so that prefixed targets compare like the others.
fn strip_repo_prefix(obs: &mut Observation, prefix: &str) {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return;
    }
    let with_slash = format!("{prefix}/");
    let in_path = format!("/v2/{prefix}/");
    for v in obs.headers.values_mut() {
        if v.contains(&in_path) {
            *v = v.replace(&in_path, "/v2/");
        }
    }
    match &mut obs.body {
        BodyFacts::Tags { name, .. } => {
            if let Some(rest) = name.strip_prefix(&with_slash) {
                *name = rest.to_string();
            }
        }
        BodyFacts::Catalog { repositories } => {
            // Only the prefixed repositories are ocidiff's; others are not compared.
            *repositories = repositories
                .iter()
                .filter_map(|r| r.strip_prefix(&with_slash).map(str::to_string))
                .collect();
        }
        _ => {}
    }
}

impl TargetRun<'_> {
    fn repo_name(&self, repo: Repo) -> String {
        if let Some(name) = self.tc.target.options.repo_names.get(&repo.0) {
            return name.clone();
        }
        let prefix = self.tc.target.options.repo_prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("{}/r{}", self.namespace, repo.0)
        } else {
            format!("{prefix}/{}/r{}", self.namespace, repo.0)
        }
    }

    /// A tag list of a literally named repository reads as the symbolic one's.
    fn symbolic_repo_names(&self, obs: &mut Observation) {
        if let BodyFacts::Tags { name, .. } = &mut obs.body {
            if let Some((n, _)) = self
                .tc
                .target
                .options
                .repo_names
                .iter()
                .find(|(_, literal)| *literal == name)
            {
                *name = format!("{}/r{n}", self.namespace);
            }
        }
    }

    fn path_url(&self, segs: &[Seg]) -> Url {
        let mut path = String::new();
        for s in segs {
            match s {
                Seg::Lit(l) => path.push_str(l),
                Seg::Repo(r) => path.push_str(&self.repo_name(*r)),
                Seg::Escaped(v) => path.push_str(&path_segment(v)),
                Seg::Name(n) => path.push_str(&name_segments(n)),
            }
        }
        under_base(&self.tc.target.base_url, &path)
    }

    fn session_location(&self, session: Session) -> Option<Url> {
        self.sessions.get(&session).and_then(|s| s.location.clone())
    }

    fn session_bytes(&self, session: Session, content: &Content) -> (Bytes, u32) {
        match self.sessions.get(&session) {
            Some(s) => (content.blob(s.blob).cloned().unwrap_or_default(), s.sent),
            None => (Bytes::new(), 0),
        }
    }

    fn value(&self, v: &Val, content: &Content) -> String {
        match v {
            Val::Lit(s) => s.clone(),
            Val::Repo(r) => self.repo_name(*r),
            Val::SessionDigest(s, choice) => {
                let Some(blob) = self.sessions.get(s).map(|x| x.blob) else {
                    return choice.digest_from(
                        DigestAlgo::Sha256,
                        &crate::vocab::content::digest_of(DigestAlgo::Sha256, b""),
                    );
                };
                let algo = content.blob_algo(blob).unwrap_or_default();
                content.blob_digest_choice(blob, *choice, algo)
            }
        }
    }

    /// The step's headers and body, resolved for this target.
    fn request_parts(
        &self,
        step: &Step,
        content: &Content,
    ) -> (Vec<(&'static str, String)>, Option<Bytes>) {
        let mut headers: Vec<(&'static str, String)> = step
            .headers
            .iter()
            .map(|(k, v)| (*k, self.value(v, content)))
            .collect();
        let body = match &step.body {
            Body::Empty => None,
            Body::Blob { blob, start, end } => Some(slice(
                &content.blob(*blob).cloned().unwrap_or_default(),
                *start,
                *end,
            )),
            Body::Manifest(m) => Some(content.manifest(*m).cloned().unwrap_or_default()),
            Body::Bytes(b) => Some(b.clone()),
            Body::SessionSlice {
                session,
                start,
                end,
            } => Some(slice(
                &self.session_bytes(*session, content).0,
                *start,
                Some(*end),
            )),
            Body::SessionRest(session) | Body::SessionRestAfterGap(session) => {
                let (bytes, sent) = self.session_bytes(*session, content);
                let gap = usize::from(matches!(step.body, Body::SessionRestAfterGap(_)));
                let from = (sent as usize + gap).min(bytes.len());
                let rest = bytes.slice(from..);
                if rest.is_empty() {
                    None
                } else {
                    headers.push(("content-type", OCTET_STREAM.to_string()));
                    headers.push(("content-range", format!("{}-{}", from, bytes.len() - 1)));
                    Some(rest)
                }
            }
        };
        (headers, body)
    }

    /// Runs one op's plan (see `vocab::plan` for the semantics).
    async fn run_plan(&mut self, plan: &Plan, content: &Content) -> Vec<Exchange> {
        let mut out: Vec<Exchange> = Vec::new();
        let mut location: Option<Url> = None;
        let mut prev: Option<u16> = None;
        let mut queue: std::collections::VecDeque<std::borrow::Cow<'_, Step>> =
            plan.steps.iter().map(std::borrow::Cow::Borrowed).collect();
        while let Some(step) = queue.pop_front() {
            if !step.when.holds(prev) {
                continue;
            }
            // Chunks sized by what this target advertised on the step before.
            if let Some(at) = step.chunks_at_min {
                let min = out
                    .last()
                    .and_then(|x| x.observation.header("oci-chunk-min-length"))
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let len = content.blob(at.blob).map_or(0, |b| b.len());
                for (i, (s, e)) in at.pieces(len, min).into_iter().enumerate().rev() {
                    let mut chunk = step.as_ref().clone();
                    chunk.chunks_at_min = None;
                    chunk.label = format!("patch#{}", i + 1);
                    chunk.body = Body::Blob {
                        blob: at.blob,
                        start: s as u32,
                        end: Some(e as u32),
                    };
                    chunk
                        .headers
                        .push(("content-range", format!("{}-{}", s, e - 1).into()));
                    queue.push_front(std::borrow::Cow::Owned(chunk));
                }
                continue;
            }
            let step: &Step = &step;
            let base = match &step.url {
                PlanUrl::Path(segs) => Some(self.path_url(segs)),
                PlanUrl::Location => location.clone(),
                PlanUrl::Session(s) => self.session_location(*s),
                PlanUrl::Unavailable(_) => None,
            };
            let Some(base) = base else {
                let why = match &step.url {
                    PlanUrl::Unavailable(why) => why,
                    _ => "no upload location",
                };
                out.push(Exchange::skipped(
                    &step.label,
                    step.endpoint,
                    step.method.as_str(),
                    why,
                ));
                break;
            };
            let query: Vec<(&str, String)> = step
                .query
                .iter()
                .map(|(k, v)| (*k, self.value(v, content)))
                .collect();
            let url = with_query(base, &query);
            let (headers, body) = self.request_parts(step, content);
            let body_sha256 = known_sha256(&step.body, content);
            if let Some(n) = step.page_size {
                out.extend(self.pages(step, url, n).await);
                break;
            }
            let body_len = body.as_ref().map(|b| b.len() as u32).unwrap_or(0);
            let (req_method, req_path) = (reqwest_method(step.method), url.path().to_string());
            let room = self.session_room(&req_method, &req_path).await;
            let sent = self
                .send(
                    Req {
                        label: step.label.clone(),
                        endpoint: step.endpoint,
                        method: reqwest_method(step.method),
                        url,
                        headers,
                        body,
                        body_sha256,
                        hash_body: matches!(step.body, Body::Bytes(_)),
                    },
                    Some(content),
                )
                .await;
            self.apply_effects(step, &sent, body_len);
            self.track_upload(&req_method, &req_path, &sent, room);
            self.track_pushed(&sent);
            // A `201` names what it created by its own `Location`: without one, the steps that
            // follow it have no URL (the upload's URL is not the blob's).
            if sent.location.is_some() || sent.status() == 201 {
                location = sent.location.clone();
            }
            prev = Some(sent.status());
            out.push(sent.exchange);
        }
        out
    }

    fn apply_effects(&mut self, step: &Step, sent: &Sent, body_len: u32) {
        let ok = (200..300).contains(&sent.status());
        for e in &step.effects {
            match e {
                Effect::OpenSession { session, blob } => {
                    let location = (sent.status() == 202)
                        .then(|| sent.location.clone())
                        .flatten();
                    self.sessions.insert(
                        *session,
                        SessionSlot {
                            location,
                            blob: *blob,
                            sent: 0,
                        },
                    );
                }
                Effect::FollowSession(s) => {
                    if let (true, Some(slot), Some(l)) =
                        (ok, self.sessions.get_mut(s), &sent.location)
                    {
                        slot.location = Some(l.clone());
                    }
                }
                Effect::SessionSentTo { session, end } => {
                    if let (true, Some(slot)) = (ok, self.sessions.get_mut(session)) {
                        slot.sent = *end;
                    }
                }
                Effect::SessionSentAdd(s) => {
                    if let (true, Some(slot)) = (ok, self.sessions.get_mut(s)) {
                        slot.sent = slot.sent.saturating_add(body_len);
                    }
                }
            }
        }
    }

    /// A paged step: `<label>#1`, `#2`, ... while the answer is 200 (see `vocab::plan`).
    async fn pages(&self, step: &Step, first: Url, n: u32) -> Vec<Exchange> {
        let mut url = first;
        let mut out = Vec::new();
        for page in 1..=self.opts.max_pages.max(1) {
            let sent = self
                .send(
                    Req {
                        label: format!("{}#{page}", step.label),
                        endpoint: step.endpoint,
                        method: reqwest_method(step.method),
                        url: url.clone(),
                        headers: Vec::new(),
                        body: None,
                        body_sha256: None,
                        hash_body: false,
                    },
                    None,
                )
                .await;
            let ok = sent.status() == 200;
            let next = sent
                .link_next
                .clone()
                .or_else(|| match &sent.exchange.observation.body {
                    BodyFacts::Tags { tags, .. } if n > 0 && tags.len() == n as usize => {
                        tags.last().map(|last| with_last(&url, n, last))
                    }
                    _ => None,
                });
            out.push(sent.exchange);
            match next {
                Some(next) if ok && next != url => url = next,
                _ => break,
            }
        }
        out
    }

    /// A bearer token for the request's own scope, once the target is known to use tokens.
    async fn proactive_token(&self, req: &Req) -> Option<String> {
        let realm = self.tc.bearer.realm()?;
        let scope = auth::scope_for(req.method.as_str(), req.url.path());
        self.tc
            .bearer
            .token(&self.tc.client, &realm, &scope, self.tc.creds.as_ref())
            .await
            .ok()
    }

    fn build(&self, req: &Req, token: Option<&str>) -> reqwest::RequestBuilder {
        self.build_to(req, req.method.clone(), &req.url, token, true)
    }

    /// `req` sent as `method` to `url`, with credentials only when `auth` (they never cross to
    /// another host).
    fn build_to(
        &self,
        req: &Req,
        method: reqwest::Method,
        url: &Url,
        token: Option<&str>,
        auth: bool,
    ) -> reqwest::RequestBuilder {
        let mut b = self.tc.client.request(method.clone(), url.clone());
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        match (auth, token, &self.tc.target.username) {
            (false, _, _) => {}
            (true, Some(t), _) => b = b.bearer_auth(t),
            (true, None, Some(u)) => b = b.basic_auth(u, self.tc.target.password.as_ref()),
            (true, None, None) => {}
        }
        let sends_body = matches!(
            method,
            reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
        );
        let body = req.body.clone().unwrap_or_default();
        if body.is_empty() && sends_body && !req.headers.iter().any(|(k, _)| *k == "content-length")
        {
            // hyper sends no `Content-Length` for an empty body; the spec's requests carry one.
            b = b.header("content-length", "0");
        }
        if req.body.is_some() || sends_body {
            b = b.body(body);
        }
        b
    }

    /// Answers a bearer challenge: learns the realm, fetches a fresh token for the challenge's
    /// scope (or the request's own) and caches it.
    async fn answer_challenge(&self, req: &Req, challenge: &str) -> Option<String> {
        let params = auth::parse_bearer(challenge)?;
        let realm = self.tc.bearer.learn(&params)?;
        let own = auth::scope_for(req.method.as_str(), req.url.path());
        let scope = params.get("scope").cloned().unwrap_or(own);
        self.tc.bearer.forget(&scope);
        self.tc
            .bearer
            .token(&self.tc.client, &realm, &scope, self.tc.creds.as_ref())
            .await
            .ok()
    }

    fn record(req: &Req) -> RequestRecord {
        let mut headers: BTreeMap<String, String> = req
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let body_len = req.body.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        if req.body.is_some()
            || matches!(
                req.method,
                reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
            )
        {
            headers.insert("content-length".into(), body_len.to_string());
        }
        RequestRecord {
            method: req.method.as_str().to_string(),
            url: req.url.to_string(),
            headers,
            body_len,
            body_sha256: req.body.as_ref().filter(|b| !b.is_empty()).and_then(|b| {
                req.body_sha256.clone().or_else(|| {
                    (req.hash_body && b.len() <= RECORD_HASH_MAX).then(|| sha256_hex(b))
                })
            }),
        }
    }

    /// Sends `req`. `content`: the case's content, so a body that is one of its blobs or
    /// manifests is named by the digest the content already knows instead of hashed again.
    async fn send(&self, req: Req, content: Option<&Content>) -> Sent {
        if let Some(why) = self.tc.health.dropped() {
            return Sent {
                exchange: Exchange {
                    request: Self::record(&req),
                    label: req.label,
                    endpoint: req.endpoint.to_string(),
                    observation: observe::transport_failure(format!(
                        "skipped: target dropped ({why})"
                    )),
                },
                location: None,
                link_next: None,
            };
        }
        let cleanup = req.label == "cancel" || req.label == "cleanup";
        if !cleanup
            && self
                .tc
                .stop_at
                .lock()
                .ok()
                .and_then(|s| *s)
                .is_some_and(|t| std::time::Instant::now() >= t)
        {
            return Sent {
                exchange: Exchange {
                    request: Self::record(&req),
                    label: req.label,
                    endpoint: req.endpoint.to_string(),
                    observation: observe::transport_failure(
                        "skipped: the run's deadline passed".to_string(),
                    ),
                },
                location: None,
                link_next: None,
            };
        }
        if !self.tc.take_budget() {
            let limit = self.tc.budget.as_ref().map_or(0, |(n, _)| *n);
            return Sent {
                exchange: Exchange {
                    request: Self::record(&req),
                    label: req.label,
                    endpoint: req.endpoint.to_string(),
                    observation: observe::transport_failure(format!(
                        "skipped: request budget spent (max_requests {limit})"
                    )),
                },
                location: None,
                link_next: None,
            };
        }
        let mut pending = Pending {
            health: &self.tc.health,
            limit: self.opts.unresponsive_after,
            started: std::time::Instant::now(),
            done: false,
        };
        let sent = self.send_now(req, content).await;
        pending.done = true;
        let o = &sent.exchange.observation;
        let failure = (o.status == 0).then(|| o.transport_error.as_deref().unwrap_or("no answer"));
        if self.tc.health.record(failure, self.opts.unresponsive_after) {
            tracing::warn!(target = %self.tc.target.name, "target dropped: it stopped answering");
        }
        sent
    }

    async fn send_now(&self, req: Req, content: Option<&Content>) -> Sent {
        let _permit = match &self.tc.inflight {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        let request = Self::record(&req);
        let (result, redirect) = self.response_unthrottled(&req).await;
        let result = match result {
            Ok(resp) if throttled(&resp) => {
                self.tc
                    .stats
                    .gave_up
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let why = format!(
                    "skipped: throttled ({} still, after at most {} retries within {:?})",
                    resp.status().as_u16(),
                    self.opts.throttle_retries,
                    self.opts.throttle_wait
                );
                return Sent {
                    exchange: Exchange {
                        label: req.label,
                        endpoint: req.endpoint.to_string(),
                        request,
                        observation: observe::transport_failure(why),
                    },
                    location: None,
                    link_next: None,
                };
            }
            other => other,
        };
        let (observation, location, link_next) = match result {
            Ok(resp) => {
                let final_url = resp.url().clone();
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| final_url.join(l.trim()).ok());
                let link_next = observe::link_next(&final_url, resp.headers());
                let known = |body: &[u8]| content.and_then(|c| c.sha256_of_known(body));
                let mut obs = observe::observe(
                    req.endpoint,
                    &req.method,
                    resp,
                    self.opts.max_body_bytes,
                    &known,
                )
                .await;
                if let Some((what, first_url, own)) = &redirect {
                    observe::keep_registry_headers(&mut obs, first_url, own);
                    obs.redirect = Some(what.clone());
                }
                strip_repo_prefix(&mut obs, &self.tc.target.options.repo_prefix);
                self.symbolic_repo_names(&mut obs);
                (obs, location, link_next)
            }
            Err(e) => (observe::transport_failure(describe_error(&e)), None, None),
        };
        Sent {
            exchange: Exchange {
                label: req.label,
                endpoint: req.endpoint.to_string(),
                request,
                observation,
            },
            location,
            link_next,
        }
    }

    /// [`Self::response`], sent again while the target throttles (see
    /// `ExecOptions::throttle_retries`); the last answer when it still does.
    async fn response_unthrottled(
        &self,
        req: &Req,
    ) -> (Result<reqwest::Response, reqwest::Error>, Redirect) {
        use std::sync::atomic::Ordering::Relaxed;
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            let (result, redirect) = self.response(req).await;
            let wait = match &result {
                Ok(resp) if throttled(resp) => retry_after(resp, attempt),
                _ => return (result, redirect),
            };
            self.tc.stats.throttled.fetch_add(1, Relaxed);
            let left = self.opts.throttle_wait.saturating_sub(started.elapsed());
            if attempt >= self.opts.throttle_retries || left.is_zero() || !self.tc.take_budget() {
                return (result, redirect);
            }
            let wait = wait.min(left);
            drop(result);
            tracing::debug!(target = %self.tc.target.name, "throttled: waiting {wait:?}");
            tokio::time::sleep(wait).await;
            self.tc
                .stats
                .throttled_ms
                .fetch_add(wait.as_millis() as u64, Relaxed);
            attempt += 1;
        }
    }

    /// The target's answer to `req`: credentials (a bearer token asked for on a challenge) and
    /// redirects handled; the first redirect, if any, as (what, its URL, its headers).
    async fn response(&self, req: &Req) -> (Result<reqwest::Response, reqwest::Error>, Redirect) {
        let token = self.proactive_token(req).await;
        self.tc.pace().await;
        self.tc
            .stats
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut result = self.build(req, token.as_deref()).send().await;
        if let Ok(resp) = &result {
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                let challenge = resp
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer"))
                    .map(str::to_string);
                if let Some(ch) = challenge {
                    if let Some(tok) = self.answer_challenge(req, &ch).await {
                        self.tc.pace().await;
                        self.tc
                            .stats
                            .requests
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        result = self.build(req, Some(&tok)).send().await;
                    }
                }
            }
        }
        let mut redirect: Redirect = None;
        if let Ok(resp) = result {
            let (r, first) = self.follow_redirects(req, resp, token.as_deref()).await;
            result = r;
            redirect = first;
        }
        (result, redirect)
    }
}

/// Whether an answer asks the client to slow down: `429 Too Many Requests`, or `503` with a
/// `Retry-After` (a 503 without one is an answer like any other).
fn throttled(resp: &reqwest::Response) -> bool {
    let s = resp.status().as_u16();
    s == 429 || (s == 503 && resp.headers().contains_key("retry-after"))
}

/// How long to wait before sending again: `Retry-After` in seconds (at most 60), else
/// exponential backoff (0.5 s, 1 s, 2 s, ...; at most 8 s).
fn retry_after(resp: &reqwest::Response, attempt: u32) -> Duration {
    let asked = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match asked {
        Some(s) => Duration::from_secs(s.min(60)),
        None => Duration::from_millis(500u64 << attempt.min(4)),
    }
}

/// The first redirect of an answer: (what, its URL, its headers).
type Redirect = Option<(String, Url, reqwest::header::HeaderMap)>;

/// A response read whole (`Executor::fetch`).
#[derive(Clone, Debug)]
pub struct Fetched {
    pub status: u16,
    /// `Content-Type`, `Docker-Content-Digest`, ... (lower-case names; the registry's own where
    /// a redirect's final answer lacks them).
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
}

impl Executor {
    /// GETs `path` (from `/v2/...`, with an optional `Accept`) from target `target` the way
    /// every request goes (credentials, tokens, redirects), and reads the body whole, up to
    /// `max_bytes`. For reading content that is already on a target (`--read-only`); what is
    /// judged goes through ops.
    pub async fn fetch(
        &self,
        target: usize,
        path: &str,
        accept: Option<&str>,
        max_bytes: u64,
    ) -> anyhow::Result<Fetched> {
        let tc = self
            .targets
            .get(target)
            .ok_or_else(|| anyhow::anyhow!("no target {target}"))?;
        let run = TargetRun::new(tc, &self.opts, "");
        let url = tc
            .target
            .base_url
            .join(path)
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let req = Req {
            label: "fetch".into(),
            endpoint: "fetch",
            method: reqwest::Method::GET,
            url,
            headers: accept
                .map(|a| ("accept", a.to_string()))
                .into_iter()
                .collect(),
            body: None,
            body_sha256: None,
            hash_body: false,
        };
        let (result, redirect) = run.response(&req).await;
        let mut resp = result.map_err(|e| anyhow::anyhow!("GET {path}: {}", describe_error(&e)))?;
        let mut headers = BTreeMap::new();
        let own = redirect.map(|(_, _, h)| h).unwrap_or_default();
        for name in [
            "content-type",
            "docker-content-digest",
            "content-length",
            "link",
        ] {
            let v = resp.headers().get(name).or_else(|| own.get(name));
            if let Some(v) = v.and_then(|v| v.to_str().ok()) {
                headers.insert(name.to_string(), v.to_string());
            }
        }
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| anyhow::anyhow!("GET {path}: {}", describe_error(&e)))?
        {
            if body.len() as u64 + chunk.len() as u64 > max_bytes {
                anyhow::bail!("GET {path}: the body exceeds {max_bytes} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            headers,
            body: Bytes::from(body),
        })
    }
}

/// The sha256 (hex) of a step's body when the content already knows it (a whole blob or
/// manifest), so that recording the request does not hash it again.
fn known_sha256(body: &Body, content: &Content) -> Option<String> {
    match body {
        Body::Blob {
            blob,
            start: 0,
            end: None,
        } => content.blob_sha256_hex(*blob).map(str::to_string),
        Body::Manifest(m) => content
            .manifest_sha256(*m)
            .map(|d| d.trim_start_matches("sha256:").to_string()),
        _ => None,
    }
}

/// At most this many redirects are followed per request.
const MAX_REDIRECTS: usize = 5;

impl TargetRun<'_> {
    /// Follows redirects ("Registries MAY respond to any request with a redirect"): 307 / 308
    /// keep the method and body, 303 (and 301 / 302 of a non-GET) become a GET without a body;
    /// credentials are sent only to the target's own host. Returns the final answer and, when
    /// there was a redirect, its description and the registry's own answer (URL, headers).
    async fn follow_redirects(
        &self,
        req: &Req,
        mut resp: reqwest::Response,
        token: Option<&str>,
    ) -> (
        Result<reqwest::Response, reqwest::Error>,
        Option<(String, Url, reqwest::header::HeaderMap)>,
    ) {
        let mut first = None;
        let mut method = req.method.clone();
        for _ in 0..MAX_REDIRECTS {
            let status = resp.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                break;
            }
            let Some(next) = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| resp.url().join(l.trim()).ok())
            else {
                break;
            };
            if first.is_none() {
                let (norm, _) = observe::normalize_location(resp.url(), next.as_str());
                first = Some((
                    format!("{status} -> {norm}"),
                    resp.url().clone(),
                    resp.headers().clone(),
                ));
            }
            if status == 303
                || (matches!(status, 301 | 302)
                    && method != reqwest::Method::GET
                    && method != reqwest::Method::HEAD)
            {
                method = reqwest::Method::GET;
            }
            let same_host = next.host_str() == self.tc.target.base_url.host_str()
                && next.port_or_known_default() == self.tc.target.base_url.port_or_known_default();
            let keep_body = matches!(status, 307 | 308);
            let follow = Req {
                label: req.label.clone(),
                endpoint: req.endpoint,
                method: method.clone(),
                url: next.clone(),
                headers: req.headers.clone(),
                body: if keep_body { req.body.clone() } else { None },
                body_sha256: if keep_body {
                    req.body_sha256.clone()
                } else {
                    None
                },
                hash_body: keep_body && req.hash_body,
            };
            match self
                .build_to(&follow, method.clone(), &next, token, same_host)
                .send()
                .await
            {
                Ok(r) => resp = r,
                Err(e) => return (Err(e), first),
            }
        }
        (Ok(resp), first)
    }
}

fn describe_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_redirect() {
        "redirect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(e);
    // Bounded walk of the error chain.
    for _ in 0..8 {
        let Some(s) = src else { break };
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests;
