//! The one recovery path: a scheduler task that ticks every due session.
//! A running ceremony gets [`Input::Tick`] (a step past its deadline ends it;
//! an arkd call or commit past its retry time is re-issued, probing arkd
//! with `GetPendingTx` before any second `SubmitTx`); a session whose
//! ceremony never started ends with 5001, its locks released in the same
//! transaction; a batch party follows its coordinator.

use std::collections::HashSet;

use ark_relay_ceremony::Input;
use ark_relay_core::{ErrorCode, SessionRecord, SessionStatus};
use ark_relay_protocol::request::ServiceResponse;
use ark_relay_protocol::Rejection;
use async_trait::async_trait;

use super::batch::coordinator_id;
use super::data::SessionData;
use super::{transient, Ceremony};
use crate::handlers::HandlerError;

impl Ceremony {
    /// Ticks every session whose step deadline, retry time or expiry passed;
    /// returns how many ended.
    pub async fn expire_due(&self) -> Result<usize, HandlerError> {
        let store = &self.runner.store;
        let now = self.runner.clock.now();
        let due = store.due_sessions(now, 500).await.map_err(transient)?;
        let mut seen = HashSet::new();
        let mut ended = 0;
        for s in due {
            let cid = coordinator_id(&s).unwrap_or(s.id);
            if !seen.insert(cid) {
                continue;
            }
            let row = if cid == s.id {
                Some(s.clone())
            } else {
                store.session(&cid).await.map_err(transient)?
            };
            let Some(row) = row else {
                self.follow(s, None).await?;
                continue;
            };
            let result = match SessionData::parse(&row)? {
                SessionData::Running(_) => self
                    .runner
                    .drive(&cid, Input::Tick)
                    .await
                    .map(|c| c.is_some_and(|c| c.phase.is_terminal())),
                SessionData::Received if !row.status.is_final() => {
                    let r = Rejection::new(
                        ErrorCode::SessionExpired,
                        "the signing session expired before the wallet answered",
                    );
                    let notice = self.runner.notice(&row.user, &row.intent, &r, false)?;
                    crate::metrics::intent_outcome("p2p_transfer", Some(r.code));
                    self.runner
                        .end_unstarted(&row, &r, std::slice::from_ref(&notice), true)
                        .await
                }
                SessionData::Batch(b) if !row.status.is_final() => {
                    self.expire_unstarted_batch(row, b).await
                }
                _ => {
                    if s.id != cid {
                        self.follow(s, Some(row)).await?;
                    }
                    Ok(false)
                }
            };
            match result {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(session = %cid, error = %e, "session recovery failed; will retry")
                }
            }
        }
        Ok(ended)
    }

    /// A batch whose ceremony has not started: waiting for its own
    /// (redelivered) submit job until the session's expiry, then ended.
    async fn expire_unstarted_batch(
        &self,
        mut row: SessionRecord,
        b: super::data::BatchRequest,
    ) -> Result<bool, HandlerError> {
        let now = self.runner.clock.now();
        if row.expires_at > now {
            row.step_deadline = Some(now.plus_secs(self.config.step_timeout_secs));
            self.runner
                .store
                .update_session(&row, &[], now)
                .await
                .map_err(transient)?;
            return Ok(false);
        }
        let r = Rejection::new(
            ErrorCode::SessionExpired,
            "the batch expired before its signing sessions started",
        );
        crate::metrics::intent_outcome("batch", Some(r.code));
        let out = self.batch_response(&b, &ServiceResponse::err(b.request_id(), &r))?;
        self.runner
            .end_unstarted(&row, &r, std::slice::from_ref(&out), true)
            .await
    }

    /// A party session whose coordinator ended (or never listed it, e.g. a
    /// replay refused the batch) follows it.
    async fn follow(
        &self,
        mut party: SessionRecord,
        coordinator: Option<SessionRecord>,
    ) -> Result<(), HandlerError> {
        match &coordinator {
            Some(c) if !c.status.is_final() => return Ok(()),
            Some(c) => {
                party.status = c.status;
                party.state = c.state.clone();
                party.error_code = c.error_code;
                party.error_message = c.error_message.clone();
            }
            None => {
                party.status = SessionStatus::Failed;
                party.state = "failed".into();
            }
        }
        party.current_step = None;
        party.step_deadline = None;
        self.runner
            .store
            .update_session(&party, &[], self.runner.clock.now())
            .await
            .map_err(transient)?;
        Ok(())
    }
}

/// Session recovery as a scheduler task (every second).
#[async_trait]
impl crate::Periodic for Ceremony {
    fn name(&self) -> &'static str {
        "session-expiry"
    }

    fn every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    async fn tick(&self) {
        match self.expire_due().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "signing sessions ended by the recovery scan"),
            Err(e) => tracing::warn!(error = %e, "session recovery scan failed"),
        }
    }
}
