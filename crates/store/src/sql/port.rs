//! The [`ark_relay_core::RelayStore`] implementation: thin delegation to the
//! operations in `ledger` and `records`.

use ark_relay_core::StoreError;

use super::SqlStore;

#[async_trait::async_trait]
impl ark_relay_core::RelayStore for SqlStore {
    fn backend_name(&self) -> &'static str {
        self.backend.as_str()
    }

    async fn register_asset(
        &self,
        asset: &ark_relay_core::NewAsset,
        now: ark_relay_core::UnixTime,
    ) -> Result<ark_relay_core::Recorded, StoreError> {
        self.do_register_asset(asset, now).await
    }

    async fn asset(
        &self,
        id: &ark_relay_core::AssetId,
    ) -> Result<Option<ark_relay_core::Asset>, StoreError> {
        self.do_asset(id).await
    }

    async fn assets(&self) -> Result<Vec<ark_relay_core::Asset>, StoreError> {
        self.do_assets().await
    }

    async fn insert_vtxos(
        &self,
        vtxos: &[ark_relay_core::NewVtxo],
        now: ark_relay_core::UnixTime,
    ) -> Result<(), StoreError> {
        self.do_insert_vtxos(vtxos, now).await
    }

    async fn vtxo(
        &self,
        id: &ark_relay_core::VtxoId,
    ) -> Result<Option<ark_relay_core::Vtxo>, StoreError> {
        self.do_vtxo(id).await
    }

    async fn unspent_vtxos(
        &self,
        owner: &ark_relay_core::PubKey,
    ) -> Result<Vec<ark_relay_core::Vtxo>, StoreError> {
        self.do_unspent_vtxos(owner).await
    }

    async fn count_vtxos(
        &self,
        owner: &ark_relay_core::PubKey,
        status: ark_relay_core::VtxoStatus,
    ) -> Result<u64, StoreError> {
        self.do_count_vtxos(owner, status).await
    }

    async fn free_inventory(
        &self,
        owner: &ark_relay_core::PubKey,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<ark_relay_core::Vtxo>, StoreError> {
        self.do_free_inventory(owner, skip, limit).await
    }

    async fn balances(
        &self,
        owner: &ark_relay_core::PubKey,
    ) -> Result<ark_relay_core::Balances, StoreError> {
        self.do_balances(owner).await
    }

    async fn lock_vtxos(
        &self,
        ids: &[ark_relay_core::VtxoId],
        session: &ark_relay_core::SessionId,
        now: ark_relay_core::UnixTime,
    ) -> Result<(), StoreError> {
        self.do_lock_vtxos(ids, session, now).await
    }

    async fn release_locks(&self, session: &ark_relay_core::SessionId) -> Result<u64, StoreError> {
        self.do_release_locks(session).await
    }

    async fn commit_transaction(
        &self,
        tx: &ark_relay_core::L2Transaction,
    ) -> Result<ark_relay_core::CommitOutcome, StoreError> {
        self.do_commit_transaction(tx).await
    }

    async fn record_event(
        &self,
        event: &ark_relay_core::ProcessedEvent,
    ) -> Result<ark_relay_core::Recorded, StoreError> {
        self.do_record_event(event).await
    }

    async fn record_events(
        &self,
        events: &[ark_relay_core::ProcessedEvent],
    ) -> Result<Vec<ark_relay_core::Recorded>, StoreError> {
        self.do_record_events(events).await
    }

    async fn processed_event(
        &self,
        id: &ark_relay_core::EventId,
    ) -> Result<Option<ark_relay_core::ProcessedEvent>, StoreError> {
        self.do_processed_event(id).await
    }

    async fn record_intent(
        &self,
        intent: &ark_relay_core::IntentRecord,
    ) -> Result<ark_relay_core::Recorded, StoreError> {
        self.do_record_intent(intent).await
    }

    async fn intent_by_action(
        &self,
        author: &ark_relay_core::PubKey,
        action_id: &ark_relay_core::ActionId,
    ) -> Result<Option<ark_relay_core::IntentRecord>, StoreError> {
        self.do_intent_by_action(author, action_id).await
    }

    async fn accept_event(
        &self,
        event: &ark_relay_core::ProcessedEvent,
        intent: Option<&ark_relay_core::IntentRecord>,
        job: &ark_relay_core::Job,
        now: ark_relay_core::UnixTime,
    ) -> Result<ark_relay_core::Recorded, StoreError> {
        self.do_accept_event(event, intent, job, now).await
    }

    async fn reject_event(
        &self,
        event: &ark_relay_core::ProcessedEvent,
        notice: &ark_relay_core::NewOutboxEvent,
        now: ark_relay_core::UnixTime,
    ) -> Result<ark_relay_core::Recorded, StoreError> {
        self.do_reject_event(event, notice, now).await
    }

    async fn last_processed_at(&self) -> Result<Option<ark_relay_core::UnixTime>, StoreError> {
        self.do_last_processed_at().await
    }

    async fn job(&self, key: &str) -> Result<Option<ark_relay_core::JobRecord>, StoreError> {
        self.do_job(key).await
    }

    async fn pending_jobs(
        &self,
        created_before: ark_relay_core::UnixTime,
        limit: u32,
    ) -> Result<Vec<ark_relay_core::Job>, StoreError> {
        self.do_pending_jobs(created_before, limit).await
    }

    async fn finish_job(
        &self,
        key: &str,
        status: ark_relay_core::JobStatus,
        outbox: &[ark_relay_core::NewOutboxEvent],
        error: Option<&str>,
        now: ark_relay_core::UnixTime,
    ) -> Result<bool, StoreError> {
        self.do_finish_job(key, status, outbox, error, now).await
    }

    async fn push_outbox(
        &self,
        events: &[ark_relay_core::NewOutboxEvent],
        now: ark_relay_core::UnixTime,
    ) -> Result<(), StoreError> {
        self.do_push_outbox(events, now).await
    }

    async fn due_outbox(
        &self,
        now: ark_relay_core::UnixTime,
        limit: u32,
    ) -> Result<Vec<ark_relay_core::OutboxItem>, StoreError> {
        self.do_due_outbox(now, limit).await
    }

    async fn mark_outbox_delivered(
        &self,
        id: i64,
        now: ark_relay_core::UnixTime,
    ) -> Result<(), StoreError> {
        self.do_mark_outbox_delivered(id, now).await
    }

    async fn mark_outbox_delivered_many(
        &self,
        ids: &[i64],
        now: ark_relay_core::UnixTime,
    ) -> Result<(), StoreError> {
        self.do_mark_outbox_delivered_many(ids, now).await
    }

    async fn mark_outbox_retry(
        &self,
        id: i64,
        next_attempt_at: ark_relay_core::UnixTime,
        error: &str,
    ) -> Result<(), StoreError> {
        self.do_mark_outbox_retry(id, next_attempt_at, error).await
    }

    async fn create_session(
        &self,
        session: &ark_relay_core::SessionRecord,
    ) -> Result<ark_relay_core::Recorded, StoreError> {
        self.do_create_session(session).await
    }

    async fn session(
        &self,
        id: &ark_relay_core::SessionId,
    ) -> Result<Option<ark_relay_core::SessionRecord>, StoreError> {
        self.do_session(id).await
    }

    async fn update_session(
        &self,
        session: &ark_relay_core::SessionRecord,
        outbox: &[ark_relay_core::NewOutboxEvent],
        now: ark_relay_core::UnixTime,
    ) -> Result<bool, StoreError> {
        self.do_update_session(session, outbox, now).await
    }

    async fn intent_status(
        &self,
        id: &ark_relay_core::EventId,
    ) -> Result<Option<ark_relay_core::SessionStatus>, StoreError> {
        self.do_intent_status(id).await
    }

    async fn write_session(
        &self,
        w: &ark_relay_core::SessionWrite<'_>,
        now: ark_relay_core::UnixTime,
    ) -> Result<bool, StoreError> {
        self.do_write_session(w, now).await
    }

    async fn due_sessions(
        &self,
        now: ark_relay_core::UnixTime,
        limit: u32,
    ) -> Result<Vec<ark_relay_core::SessionRecord>, StoreError> {
        self.do_due_sessions(now, limit).await
    }
}
