//! Lightning ramps from the wallet's side (PRD §5.3–§5.4): `lift` asks the
//! relay for a hold invoice and waits for the VTXO once someone pays it;
//! `land` pays a BOLT11 invoice out of the wallet's gBTC with a
//! `land_lightning` intent (the 0.1 % fee as an explicit output) and returns
//! the 31340 carrying the payment preimage, the proof of payment.

use std::time::Duration;

use ark_relay_core::EventId;
use ark_relay_protocol::content::{AssetRef, Confirmation, IntentContent, WireAmount};
use ark_relay_protocol::request::ServiceRequest;

use crate::{Wallet, WalletError};

/// A lift waiting to be paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiftTicket {
    /// The `lift_lightning` request (the 31340 lists it once paid).
    pub request: EventId,
    /// The hold invoice to pay.
    pub invoice: String,
    /// Its payment hash (hex).
    pub payment_hash: String,
    /// When the invoice stops being payable (unix seconds).
    pub expires_at: i64,
    /// gBTC units the VTXO will carry (1:1 with the sats paid; lifts are free).
    pub amount: u64,
}

impl Wallet {
    /// Asks for a hold invoice that lifts `amount` sats into a gBTC VTXO.
    pub async fn lift(&self, amount: u64) -> Result<LiftTicket, WalletError> {
        self.params().await?;
        let (request, result) = self
            .request_with_id(&ServiceRequest::LiftLightning {
                asset_id: AssetRef::gbtc(),
                amount: WireAmount::new(amount),
                proof: None,
            })
            .await?;
        let text = |k: &str| {
            result
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| WalletError::Protocol(format!("lift answer without {k}")))
        };
        Ok(LiftTicket {
            request,
            invoice: text("invoice")?,
            payment_hash: text("payment_hash")?,
            expires_at: result
                .get("expires_at")
                .and_then(|v| v.as_i64())
                .unwrap_or_default(),
            amount,
        })
    }

    /// Waits until the lift's invoice is paid and its VTXO issued (the 31340),
    /// or the lift fails (its 31341, e.g. 6002 when the invoice expired).
    pub async fn lift_outcome(
        &self,
        ticket: &LiftTicket,
        timeout: Duration,
    ) -> Result<Confirmation, WalletError> {
        self.outcome(ticket.request, timeout).await
    }

    /// Pays `invoice` out of the wallet's gBTC: the invoice amount plus the
    /// relay's 0.1 % fee (rounded up). Returns the 31340, whose `preimage`
    /// proves the payment; a failed payment is refunded and reported as
    /// [`WalletError::Refused`] with 6003.
    pub async fn land(
        &self,
        invoice: &str,
        timeout: Duration,
    ) -> Result<Confirmation, WalletError> {
        let params = self.params().await?;
        let facts = ark_relay_protocol::invoice::invoice_facts(invoice)
            .map_err(|r| WalletError::Invalid(r.message))?;
        if facts.amount_msat == 0 || facts.amount_msat % 1_000 != 0 {
            return Err(WalletError::Invalid(
                "the invoice must ask a whole number of sats".into(),
            ));
        }
        let amount = facts.amount_msat / 1_000;
        let ppm = params
            .info
            .get("land_fee_ppm")
            .and_then(|v| v.as_u64())
            .unwrap_or(1_000);
        let fee = ark_relay_protocol::intent::land_fee(amount, ppm)
            .ok_or_else(|| WalletError::Invalid("fee overflows".into()))?;
        let relay = self.relay();
        let mut content = IntentContent::transfer(
            uuid::Uuid::new_v4().simple().to_string(),
            &relay,
            AssetRef::gbtc(),
            amount,
            &relay,
            fee,
            self.intent_expiry(),
        );
        content.intent_type = "land_lightning".into();
        content.memo = Some(invoice.trim().to_owned());
        let id = self.publish_intent(&content).await?;
        self.outcome(id, timeout).await
    }
}
