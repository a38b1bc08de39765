//! [`Services`]: the long-running tasks of a process (`dev`'s stack and the
//! previous keys' engines), each with a [`StopToken`], stopped together in
//! reverse start order with a grace period. Wiring only; no protocol logic.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn, Instrument};

/// How long the services get to stop before they are aborted.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A cooperative stop flag handed to every service.
#[derive(Debug, Clone)]
pub struct StopToken(watch::Receiver<bool>);

impl StopToken {
    /// The underlying watch channel (`true` = stop), for components that take one.
    pub fn into_receiver(self) -> watch::Receiver<bool> {
        self.0
    }

    /// Resolves once the stack is stopping.
    pub async fn stopped(mut self) {
        // An Err means the sender is gone, which also means "stop".
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// The long-running tasks of the stack, stopped together in reverse start order.
pub struct Services {
    stop: watch::Sender<bool>,
    exited_tx: mpsc::UnboundedSender<&'static str>,
    exited_rx: mpsc::UnboundedReceiver<&'static str>,
    tasks: Vec<(&'static str, JoinHandle<Result<()>>)>,
}

impl Services {
    pub(crate) fn new() -> Self {
        let (stop, _) = watch::channel(false);
        let (exited_tx, exited_rx) = mpsc::unbounded_channel();
        Self {
            stop,
            exited_tx,
            exited_rx,
            tasks: Vec::new(),
        }
    }

    /// Starts a named service. It must return once its [`StopToken`] resolves.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, service: F)
    where
        F: FnOnce(StopToken) -> Fut,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let token = StopToken(self.stop.subscribe());
        let exited = self.exited_tx.clone();
        let fut = service(token);
        let span = tracing::info_span!("service", name);
        let handle = tokio::spawn(
            async move {
                let result = fut.await;
                let _ = exited.send(name);
                result
            }
            .instrument(span),
        );
        self.tasks.push((name, handle));
    }

    /// Resolves when any service exits on its own (which, before a stop, is a failure).
    pub(crate) async fn any_exited(&mut self) -> &'static str {
        match self.exited_rx.recv().await {
            Some(name) => name,
            // We hold a sender ourselves, so this never happens; wait forever.
            None => std::future::pending().await,
        }
    }

    /// Signals every service to stop and waits for them, newest first.
    pub(crate) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        for (name, handle) in self.tasks.into_iter().rev() {
            let abort = handle.abort_handle();
            match tokio::time::timeout(STOP_GRACE, handle).await {
                Ok(Ok(Ok(()))) => info!(service = name, "stopped"),
                Ok(Ok(Err(e))) => {
                    warn!(service = name, error = %format!("{e:#}"), "stopped with an error");
                    first_error.get_or_insert(e.context(format!("service {name}")));
                }
                Ok(Err(join)) => {
                    warn!(service = name, error = %join, "task panicked or was cancelled");
                    first_error.get_or_insert(anyhow::anyhow!("service {name}: {join}"));
                }
                Err(_) => {
                    warn!(service = name, grace = ?STOP_GRACE, "did not stop in time; aborted");
                    abort.abort();
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
