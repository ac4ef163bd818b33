//! The one run-a-case path every driver uses: the targets launched once (`Fleet`, the reference
//! first), a case executed on all of them and checked by both oracles (`run_checked`), a
//! scenario's concurrent groups (`execute_scenario`), run ids and case seeds.

use crate::compare::{check_case, Divergence};
use crate::execute::{ExecOptions, Executor};
use crate::ops::Sequence;
use crate::scenario::Scenario;
use crate::targets::{launch, LaunchedTarget, TargetSpec};
use crate::vocab::content::Content;
use crate::vocab::exchange::CaseOutcome;
use anyhow::{bail, Context as _};

/// The reference target first (added when not named), then the others in the given order.
pub fn with_reference_first(
    mut targets: Vec<(String, TargetSpec)>,
) -> anyhow::Result<Vec<(String, TargetSpec)>> {
    match targets
        .iter()
        .position(|(_, s)| matches!(s, TargetSpec::Reference(_)))
    {
        Some(0) => {}
        Some(i) => {
            let r = targets.remove(i);
            targets.insert(0, r);
        }
        None => {
            if targets.iter().any(|(n, _)| n == "reference") {
                bail!("a target named \"reference\" must be the reference registry");
            }
            targets.insert(
                0,
                (
                    "reference".to_string(),
                    TargetSpec::Reference(Box::default()),
                ),
            );
        }
    }
    let mut names: Vec<&String> = targets.iter().map(|(n, _)| n).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        bail!("target names must be unique");
    }
    Ok(targets)
}

/// Launched targets plus the executor talking to them; shuts the targets down when done.
pub struct Fleet {
    pub launched: Vec<LaunchedTarget>,
    pub executor: Executor,
    /// What each target was launched from, and the executor's options (for fresh copies).
    specs: Vec<(String, TargetSpec)>,
    opts: ExecOptions,
}

impl Fleet {
    /// Launches the targets; each is judged by `version` unless it claims its own.
    pub async fn launch(
        targets: &[(String, TargetSpec)],
        version: crate::vocab::spec_version::SpecVersion,
    ) -> anyhow::Result<Fleet> {
        let opts = ExecOptions {
            spec_version: version,
            ..ExecOptions::default()
        };
        Fleet::launch_with(targets, opts).await
    }

    /// Launches with executor options of the caller's.
    pub async fn launch_with(
        targets: &[(String, TargetSpec)],
        opts: ExecOptions,
    ) -> anyhow::Result<Fleet> {
        let mut launched: Vec<LaunchedTarget> = Vec::new();
        for (name, spec) in targets {
            match launch(name, spec).await {
                Ok(t) => launched.push(t),
                Err(e) => {
                    for t in launched {
                        t.shutdown().await;
                    }
                    return Err(e).with_context(|| format!("launching target {name}"));
                }
            }
        }
        let executor = Executor::new(
            launched.iter().map(|t| t.exec_target()).collect(),
            opts.clone(),
        )?;
        Ok(Fleet {
            launched,
            executor,
            specs: targets.to_vec(),
            opts,
        })
    }

    /// A new fleet of a fresh reference and a fresh copy of `target`, when ocidiff starts that
    /// target itself and cheaply (embedded registries, a distribution process, a process
    /// target such as distribution3, olareg or ggcr): nothing of this run is on them. `None`
    /// for targets it cannot start afresh (URLs, containers).
    pub async fn fresh_pair(&self, target: &str) -> Option<anyhow::Result<Fleet>> {
        let reference = self.specs.first()?;
        let (name, spec) = self.specs.iter().find(|(n, _)| n == target)?;
        let fresh = match spec {
            TargetSpec::Reference(_)
            | TargetSpec::ContainerRegistry
            | TargetSpec::Distribution { .. } => true,
            TargetSpec::External(e) => {
                matches!(
                    e.as_ref(),
                    crate::targets::external::ExternalSpec::Process(_)
                )
            }
            TargetSpec::Url { .. } => false,
        };
        if !fresh {
            return None;
        }
        let pair = if name == &reference.0 {
            vec![reference.clone()]
        } else {
            vec![reference.clone(), (name.clone(), spec.clone())]
        };
        Some(Fleet::launch_with(&pair, self.opts.clone()).await)
    }

    /// Forgets case namespace `ns` on every target that can (see `LaunchedTarget::cleanup`).
    pub fn cleanup(&self, ns: &str) {
        for t in &self.launched {
            t.cleanup(ns);
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.launched.iter().map(|t| t.name.clone()).collect()
    }

    pub async fn shutdown(self) {
        for t in self.launched {
            t.shutdown().await;
        }
    }
}

/// A random lowercase run id (8 characters).
pub fn run_id() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The seed of case `i`: the run seed and the index mixed (splitmix64), so that runs with
/// neighbouring seeds draw different cases (`seed + i` made seed 2 replay seed 1's cases
/// shifted by one). Distinct indices of one run give distinct seeds.
pub fn case_seed(seed: u64, i: u64) -> u64 {
    let mut run = seed;
    let mut state = crate::vocab::content::splitmix64(&mut run) ^ i;
    crate::vocab::content::splitmix64(&mut state)
}

/// Runs a (candidate) sequence in namespace `ns` and checks it. `None` when content won't render.
pub async fn run_checked(
    ex: &Executor,
    seq: &Sequence,
    ns: &str,
) -> Option<(Content, CaseOutcome, Vec<Divergence>)> {
    let content = Content::render(&seq.content).ok()?;
    let (outcome, divs) = run_rendered(ex, seq, &content, ns).await;
    Some((content, outcome, divs))
}

/// `run_checked` of a sequence whose content is already rendered.
pub async fn run_rendered(
    ex: &Executor,
    seq: &Sequence,
    content: &Content,
    ns: &str,
) -> (CaseOutcome, Vec<Divergence>) {
    let outcome = ex.run(seq, content, ns).await;
    let divs = check_case(seq, content, &outcome);
    (outcome, divs)
}

/// Runs a scenario's ops on every target of `ex`: consecutive ops as one sequence, each
/// `[[concurrent]]` group's ops at the same time (each as its own one-op sequence in the same
/// namespace, so they hit the same repositories). Without groups this is `ex.run`.
pub async fn execute_scenario(
    ex: &Executor,
    sc: &Scenario,
    content: &Content,
    ns: &str,
) -> CaseOutcome {
    let n = sc.ops.len();
    let group_at = |i: usize| sc.concurrent.iter().find(|g| g.ops.first() == Some(&i));
    let seq = |ops: Vec<crate::ops::Op>| Sequence {
        content: sc.content.clone(),
        ops,
    };
    let mut out: Vec<crate::vocab::exchange::OpOutcome> = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        if let Some(g) = group_at(i) {
            let seqs: Vec<Sequence> = g
                .ops
                .iter()
                .filter_map(|k| sc.ops.get(*k).cloned())
                .map(|op| seq(vec![op]))
                .collect();
            let runs = futures::future::join_all(seqs.iter().map(|s| ex.run(s, content, ns))).await;
            for r in runs {
                out.extend(r.ops);
            }
            i += g.ops.len().max(1);
        } else {
            let end = (i + 1..n).find(|k| group_at(*k).is_some()).unwrap_or(n);
            let r = ex.run(&seq(sc.ops[i..end].to_vec()), content, ns).await;
            out.extend(r.ops);
            i = end;
        }
    }
    CaseOutcome {
        targets: ex.target_names(),
        ops: out,
        versions: ex.versions(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> (String, TargetSpec) {
        ("reference".into(), TargetSpec::Reference(Box::default()))
    }
    #[test]
    fn neighbouring_seeds_draw_different_cases() {
        let run = |seed| (0..1000).map(move |i| case_seed(seed, i));
        let one: std::collections::BTreeSet<u64> = run(1).collect();
        assert_eq!(one.len(), 1000, "distinct indices, distinct seeds");
        assert!(
            run(2).all(|s| !one.contains(&s)),
            "seed 2 shares no case with seed 1"
        );
        assert_eq!(case_seed(1, 5), case_seed(1, 5));
    }

    #[test]
    fn reference_is_first_and_added() {
        let t = with_reference_first(vec![("cr".into(), TargetSpec::ContainerRegistry)]).unwrap();
        assert_eq!(t[0].0, "reference");
        assert_eq!(t[1].0, "cr");
        let t = with_reference_first(vec![
            ("cr".into(), TargetSpec::ContainerRegistry),
            reference(),
        ])
        .unwrap();
        assert_eq!(t[0].0, "reference");
        assert_eq!(t.len(), 2);
        assert!(with_reference_first(vec![
            ("x".into(), TargetSpec::ContainerRegistry),
            ("x".into(), TargetSpec::ContainerRegistry)
        ])
        .is_err());
        let id = run_id();
        assert_eq!(id.len(), 8);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
