//! https targets: a private CA (`ca` / `--ca`) and `insecure`, against distribution serving TLS
//! with a certificate made here by the openssl CLI. Skips without docker-registry or openssl
//! (fails instead with `OCIDIFF_REQUIRE_EXTERNAL=1`, as in CI).

mod common;

use ocidiff::targets::common::Access;
use ocidiff::targets::external::{ExternalSpec, RemoteSpec};
use ocidiff::targets::{find_distribution_binary, launch, TargetSpec};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A CA and a leaf for 127.0.0.1 signed by it.
fn make_certs(dir: &Path) -> bool {
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=ocidiff-test-ca",
            ],
        ]
        .concat(),
    ) && openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    ) && openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    )
}

fn remote(url: &url::Url, insecure: bool, ca: Option<Vec<u8>>) -> TargetSpec {
    let mut access = Access::default();
    access.options.insecure = insecure;
    access.options.ca_pem = ca;
    TargetSpec::External(Box::new(ExternalSpec::Remote(RemoteSpec {
        url: url.clone(),
        access,
        preset: None,
    })))
}

#[tokio::test]
async fn https_with_private_ca_or_insecure() {
    let Some(bin) = find_distribution_binary() else {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    };
    if Command::new("openssl").arg("version").output().is_err() {
        common::skip_external("no openssl CLI");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(make_certs(dir.path()), "openssl failed");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}/data\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}/leaf.pem\n    key: {}/leaf.key\n",
            dir.path().display(),
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let _server = Kill(
        Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    // Wait until it listens (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "distribution did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let t = launch("tls-ca", &remote(&url, false, Some(ca)))
        .await
        .unwrap();
    let ex = ocidiff::execute::Executor::new(vec![t.exec_target()], Default::default()).unwrap();
    let seq = ocidiff::ops::Sequence {
        content: Default::default(),
        ops: vec![ocidiff::ops::Op::CheckApi(Default::default())],
    };
    let content = ocidiff::vocab::content::Content::render(&seq.content).unwrap();
    let out = ex.run(&seq, &content, "tls").await;
    assert_eq!(out.ops[0].per_target[0][0].observation.status, 200);
    t.shutdown().await;

    let t = launch("tls-insecure", &remote(&url, true, None))
        .await
        .unwrap();
    t.shutdown().await;

    // Without the CA: a clear, bounded failure.
    let err = launch("tls-untrusted", &remote(&url, false, None))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("does not answer"), "{err:#}");
}
