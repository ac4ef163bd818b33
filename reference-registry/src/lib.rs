//! The ocidiff reference registry: a small, spec-exact OCI Distribution
//! Spec registry used as the oracle of the differential fuzzer.
//!
//! * [`router`] builds an in-process `axum::Router` (no socket), suitable for
//!   `tower::ServiceExt::oneshot`.
//! * [`spawn`] / [`spawn_on`] serve it on a loopback socket and return a
//!   [`RunningRegistry`] that stops the server when shut down or dropped.
//!
//! Modules: [`spec`] (grammars, error codes), [`store`] (metadata, blobs,
//! uploads), [`routes`] (one handler per endpoint id), [`auth`], [`faults`]
//! (test-only bugs), [`quirks`] (spec-allowed behaviours of real registries).

pub mod auth;
pub mod faults;
pub mod quirks;
pub mod routes;
pub mod spec;
pub mod store;

pub use auth::AuthMode;
pub use faults::Faults;
pub use quirks::Quirks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Registry configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where content lives.
    pub storage: Storage,
    /// Authentication mode.
    pub auth: AuthMode,
    /// Whether end-9 / end-10 deletes are enabled (default `true`).
    pub delete_enabled: bool,
    /// Manifest body limit in bytes (default 4 MiB); larger pushes get 413.
    pub max_manifest_bytes: usize,
    /// Test-only fault injection (default: none).
    pub faults: Faults,
    /// Spec-allowed behaviours of real registries (default: none).
    pub quirks: Quirks,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            storage: Storage::Memory,
            auth: AuthMode::None,
            delete_enabled: true,
            max_manifest_bytes: 4 * 1024 * 1024,
            faults: Faults::default(),
            quirks: Quirks::default(),
        }
    }
}

/// Storage backend selection.
#[derive(Clone, Debug, Default)]
pub enum Storage {
    /// Everything in memory (upload temp files in a private temp dir).
    #[default]
    Memory,
    /// Persistent, in this directory (created if missing).
    Dir(PathBuf),
}

/// Builds the registry as an in-process router.
pub fn router(config: Config) -> anyhow::Result<axum::Router> {
    Ok(routes::router(state(config)?))
}

fn state(config: Config) -> anyhow::Result<Arc<routes::AppState>> {
    let backend: Box<dyn store::Backend> = match &config.storage {
        Storage::Memory => Box::new(store::MemoryBackend::new()?),
        Storage::Dir(dir) => Box::new(store::DiskBackend::open(dir)?),
    };
    Ok(Arc::new(routes::AppState {
        store: store::Store::open(backend)?,
        auth: auth::Auth::new(config.auth.clone()),
        config,
    }))
}

/// A registry served on a socket. Dropping it stops the server.
pub struct RunningRegistry {
    addr: SocketAddr,
    state: Arc<routes::AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Serves a registry on `127.0.0.1` with an ephemeral port.
pub async fn spawn(config: Config) -> anyhow::Result<RunningRegistry> {
    spawn_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Serves a registry on `addr` (port 0 picks a free port).
pub async fn spawn_on(config: Config, addr: SocketAddr) -> anyhow::Result<RunningRegistry> {
    let state = state(config)?;
    let app = routes::router(state.clone());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!("server error: {e}");
        }
    });
    Ok(RunningRegistry {
        addr,
        state,
        stop: Some(tx),
        task: Some(task),
    })
}

impl RunningRegistry {
    /// `http://IP:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forgets every repository whose name starts with `prefix` (with its upload sessions and,
    /// in memory, the content nothing else refers to): how a long fuzz run stays in bounded
    /// memory. Not reachable over HTTP.
    pub fn purge(&self, prefix: &str) -> std::io::Result<store::Purged> {
        self.state.store.purge(prefix)
    }

    /// Stops the server: graceful for up to 5 s (open connections), then aborted.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
