//! `fraudctl serve`: the HTTP API on a local address (the seed's 127.0.0.1:5001), the same
//! router as the Lambda functions, over hyper's HTTP/1.1 connections (keep-alive).
//!
//! The connection loop is ours rather than `axum::serve` for a limit that only the
//! connection builder sets: a client must send its whole header block within
//! [`HEADER_READ_TIMEOUT`] (a slow-headers client is disconnected; the router's timeouts
//! cover the body and the work). hyper's own header count limit stays at its default (100
//! fields, parsed on the stack), above the router's 64, so the JSON 431 answers first; a
//! higher limit made hyper allocate two header arrays on the heap for every request (about
//! 4 % of the serving CPU under wrk).
//!
//! Predictions are logged by a background batch writer; Ctrl-C (or SIGTERM) stops accepting,
//! lets open requests finish (up to 10 s), then writes what the log still holds.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::ConnectInfo;
use fraudrisk::http::router::MAX_HEADERS;
use fraudrisk::http::{router, App, AppConfig, Endpoint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long open connections may take to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its request line and headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's own limit on header fields (a bare 431 above it), its default: above the
/// router's JSON 431, and small enough for hyper to parse the headers on the stack.
const HYPER_MAX_HEADERS: usize = 100;
const _: () = assert!(HYPER_MAX_HEADERS > MAX_HEADERS);

/// Options of `fraudctl serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed on start).
    #[arg(long, env = "FRAUDRISK_ADDR", default_value = "127.0.0.1:5001")]
    pub addr: SocketAddr,
}

/// Opens the services, listens, and serves until Ctrl-C or SIGTERM.
pub async fn run(state: &Path, args: ServeArgs) -> Result<ExitCode> {
    let mut config = AppConfig::from_env(state.to_path_buf())?;
    config.background_log = true;
    let app = App::from_config(&config)
        .await
        .with_context(|| format!("cannot open the state in {}", state.display()))?;
    let app = Arc::new(app);
    app.warm_up().await;
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    for (port, location) in &app.services().description {
        eprintln!("{port}: {location}");
    }
    // Standard output carries only this line, so scripts can read the address from it.
    outln!("listening on http://{local}");
    serve(listener, app.clone(), stop_signal(), HEADER_READ_TIMEOUT).await;
    app.shutdown().await;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Serves every route from `listener` until `stop` completes, then lets open requests
/// finish for at most [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    stop: impl Future<Output = ()> + Send + 'static,
    header_read_timeout: Duration,
) {
    let routes = router(app, &Endpoint::ALL);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Small answers: do not let Nagle's algorithm hold them back.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        // The peer's address for the failed-login limits, as `ConnectInfo` gives it.
        let service =
            routes
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    eprintln!("stopping: finishing open requests");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    /// Reads one HTTP/1.1 response with a Content-Length body; returns status and body.
    fn read_response(reader: &mut BufReader<std::net::TcpStream>) -> (u16, String) {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }

    /// A server on a free port over a fresh state with the test user; stopped by the sender.
    async fn start(
        body_read_timeout: Duration,
    ) -> (
        SocketAddr,
        Arc<App>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AppConfig::new(dir.path().to_path_buf());
        config.background_log = true;
        config.body_read_timeout = body_read_timeout;
        let app = App::from_config(&config).await.unwrap();
        fraudrisk::auth::add_user(app.services().users.as_ref(), "merlin", "wizard-pass")
            .await
            .unwrap();
        let app = Arc::new(app);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            app.clone(),
            async {
                let _ = stop_rx.await;
            },
            Duration::from_secs(1),
        ));
        (address, app, stop_tx, server, dir)
    }

    const AUTH: &str = "Authorization: Basic bWVybGluOndpemFyZC1wYXNz\r\n";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keep_alive_limits_and_graceful_stop() {
        let (address, app, stop_tx, server, _dir) = start(Duration::from_secs(10)).await;
        let client = tokio::task::spawn_blocking(move || {
            let stream = std::net::TcpStream::connect(address).unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut answers = Vec::new();
            // Two requests on one connection: keep-alive; a stage prefix routes as in Lambda.
            for path in ["/hello", "/prod/hello"] {
                write!(writer, "GET {path} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n").unwrap();
                answers.push(read_response(&mut reader));
            }
            // A declared oversize body is refused without reading it.
            write!(
                writer,
                "POST /predict HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
            )
            .unwrap();
            answers.push(read_response(&mut reader));
            answers
        })
        .await
        .unwrap();

        assert_eq!(client[0].0, 200, "{}", client[0].1);
        assert!(client[0].1.contains("\"message\":\"hello\""));
        assert_eq!(client[1].0, 200, "{}", client[1].1);
        assert_eq!(client[2].0, 413, "{}", client[2].1);
        assert!(client[2].1.contains("\"error\""), "{}", client[2].1);

        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), server)
            .await
            .expect("the server stops after the signal")
            .unwrap();
        app.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_body_is_cut_off_and_credentials_come_before_bodies() {
        let (address, app, stop_tx, server, _dir) = start(Duration::from_secs(1)).await;
        let client = tokio::task::spawn_blocking(move || {
            let mut answers = Vec::new();
            // Headers, then part of the body, then nothing: 408 after the body timeout.
            let stream = std::net::TcpStream::connect(address).unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let started = std::time::Instant::now();
            write!(
                writer,
                "POST /predict HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"account_"
            )
            .unwrap();
            answers.push(read_response(&mut reader));
            let slow = started.elapsed();
            // An unauthenticated 2 MiB POST: 401 after its headers, no body byte sent.
            let stream = std::net::TcpStream::connect(address).unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let started = std::time::Instant::now();
            write!(
                writer,
                "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                2 * 1024 * 1024
            )
            .unwrap();
            answers.push(read_response(&mut reader));
            (answers, slow, started.elapsed())
        })
        .await
        .unwrap();
        let (answers, slow, unauthenticated) = client;
        assert_eq!(answers[0].0, 408, "{}", answers[0].1);
        assert!(answers[0].1.contains("\"error\""), "{}", answers[0].1);
        assert!(slow < Duration::from_secs(5), "{slow:?}");
        assert_eq!(answers[1].0, 401, "{}", answers[1].1);
        assert!(
            unauthenticated < Duration::from_secs(1),
            "{unauthenticated:?}"
        );

        stop_tx.send(()).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        app.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_headers_are_cut_off_and_many_headers_get_the_json_431() {
        let (address, app, stop_tx, server, _dir) = start(Duration::from_secs(10)).await;
        let client = tokio::task::spawn_blocking(move || {
            // Half a header block, then nothing: the connection is closed after the header
            // read timeout (1 s here), with nothing read by the router.
            let stream = std::net::TcpStream::connect(address).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let started = std::time::Instant::now();
            write!(writer, "GET /hello HTTP/1.1\r\nHost: x\r\n").unwrap();
            let mut rest = Vec::new();
            let read = reader.read_to_end(&mut rest);
            let slow = started.elapsed();
            // 90 header fields (92 with Host and Authorization): over the router's 64,
            // under hyper's own limit.
            let stream = std::net::TcpStream::connect(address).unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request = format!("GET /hello HTTP/1.1\r\nHost: x\r\n{AUTH}");
            for index in 0..HYPER_MAX_HEADERS - 10 {
                request.push_str(&format!("x-filler-{index}: {index}\r\n"));
            }
            request.push_str("\r\n");
            writer.write_all(request.as_bytes()).unwrap();
            let many = read_response(&mut reader);
            (read.is_ok(), slow, many)
        })
        .await
        .unwrap();
        let (closed, slow, many) = client;
        assert!(
            closed,
            "the slow-headers connection was not closed by the server"
        );
        assert!(slow < Duration::from_secs(5), "{slow:?}");
        assert_eq!(many.0, 431, "{}", many.1);
        assert!(many.1.contains("\"error\""), "{}", many.1);

        stop_tx.send(()).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        app.shutdown().await;
    }
}
