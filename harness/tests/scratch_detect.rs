use ocidiff::content::Content;
use ocidiff::exec::{ExecOptions, Executor};
use ocidiff::generate::{generate_sequence, GenConfig};
use ocidiff::target::*;
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    let ts = launch_all(&[
        ("reference".into(), TargetSpec::Reference(Box::default())),
        ("cr".into(), TargetSpec::ContainerRegistry),
        ("dist".into(), TargetSpec::Distribution { binary: None }),
    ]).await.unwrap();
    let exec = Executor::new(ts.iter().map(|t| t.exec_target()).collect(), ExecOptions::default()).unwrap();
    let mut sigs = BTreeMap::new();
    for i in 0..30u64 {
        let seq = generate_sequence(i, &GenConfig::default());
        let content = Content::render(&seq.content).unwrap();
        let out = exec.run(&seq, &content, &format!("c{i}")).await;
        for d in ocidiff::oracle::check_case(&seq, &content, &out) {
            *sigs.entry(d.signature()).or_insert(0) += 1;
        }
    }
    for (s, n) in sigs { println!("{n:4} {s:?}"); }
    shutdown_all(ts).await;
}
