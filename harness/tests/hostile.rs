//! Hostile targets: a small server that answers `GET /v2/` like a registry and then misbehaves
//! (hangs, resets connections, answers random bytes, sends a 10 GiB body, trickles its headers
//! one per second, answers unterminated JSON, redirects to itself). Against each, a 15 s fuzz
//! run ends in under 45 s, returns normally (exit 0 or 1), writes a valid `findings.json`, and
//! the process stays under 512 MiB; a target that stops answering is reported once as
//! `target/unresponsive`.

mod common;

use common::{fuzz_config, reference};
use ocidiff::drivers::fuzz::run_fuzz;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug)]
enum Mode {
    Hang,
    Reset,
    RandomBytes,
    HugeBody,
    TrickleHeaders,
    UnterminatedJson,
    RedirectToSelf,
}

const MODES: [Mode; 7] = [
    Mode::Hang,
    Mode::Reset,
    Mode::RandomBytes,
    Mode::HugeBody,
    Mode::TrickleHeaders,
    Mode::UnterminatedJson,
    Mode::RedirectToSelf,
];

/// Reads one request head; returns its path (`None` when the peer went away).
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut byte).await.ok()?;
        if n == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1).map(str::to_string)
}

async fn misbehave(mut s: TcpStream, mode: Mode) {
    loop {
        let Some(path) = read_head(&mut s).await else {
            return;
        };
        if path == "/v2/" {
            let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n{}";
            if s.write_all(ok).await.is_err() {
                return;
            }
            continue;
        }
        match mode {
            Mode::Hang => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
            Mode::Reset => {
                // Closed without an answer (a reset when unread data is pending).
                drop(s);
                return;
            }
            Mode::RandomBytes => {
                let junk: Vec<u8> = (0..4096u32)
                    .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                    .collect();
                let _ = s.write_all(&junk).await;
                return;
            }
            Mode::HugeBody => {
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 10737418240\r\n\r\n";
                if s.write_all(head).await.is_err() {
                    return;
                }
                let chunk = vec![0u8; 1 << 16];
                // Until the client gives up (10 GiB at most).
                for _ in 0..(10u64 << 30) / (1 << 16) {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                return;
            }
            Mode::TrickleHeaders => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
                for i in 0..120 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if s.write_all(format!("X-Trickle-{i}: x\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                return;
            }
            Mode::UnterminatedJson => {
                let body = br#"{"tags":["a","b"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if s.write_all(head.as_bytes()).await.is_err() || s.write_all(body).await.is_err() {
                    return;
                }
            }
            Mode::RedirectToSelf => {
                let head = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {path}\r\nContent-Length: 0\r\n\r\n"
                );
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Serves `mode` on a loopback port until the returned task is aborted.
async fn serve(mode: Mode) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(150), misbehave(s, mode)).await;
            });
        }
    });
    (url, task)
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_targets_do_not_stretch_or_break_a_run() {
    let mut rows = Vec::new();
    for mode in MODES {
        let (url, server) = serve(mode).await;
        let out = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let s = run_fuzz(fuzz_config(
            vec![
                ("reference".into(), reference()),
                (
                    "hostile".into(),
                    ocidiff::targets::parse_target_arg(&format!("hostile={url}"))
                        .expect("URL target")
                        .1,
                ),
            ],
            7,
            1000,
            Duration::from_secs(15),
            true,
            out.path(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{mode:?}: the run failed: {e:#}"));
        let took = start.elapsed();
        server.abort();
        let json = std::fs::read_to_string(out.path().join("findings.json")).unwrap();
        let entries: serde_json::Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{mode:?}: findings.json is not JSON: {e}"));
        let unresponsive = s
            .findings
            .iter()
            .filter(|f| f.divergence.rule == "target/unresponsive")
            .count();
        println!(
            "{mode:?}: {:.1}s, {} cases, {} findings ({} unresponsive), peak RSS so far {:?} MiB",
            took.as_secs_f64(),
            s.cases_run,
            entries.as_array().map_or(0, Vec::len),
            unresponsive,
            peak_rss_mib()
        );
        assert!(
            took < Duration::from_secs(45),
            "{mode:?}: the 15 s run took {took:.1?}"
        );
        assert!(entries.is_array(), "{mode:?}");
        assert!(
            unresponsive <= 1,
            "{mode:?}: unresponsive reported {unresponsive} times"
        );
        if matches!(mode, Mode::Hang | Mode::Reset | Mode::TrickleHeaders) {
            assert_eq!(
                unresponsive, 1,
                "{mode:?}: a target that never answers is reported"
            );
        }
        rows.push((mode, took));
    }
    if let Some(peak) = peak_rss_mib() {
        assert!(peak < 512, "peak RSS {peak} MiB");
    }
}
