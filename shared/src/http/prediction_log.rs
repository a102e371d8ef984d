//! Where served predictions are logged: in the request (Lambda) or by a background writer
//! (a long-running server).
//!
//! In Lambda the container may freeze as soon as the answer is sent, so the log is written
//! within the invocation and a failed write fails the request. In `fraudctl serve` a bounded
//! channel hands entries to one writer task that stores them in batches (one transaction per
//! batch instead of one per request, the writer lingering up to 5 ms for a batch to fill); a
//! full channel makes requests wait (backpressure, nothing dropped), and
//! [`PredictionSink::shutdown`] drains it. A batch the store refuses is retried with growing
//! pauses until it is written, each failure reported in the log: meanwhile the channel fills
//! and new predictions wait (back-pressure) rather than being answered and dropped. Only at
//! shutdown does the writer give up, after a few tries, and then it reports how many entries
//! were lost. [`PredictionSink::flush`] waits until what was queued before it is written
//! (outcomes are looked up by id right after).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::dataset::DataQuality;
use crate::monitor::{ScoreReference, WindowAggregates};
use crate::ports::{
    MonitoredPrediction, PredictionLog, PredictionLogEntry, PredictionStats, StoreError,
};

/// Requests the background channel holds before callers wait.
const CHANNEL_CAPACITY: usize = 4096;
/// Requests merged into one write.
const BATCH_REQUESTS: usize = 256;
/// How long the writer waits for more requests before writing a small batch: each write is a
/// transaction whose fixed cost (BEGIN, COMMIT, the WAL append) dwarfed its few rows when
/// every batch held the one or two requests that arrived while the last one was written.
const LINGER: Duration = Duration::from_millis(5);
/// First pause after a failed write; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);
/// Tries per batch once shutdown has begun.
const TRIES_AT_SHUTDOWN: u32 = 3;

/// How predictions reach the log.
pub enum PredictionSink {
    /// Written before the answer.
    Inline(Arc<dyn PredictionLog>),
    /// Queued for a background writer.
    Background(BackgroundWriter),
}

/// What the background writer receives.
enum Queued {
    /// One request's entries.
    Entries(Vec<PredictionLogEntry>),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// The background writer's handles.
pub struct BackgroundWriter {
    log: Arc<dyn PredictionLog>,
    sender: mpsc::Sender<Queued>,
    stop: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl PredictionSink {
    /// Writes within each request.
    pub fn inline(log: Arc<dyn PredictionLog>) -> Self {
        PredictionSink::Inline(log)
    }

    /// Starts the background writer; must be called inside a tokio runtime.
    pub fn background(log: Arc<dyn PredictionLog>) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let stop = Arc::new(Notify::new());
        let stopping = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(write_batches(
            log.clone(),
            receiver,
            stop.clone(),
            stopping.clone(),
        ));
        PredictionSink::Background(BackgroundWriter {
            log,
            sender,
            stop,
            stopping,
            task: Mutex::new(Some(task)),
        })
    }

    /// The log the sink writes to.
    pub fn inner(&self) -> &Arc<dyn PredictionLog> {
        match self {
            PredictionSink::Inline(log) => log,
            PredictionSink::Background(writer) => &writer.log,
        }
    }

    /// Logs the entries of one request.
    pub async fn record(&self, entries: Vec<PredictionLogEntry>) -> Result<(), StoreError> {
        match self {
            PredictionSink::Inline(log) => log.log_predictions(&entries).await,
            PredictionSink::Background(writer) => {
                match writer.sender.send(Queued::Entries(entries)).await {
                    Ok(()) => Ok(()),
                    // The writer has stopped (shutdown): write this one ourselves.
                    Err(mpsc::error::SendError(Queued::Entries(entries))) => {
                        writer.log.log_predictions(&entries).await
                    }
                    Err(mpsc::error::SendError(Queued::Flush(_))) => Ok(()),
                }
            }
        }
    }

    /// Waits until every entry queued before this call is written (at once when inline, or
    /// when the writer has stopped).
    pub async fn flush(&self) {
        if let PredictionSink::Background(writer) = self {
            let (done, written) = oneshot::channel();
            if writer.sender.send(Queued::Flush(done)).await.is_ok() {
                // An error means the writer stopped, after writing what it had.
                let _ = written.await;
            }
        }
    }

    /// Stops the background writer after it has written everything queued.
    pub async fn shutdown(&self) {
        if let PredictionSink::Background(writer) = self {
            writer.stopping.store(true, Ordering::SeqCst);
            writer.stop.notify_one();
            let task = writer.task.lock().ok().and_then(|mut task| task.take());
            if let Some(task) = task {
                if let Err(error) = task.await {
                    tracing::error!(%error, "the prediction log writer failed");
                }
            }
        }
    }
}

async fn write_batches(
    log: Arc<dyn PredictionLog>,
    mut receiver: mpsc::Receiver<Queued>,
    stop: Arc<Notify>,
    stopping: Arc<AtomicBool>,
) {
    let mut requests = Vec::with_capacity(BATCH_REQUESTS);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut requests, BATCH_REQUESTS) => {
                if received == 0 {
                    break;
                }
                linger(&mut receiver, &mut requests).await;
                write(log.as_ref(), &mut requests, &stopping).await;
            }
            _ = stop.notified() => {
                // No new entries from now on; what is queued is still delivered.
                receiver.close();
                while receiver.recv_many(&mut requests, BATCH_REQUESTS).await > 0 {
                    write(log.as_ref(), &mut requests, &stopping).await;
                }
                break;
            }
        }
    }
}

/// Waits up to [`LINGER`] for the batch to fill; a flush ends the wait (its caller waits).
async fn linger(receiver: &mut mpsc::Receiver<Queued>, requests: &mut Vec<Queued>) {
    let deadline = tokio::time::Instant::now() + LINGER;
    let is_flush = |queued: &Queued| matches!(queued, Queued::Flush(_));
    let mut flushing = requests.iter().any(is_flush);
    while !flushing && requests.len() < BATCH_REQUESTS {
        let before = requests.len();
        let room = BATCH_REQUESTS - before;
        match tokio::time::timeout_at(deadline, receiver.recv_many(requests, room)).await {
            Ok(received) if received > 0 => flushing = requests[before..].iter().any(is_flush),
            // Closed (shutdown) or the time is up.
            _ => break,
        }
    }
}

async fn write(log: &dyn PredictionLog, requests: &mut Vec<Queued>, stopping: &AtomicBool) {
    let mut entries = Vec::new();
    let mut flushes = Vec::new();
    for queued in requests.drain(..) {
        match queued {
            Queued::Entries(batch) => entries.extend(batch),
            Queued::Flush(done) => flushes.push(done),
        }
    }
    write_entries(log, &entries, stopping).await;
    for done in flushes {
        // The flusher may have gone away; nothing to tell then.
        let _ = done.send(());
    }
}

async fn write_entries(
    log: &dyn PredictionLog,
    entries: &[PredictionLogEntry],
    stopping: &AtomicBool,
) {
    if entries.is_empty() {
        return;
    }
    let mut pause = FIRST_RETRY_PAUSE;
    let mut tries = 0;
    loop {
        tries += 1;
        let Err(error) = log.log_predictions(entries).await else {
            if tries > 1 {
                tracing::info!(count = entries.len(), tries, "prediction log written again");
            }
            return;
        };
        if stopping.load(Ordering::SeqCst) && tries >= TRIES_AT_SHUTDOWN {
            tracing::error!(%error, count = entries.len(), "prediction log entries were lost at shutdown");
            return;
        }
        tracing::error!(%error, count = entries.len(), tries, "prediction log write failed; new predictions wait until it succeeds");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
}

// The sink is the prediction log of `predict_and_log`, so what is logged is defined once,
// in the pipeline, whether it is written now or by the background writer.
#[async_trait]
impl PredictionLog for PredictionSink {
    async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
        self.record(entries.to_vec()).await
    }

    /// Queued as they are: no copy of each entry's features.
    async fn log_owned_predictions(
        &self,
        entries: Vec<PredictionLogEntry>,
    ) -> Result<(), StoreError> {
        self.record(entries).await
    }

    /// Reads the store: an entry still queued for the background writer is not found yet.
    async fn prediction_by_id(
        &self,
        prediction_id: Uuid,
    ) -> Result<Option<PredictionLogEntry>, StoreError> {
        self.inner().prediction_by_id(prediction_id).await
    }

    async fn prediction_stats(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<PredictionStats, StoreError> {
        self.inner().prediction_stats(since).await
    }

    async fn predictions_in_window(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        self.inner()
            .predictions_in_window(since, until, limit)
            .await
    }

    async fn served_outcomes(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<MonitoredPrediction>, StoreError> {
        self.inner().served_outcomes(since, limit).await
    }

    async fn window_aggregates(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        reference: &ScoreReference,
    ) -> Result<WindowAggregates, StoreError> {
        self.inner()
            .window_aggregates(since, until, reference)
            .await
    }

    async fn window_data_quality(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<DataQuality, StoreError> {
        self.inner().window_data_quality(since, until).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps how many writes the writer made, and how many entries each held.
    #[derive(Default)]
    struct WriteCounter {
        writes: Mutex<Vec<usize>>,
    }

    fn unused(operation: &'static str) -> StoreError {
        StoreError::backend(operation, "not kept by this test log")
    }

    #[async_trait]
    impl PredictionLog for WriteCounter {
        async fn log_predictions(&self, entries: &[PredictionLogEntry]) -> Result<(), StoreError> {
            if let Ok(mut writes) = self.writes.lock() {
                writes.push(entries.len());
            }
            Ok(())
        }
        async fn prediction_by_id(
            &self,
            _: Uuid,
        ) -> Result<Option<PredictionLogEntry>, StoreError> {
            Err(unused("prediction_by_id"))
        }
        async fn prediction_stats(
            &self,
            _: Option<DateTime<Utc>>,
        ) -> Result<PredictionStats, StoreError> {
            Err(unused("prediction_stats"))
        }
        async fn predictions_in_window(
            &self,
            _: Option<DateTime<Utc>>,
            _: Option<DateTime<Utc>>,
            _: usize,
        ) -> Result<Vec<MonitoredPrediction>, StoreError> {
            Err(unused("predictions_in_window"))
        }
        async fn served_outcomes(
            &self,
            _: DateTime<Utc>,
            _: usize,
        ) -> Result<Vec<MonitoredPrediction>, StoreError> {
            Err(unused("served_outcomes"))
        }
        async fn window_aggregates(
            &self,
            _: Option<DateTime<Utc>>,
            _: Option<DateTime<Utc>>,
            _: &ScoreReference,
        ) -> Result<WindowAggregates, StoreError> {
            Err(unused("window_aggregates"))
        }
        async fn window_data_quality(
            &self,
            _: Option<DateTime<Utc>>,
            _: Option<DateTime<Utc>>,
        ) -> Result<DataQuality, StoreError> {
            Err(unused("window_data_quality"))
        }
    }

    fn entry() -> PredictionLogEntry {
        PredictionLogEntry {
            prediction_id: Uuid::now_v7(),
            created_at: Utc::now(),
            model_version: 1,
            threshold: 0.5,
            probability_of_fraud: 0.25,
            fraud: false,
            features: serde_json::json!({}),
            username: None,
            reason_codes: Vec::new(),
        }
    }

    // One thread: the writer runs only when the test yields, as it would between requests.
    #[tokio::test(flavor = "current_thread")]
    async fn requests_arriving_while_the_writer_waits_share_a_write() {
        let counter = Arc::new(WriteCounter::default());
        let sink = PredictionSink::background(counter.clone());
        for _ in 0..10 {
            sink.record(vec![entry()]).await.unwrap();
            // The writer takes what is queued; without the linger it would write it now.
            tokio::task::yield_now().await;
        }
        sink.flush().await;
        let writes = counter.writes.lock().unwrap().clone();
        assert_eq!(writes.iter().sum::<usize>(), 10, "{writes:?}");
        assert!(writes.len() <= 3, "one write per request: {writes:?}");
        // A flush ends the wait: what it follows is written before it returns.
        sink.record(vec![entry()]).await.unwrap();
        sink.flush().await;
        assert_eq!(counter.writes.lock().unwrap().iter().sum::<usize>(), 11);
        sink.shutdown().await;
    }
}
