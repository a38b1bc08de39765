//! Batch intents: signed here, published by the batch's submitter (a DEX),
//! with their signing sessions authorised against the wallet's VTXOs.

use ark_relay_core::{EventId, PubKey};
use ark_relay_protocol::content::IntentContent;
use ark_relay_protocol::request::ServiceRequest;
use nostr::Event;

use super::history::{HistoryEntry, Outcome};
use super::{now, Wallet, WalletError};
use crate::verify::{AssetBook, AuthorisedIntent};

impl Wallet {
    /// Signs a batch intent (`atomic_swap`, `add_liquidity`,
    /// `remove_liquidity`; see [`IntentContent::batch_leg`]) **without
    /// publishing it**, authorises its signing session against the wallet's
    /// current VTXOs, and returns the signed 31510 to hand to the batch's
    /// submitter (a DEX). The relay's challenges for it are then answered
    /// only if the batch transaction pays exactly this intent's legs.
    pub async fn sign_batch_intent(&self, content: &IntentContent) -> Result<Event, WalletError> {
        self.sign_batch_with(content, AuthorisedIntent::from_batch_intent)
            .await
    }

    /// A DEX's [`Self::sign_batch_intent`] for the counter-intent that
    /// issues the position token of the user's signed `open_perp`: its
    /// challenges are answered only if the token goes to her at exactly the
    /// position script the terms imply (with the DEX's conditional leaf).
    pub async fn sign_position_counter(
        &self,
        content: &IntentContent,
        open_perp: &Event,
    ) -> Result<Event, WalletError> {
        let position = crate::verify::perps::PositionIssue::of_event(open_perp, &self.inner.me)
            .map_err(WalletError::Invalid)?;
        self.sign_batch_with(content, move |id, c, me, book| {
            let mut a = AuthorisedIntent::from_batch_intent(id, c, me, book)?;
            a.position = Some(position);
            Ok(a)
        })
        .await
    }

    async fn sign_batch_with(
        &self,
        content: &IntentContent,
        authorise: impl FnOnce(EventId, &IntentContent, &PubKey, &AssetBook) -> Result<AuthorisedIntent, String>
            + Send,
    ) -> Result<Event, WalletError> {
        let (ev, intent_id) = self.sign_and_authorise(content, authorise).await?;
        let mut st = self.lock();
        let first = content.outputs.first();
        st.history.push(HistoryEntry {
            direction: "sent".into(),
            id: intent_id.to_string(),
            counterparty: first.map(|o| o.recipient.clone()),
            asset: first.map(|o| o.asset.to_string()).unwrap_or_default(),
            amount: first
                .and_then(|o| o.amount.positive("amount").ok())
                .unwrap_or(0),
            fee: 0,
            at: now(),
            outcome: Outcome::Pending,
            challenges: vec![],
        });
        self.save_history(&st);
        Ok(ev)
    }

    /// Submits signed intents as one atomic batch (`submit_batch`) and
    /// returns the relay's 31501 result (`status: "signing"`, the sessions);
    /// a refusal (3001, 1005, 2001, …) is [`WalletError::Refused`].
    pub async fn submit_batch(
        &self,
        batch_id: &str,
        intents: Vec<Event>,
    ) -> Result<serde_json::Value, WalletError> {
        self.request(&ServiceRequest::SubmitBatch {
            batch_id: batch_id.to_owned(),
            intents,
        })
        .await
    }
}
