//! The `sign_renewal` challenges still waiting for an owner's answer, sent
//! again on its contact (`sync_state`).

use ark_relay_core::renewals::{DelegationStatus, DynRenewalStore};
use ark_relay_core::{EventId, NewOutboxEvent, PubKey, StoreError, UnixTime};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::renewal::RenewalChallenge;
use ark_relay_protocol::{builders, kinds};
use bitcoin::hashes::{sha256, Hash};
use nostr::{JsonUtil, Keys};

/// The `sign_renewal` challenges still waiting for `owner`'s answer, sent
/// again on its contact (a `sync_state`): a wallet that was away does not see
/// 31511s older than its subscription, and a recovery is answered "on the
/// owner's next contact". Each is re-encrypted with a fresh `expires_at`
/// (`ttl_secs`); the PSBTs are the stored ones, so any copy's signatures
/// complete the same delegation. `contact` keys the outbox row.
pub async fn waiting_challenges(
    store: &DynRenewalStore,
    keys: &Keys,
    owner: &PubKey,
    contact: &EventId,
    scheme: Scheme,
    now: UnixTime,
    ttl_secs: i64,
) -> Result<Vec<NewOutboxEvent>, StoreError> {
    let rows = store.delegations_of_owner(&owner.to_string(), 100).await?;
    let mut out = Vec::new();
    for d in rows.iter().filter(|d| d.status == DelegationStatus::Asked) {
        let Ok(mut ch) = serde_json::from_str::<RenewalChallenge>(&d.challenge) else {
            continue;
        };
        ch.expires_at = now.0 + ttl_secs;
        let Ok(event) = builders::renewal_challenge(keys, owner, &ch, scheme) else {
            continue;
        };
        out.push(NewOutboxEvent {
            // Hashed: renewal id + contact id exceed the 128-char column.
            dedupe_key: format!(
                "31511:{}",
                sha256::Hash::hash(format!("{}:{contact}", ch.renewal_id).as_bytes())
            ),
            kind: kinds::SIGNING_CHALLENGE,
            recipient: Some(*owner),
            event_json: event.as_json(),
        });
    }
    Ok(out)
}
