//! `fraudctl serve`: the HTTP API on a local address (the seed's 127.0.0.1:5001), the same
//! router as the Lambda functions, under `axum::serve` (HTTP/1.1 keep-alive).
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
use axum::serve::ListenerExt;
use fraudrisk::http::{router, App, AppConfig, Endpoint};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How long open connections may take to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    serve(listener, app.clone(), stop_signal()).await;
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
) {
    let service = router(app, &Endpoint::ALL).into_make_service_with_connect_info::<SocketAddr>();
    // Small answers: do not let Nagle's algorithm hold them back.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let stopping = Arc::new(Notify::new());
    let signal = {
        let stopping = stopping.clone();
        async move {
            stop.await;
            stopping.notify_one();
        }
    };
    let server = axum::serve(listener, service).with_graceful_shutdown(signal);
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = server => {
            if let Err(error) = result {
                tracing::error!(%error, "the server failed");
            }
        }
        () = deadline => {
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
        let server = tokio::spawn(serve(listener, app.clone(), async {
            let _ = stop_rx.await;
        }));
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
}
