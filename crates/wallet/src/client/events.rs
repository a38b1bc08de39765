//! What the wallet does with the relay's events: confirmations, failure
//! notices, service responses, and challenges (answered only after
//! contextual verification).

use super::*;

impl Wallet {
    pub(super) async fn on_event(&self, ev: Event) {
        if ev.pubkey.to_bytes() != self.inner.relay.x_only().serialize() {
            return;
        }
        {
            let mut st = self.lock();
            if !st.seen.insert(ev.id) {
                return;
            }
        }
        if ev.verify().is_err() {
            tracing::warn!(id = %ev.id, "ignoring an event with a bad signature");
            return;
        }
        let kind = ev.kind.as_u16();
        if kind == kinds::CONFIRMATION {
            self.on_confirmation(&ev);
            self.bump();
            return;
        }
        let plain = match decrypt(
            self.inner.keys.secret_key(),
            &ev.pubkey,
            &ev.content,
            &ev.tags,
        ) {
            Ok((p, scheme)) => (p, scheme),
            Err(r) => {
                tracing::warn!(id = %ev.id, error = %r.message, "cannot decrypt");
                return;
            }
        };
        match kind {
            kinds::SIGNING_CHALLENGE => self.on_challenge(&ev, &plain.0, plain.1).await,
            kinds::SERVICE_RESPONSE => {
                if let (Some(e), Ok(r)) = (
                    first_e_tag(&ev),
                    serde_json::from_str::<ServiceResponse>(&plain.0),
                ) {
                    self.lock().responses.insert(e, r);
                }
            }
            kinds::FAILURE => {
                if let (Some(e), Ok(n)) = (
                    first_e_tag(&ev),
                    serde_json::from_str::<FailureNotice>(&plain.0),
                ) {
                    let mut st = self.lock();
                    // 7001 (read-only mode) keeps the intent: it runs
                    // when the back end returns, so keep its session open.
                    if is_final(&n) {
                        set_outcome(
                            &mut st,
                            &e,
                            Outcome::Failed {
                                code: n.code.code(),
                                message: n.message.clone(),
                            },
                        );
                        if let Some(s) = st.signer.as_mut() {
                            s.end(&SessionId::from(e));
                        }
                    }
                    st.failures.insert(e, n);
                    self.save_history(&st);
                }
            }
            _ => {}
        }
        self.bump();
    }

    fn on_confirmation(&self, ev: &Event) {
        let Ok(c) = serde_json::from_str::<Confirmation>(&ev.content) else {
            return;
        };
        let mut st = self.lock();
        let mut mine = false;
        for id in &c.intents {
            if st.history.iter().any(|h| h.id == id.to_string()) {
                mine = true;
            }
            set_outcome(
                &mut st,
                id,
                Outcome::Completed {
                    ark_txid: c.ark_txid.clone(),
                },
            );
            st.confirmations.insert(*id, c.clone());
        }
        let me = self.inner.me;
        let received: Vec<_> = c.created.iter().filter(|v| v.owner == me).collect();
        if !mine && !received.is_empty() && !st.history.iter().any(|h| h.id == c.ark_txid) {
            let first = received[0];
            st.history.push(HistoryEntry {
                direction: "received".into(),
                id: c.ark_txid.clone(),
                counterparty: c.spent.first().map(|s| s.owner.to_string()),
                asset: first
                    .asset
                    .as_ref()
                    .map_or_else(|| "sats".to_owned(), ToString::to_string),
                amount: received.iter().map(|v| v.amount).sum(),
                fee: 0,
                at: i64::try_from(ev.created_at.as_secs()).unwrap_or(0),
                outcome: Outcome::Completed {
                    ark_txid: c.ark_txid.clone(),
                },
                challenges: vec![],
            });
        }
        self.save_history(&st);
    }

    async fn on_challenge(&self, ev: &Event, plain: &str, scheme: Scheme) {
        if ark_relay_protocol::renewal::is_renewal(plain) {
            return self.on_renewal(ev, plain, scheme).await;
        }
        let ch: SigningChallenge = match serde_json::from_str(plain) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(id = %ev.id, error = %e, "malformed challenge");
                return;
            }
        };
        let created = i64::try_from(ev.created_at.as_secs()).unwrap_or(0);
        // Step 1: look my inputs up at the Ark server's indexer first.
        let vtxos = if ch.step == 1 {
            let st = self.lock();
            st.signer
                .as_ref()
                .map(|s| s.session_vtxos(&ch.session_id))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let view = self.indexer_view(&vtxos).await;
        let answer = {
            let mut st = self.lock();
            let Some(signer) = st.signer.as_mut() else {
                // This process publishes intents only after it knows the
                // server's parameters (that is when its signer exists), so a
                // challenge arriving earlier is not for one of its intents:
                // history replayed by the Nostr relay, or a session of another
                // process using the same key (a bot while `ark-wallet pubkey`
                // runs). Normal; nothing to answer.
                tracing::debug!(id = %ev.id, replayed = created < self.inner.started_at, "challenge for another process or run; ignored");
                return;
            };
            if !signer.knows(&ch.session_id) && created < self.inner.started_at {
                return; // an old challenge of another process or run
            }
            let answer = signer.answer_with(&ch, now(), view.as_ref());
            let note = match &answer {
                Answer::Signed(_) => format!("step {} signed", ch.step),
                Answer::Refused(_, why) => format!("step {} refused: {why}", ch.step),
                Answer::Silent => format!("step {} not answered", ch.step),
            };
            let sid = ch.session_id.to_string();
            if let Some(h) = st.history.iter_mut().find(|h| h.id == sid) {
                h.challenges.push(note);
            }
            answer
        };
        if let Some(why) = answer.refusal() {
            tracing::warn!(session = %ch.session_id, step = ch.step, reason = %why, "refusing a challenge");
        }
        let Some(resp) = answer.response() else {
            return;
        };
        let intent =
            first_e_tag(ev).unwrap_or_else(|| EventId::from_bytes(*ch.session_id.as_bytes()));
        match builders::signing_response(&self.inner.keys, &self.inner.relay, &intent, resp, scheme)
        {
            Ok(out) => {
                if let Err(e) = self.publish(&out).await {
                    tracing::warn!(error = %e, "cannot publish a signing response");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot build a signing response"),
        }
    }
}
