//! `fraudctl serve`: the HTTP API on a local address (the seed's 127.0.0.1:5001), the same
//! routes and code as the Lambda functions, over hyper with HTTP/1.1 keep-alive.
//!
//! Predictions are logged by a background batch writer; Ctrl-C (or SIGTERM) stops accepting,
//! lets open requests finish (up to 10 s), then writes what the log still holds.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use fraudrisk::http::{ApiError, App, AppConfig};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// How long open connections may take to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must send its request headers within this time (slow clients hold a connection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Serves connections from `listener` until `stop` completes, then drains open connections.
pub async fn serve(listener: TcpListener, app: Arc<App>, stop: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        // E.g. out of file descriptors: wait instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small answers: do not let Nagle's algorithm hold them back.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                let app = app.clone();
                let service = service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(answer(&app, request).await) }
                });
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
    }
}

/// Reads the body up to the limit and hands the request to the app.
async fn answer(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let limit = app.max_body_bytes();
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared oversize body is refused before a byte of it is read.
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::PayloadTooLarge { limit }
            .into_response()
            .map(Full::new);
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return ApiError::PayloadTooLarge { limit }
                .into_response()
                .map(Full::new);
        }
        Err(error) => {
            return ApiError::MalformedJson(format!("the request body could not be read: {error}"))
                .into_response()
                .map(Full::new);
        }
    };
    app.handle(Request::from_parts(parts, bytes))
        .await
        .map(Full::new)
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keep_alive_limits_and_graceful_stop() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AppConfig::new(dir.path().to_path_buf());
        config.background_log = true;
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

        let client = tokio::task::spawn_blocking(move || {
            let stream = std::net::TcpStream::connect(address).unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let auth = "Authorization: Basic bWVybGluOndpemFyZC1wYXNz\r\n";
            let mut answers = Vec::new();
            // Two requests on one connection: keep-alive.
            for _ in 0..2 {
                write!(writer, "GET /hello HTTP/1.1\r\nHost: x\r\n{auth}\r\n").unwrap();
                answers.push(read_response(&mut reader));
            }
            // A declared oversize body is refused without reading it.
            write!(
                writer,
                "POST /predict HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
            )
            .unwrap();
            answers.push(read_response(&mut reader));
            answers
        })
        .await
        .unwrap();

        assert_eq!(client[0].0, 200, "{}", client[0].1);
        assert!(client[0].1.contains("\"message\":\"hello\""));
        assert_eq!(client[1].0, 200);
        assert_eq!(client[2].0, 413, "{}", client[2].1);

        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), server)
            .await
            .expect("the server stops after the signal")
            .unwrap();
        app.shutdown().await;
    }
}
