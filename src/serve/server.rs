//! Listening (plain TCP or TLS), one router for every endpoint, request logs, clean shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::serve::IncomingStream;
use http_body::{Frame, SizeHint};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

use crate::progress::Ui;
use crate::serve::registry::{self, Registry};
use crate::serve::{FileTree, ServeError};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long downloads in flight may go on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Reads a PEM certificate chain and private key into a TLS server configuration.
///
/// The provider is named (aws-lc-rs, which the HTTP client already uses) rather than taken
/// from the process default, which is ambiguous when more than one provider is compiled in.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServeError> {
    let tls_err = |path: &Path, reason: String| ServeError::Tls {
        path: path.to_path_buf(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(tls_err(
            cert,
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| tls_err(key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A bound listener, plain or TLS; handshakes run beside the accept loop, so one slow client
/// cannot hold up the others.
pub struct ServeListener {
    local: SocketAddr,
    inner: Inner,
}

enum Inner {
    Plain(TcpListener),
    Tls(mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>),
}

impl ServeListener {
    /// Binds `addr` (`HOST:PORT`; port 0 picks a free one), serving TLS when a config is given.
    pub async fn bind(
        addr: &str,
        tls: Option<Arc<ServerConfig>>,
        ui: &Ui,
    ) -> Result<ServeListener, ServeError> {
        let bind_err = |reason| ServeError::Bind {
            addr: addr.to_string(),
            reason,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let inner = match tls {
            None => Inner::Plain(listener),
            Some(config) => Inner::Tls(spawn_handshakes(listener, config, ui.clone())),
        };
        Ok(ServeListener { local, inner })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }
}

fn spawn_handshakes(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    ui: Ui,
) -> mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = accept_tcp(&listener).await;
            let acceptor = acceptor.clone();
            let ready = tx.clone();
            let ui = ui.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = ready.send((tls, peer)).await;
                    }
                    // Worth a line: a client that does not trust the certificate ends here.
                    Ok(Err(e)) => ui.status(format!("{peer} TLS handshake failed: {e}")),
                    Err(_) => ui.status(format!("{peer} TLS handshake timed out")),
                }
            });
            if tx.is_closed() {
                break;
            }
        }
    });
    rx
}

/// Accepts the next TCP connection; errors such as too many open files pass with a pause.
async fn accept_tcp(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Responses are a header then a body in separate writes: with Nagle's algorithm
                // and the client's delayed ACK each small response waits ~40 ms.
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(e) => {
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl axum::serve::Listener for ServeListener {
    type Io = Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match &mut self.inner {
            Inner::Plain(listener) => {
                let (stream, peer) = accept_tcp(listener).await;
                (Either::Left(stream), peer)
            }
            Inner::Tls(incoming) => match incoming.recv().await {
                Some((stream, peer)) => (Either::Right(stream), peer),
                // The handshake task only ends when this receiver is gone.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The client's address, for the request log.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, ServeListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ServeListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// Every endpoint the server has; later mirrors (charts, files) join here.
pub fn router(registry: Arc<Registry>, files: Arc<FileTree>, ui: Ui) -> Router {
    router_with(registry, crate::serve::files::router(files), ui)
}

/// The registry plus HTTP mirrors (`/charts/`, `/files/`, `/apt/`), every request logged.
pub fn router_with(registry: Arc<Registry>, mirrors: Router, ui: Ui) -> Router {
    Router::new()
        .route("/v2", any(registry::handle))
        .route("/v2/", any(registry::handle))
        .route("/v2/{*path}", any(registry::handle))
        .with_state(registry)
        .merge(mirrors)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n").into_response() })
        .layer(middleware::from_fn_with_state(ui, log_request))
}

/// Serves until `shutdown` completes, then lets requests in flight finish for a short while.
pub async fn run(
    listener: ServeListener,
    app: Router,
    ui: &Ui,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let stopping = Arc::new(Notify::new());
    let notify = stopping.clone();
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            notify.notify_one();
        });
    tokio::select! {
        result = server => result,
        () = async {
            stopping.notified().await;
            ui.status("stopping: finishing requests in flight");
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            ui.warn(format!(
                "downloads still running after {}s were cut off",
                SHUTDOWN_GRACE.as_secs()
            ));
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Logs one line per request once its body has been sent (or the client went away).
async fn log_request(State(ui): State<Ui>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(Peer(addr))| addr.to_string())
        .unwrap_or_else(|| "-".to_string());
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let line = format!("{peer} {} {target}", request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    response.map(|inner| {
        Body::new(LoggedBody {
            inner,
            sent: 0,
            length,
            finished: false,
            log: Some((ui, line, status, start)),
        })
    })
}

/// A response body that counts what it sends and logs the request when dropped.
struct LoggedBody {
    inner: Body,
    sent: u64,
    /// The Content-Length sent: hyper stops polling once that many bytes went out.
    length: Option<u64>,
    finished: bool,
    log: Option<(Ui, String, u16, Instant)>,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.finished = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some((ui, line, status, start)) = self.log.take() {
            let complete =
                self.finished || self.inner.is_end_stream() || self.length == Some(self.sent);
            let cut = if complete { "" } else { " (client went away)" };
            ui.status(format!(
                "{line} {status} {} B {:.1} ms{cut}",
                self.sent,
                start.elapsed().as_secs_f64() * 1000.0
            ));
        }
    }
}
