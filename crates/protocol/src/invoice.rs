//! BOLT11 checks for `land_lightning` (PRD §5.4): the invoice in `memo` must
//! parse with a valid signature (6001), be for the relay's network (6001),
//! carry exactly the landed amount (6004), and stay valid long enough for the
//! relay to pay it (6002). Parsing and signature checking are
//! `lightning-invoice`'s.

use std::str::FromStr;

use ark_relay_core::{ErrorCode, UnixTime};
use bitcoin::hashes::Hash;
use bitcoin::Network;
use lightning_invoice::Bolt11Invoice;

use crate::Rejection;

/// An invoice that passed [`check_land_invoice`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedInvoice {
    /// The payment hash (the land's idempotency key).
    pub payment_hash: [u8; 32],
    /// The amount, in millisatoshis.
    pub amount_msat: u64,
    /// When it expires (unix seconds).
    pub expires_at: UnixTime,
}

/// Seconds an invoice must still be valid when the land is accepted.
pub const MIN_LAND_EXPIRY_SECS: i64 = 60;

/// Checks the BOLT11 `invoice` of a land of `landed_sats` on `network` at `now`.
pub fn check_land_invoice(
    invoice: &str,
    network: Network,
    landed_sats: u64,
    now: UnixTime,
) -> Result<CheckedInvoice, Rejection> {
    let inv = Bolt11Invoice::from_str(invoice.trim()).map_err(|e| {
        Rejection::new(
            ErrorCode::InvalidInvoice,
            format!("not a valid BOLT11 invoice: {e}"),
        )
    })?;
    if inv.network() != network {
        return Err(Rejection::new(
            ErrorCode::InvalidInvoice,
            format!(
                "the invoice is for {}, the relay pays on {network}",
                inv.network()
            ),
        ));
    }
    let amount_msat = inv.amount_milli_satoshis().ok_or_else(|| {
        Rejection::new(
            ErrorCode::InvoiceAmountMismatch,
            "the invoice has no amount",
        )
    })?;
    let expected = landed_sats
        .checked_mul(1_000)
        .ok_or_else(|| Rejection::new(ErrorCode::InvalidAmount, "landed amount overflows"))?;
    if amount_msat != expected {
        return Err(Rejection::new(
            ErrorCode::InvoiceAmountMismatch,
            format!("the invoice asks {amount_msat} msat, the intent lands {expected} msat"),
        ));
    }
    let expires = inv
        .expires_at()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(i64::MAX);
    if expires.saturating_sub(now.0) < MIN_LAND_EXPIRY_SECS {
        return Err(Rejection::new(
            ErrorCode::InvoiceExpired,
            format!("the invoice expires in less than {MIN_LAND_EXPIRY_SECS} s"),
        ));
    }
    Ok(CheckedInvoice {
        payment_hash: inv.payment_hash().to_byte_array(),
        amount_msat,
        expires_at: UnixTime(expires),
    })
}

/// The facts of a BOLT11 invoice with a valid signature, without the land
/// checks (network, amount, expiry margin) of [`check_land_invoice`].
pub fn invoice_facts(invoice: &str) -> Result<CheckedInvoice, Rejection> {
    let inv = Bolt11Invoice::from_str(invoice.trim()).map_err(|e| {
        Rejection::new(
            ErrorCode::InvalidInvoice,
            format!("not a valid BOLT11 invoice: {e}"),
        )
    })?;
    Ok(CheckedInvoice {
        payment_hash: inv.payment_hash().to_byte_array(),
        amount_msat: inv.amount_milli_satoshis().unwrap_or(0),
        expires_at: UnixTime(
            inv.expires_at()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
                .unwrap_or(i64::MAX),
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bitcoin::hashes::{sha256, Hash};
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};

    use super::*;

    fn invoice(currency: Currency, msat: Option<u64>, created: u64, expiry: u64) -> String {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[0x41; 32]).expect("key");
        let b = InvoiceBuilder::new(currency)
            .description("land".into())
            .payment_hash(sha256::Hash::hash(b"preimage"))
            .payment_secret(PaymentSecret([7; 32]))
            .duration_since_epoch(Duration::from_secs(created))
            .min_final_cltv_expiry_delta(18)
            .expiry_time(Duration::from_secs(expiry));
        let signed = match msat {
            Some(m) => b
                .amount_milli_satoshis(m)
                .build_signed(|h| secp.sign_ecdsa_recoverable(h, &key)),
            None => b.build_signed(|h| secp.sign_ecdsa_recoverable(h, &key)),
        };
        signed.expect("invoice").to_string()
    }

    const NOW: i64 = 1_764_000_000;

    fn code(r: Result<CheckedInvoice, Rejection>) -> Option<ErrorCode> {
        r.err().map(|r| r.code)
    }

    #[test]
    fn a_good_regtest_invoice_passes() {
        let inv = invoice(Currency::Regtest, Some(5_000_000), NOW as u64, 3_600);
        let ok = check_land_invoice(&inv, Network::Regtest, 5_000, UnixTime(NOW)).expect("valid");
        assert_eq!(ok.amount_msat, 5_000_000);
        assert_eq!(
            ok.payment_hash,
            sha256::Hash::hash(b"preimage").to_byte_array()
        );
        assert_eq!(ok.expires_at, UnixTime(NOW + 3_600));
    }

    #[test]
    fn each_rule_has_its_code() {
        let good = invoice(Currency::Regtest, Some(5_000_000), NOW as u64, 3_600);
        let now = UnixTime(NOW);
        assert_eq!(
            code(check_land_invoice(
                "lnbcrt1garbage",
                Network::Regtest,
                5_000,
                now
            )),
            Some(ErrorCode::InvalidInvoice)
        );
        let mut tampered = good.clone();
        tampered.truncate(good.len() - 8);
        tampered.push_str("qqqqqqqq");
        assert_eq!(
            code(check_land_invoice(&tampered, Network::Regtest, 5_000, now)),
            Some(ErrorCode::InvalidInvoice)
        );
        let mainnet = invoice(Currency::Bitcoin, Some(5_000_000), NOW as u64, 3_600);
        assert_eq!(
            code(check_land_invoice(&mainnet, Network::Regtest, 5_000, now)),
            Some(ErrorCode::InvalidInvoice)
        );
        let no_amount = invoice(Currency::Regtest, None, NOW as u64, 3_600);
        assert_eq!(
            code(check_land_invoice(&no_amount, Network::Regtest, 5_000, now)),
            Some(ErrorCode::InvoiceAmountMismatch)
        );
        assert_eq!(
            code(check_land_invoice(&good, Network::Regtest, 4_999, now)),
            Some(ErrorCode::InvoiceAmountMismatch)
        );
        let soon = invoice(Currency::Regtest, Some(5_000_000), NOW as u64, 59);
        assert_eq!(
            code(check_land_invoice(&soon, Network::Regtest, 5_000, now)),
            Some(ErrorCode::InvoiceExpired)
        );
        let old = invoice(
            Currency::Regtest,
            Some(5_000_000),
            (NOW - 7_200) as u64,
            3_600,
        );
        assert_eq!(
            code(check_land_invoice(&old, Network::Regtest, 5_000, now)),
            Some(ErrorCode::InvoiceExpired)
        );
    }
}
