//! Test harness that runs Arkade's own wallet library, `ark-client` 0.12,
//! against the arkd simulator: what `ark-client` needs besides arkd — a
//! [`Blockchain`] (an esplora in production) answered from the simulator's
//! chain in process, and a minimal [`OnchainWallet`] (the tests fund
//! boarding addresses from the chain's faucet, so no on-chain coin selection
//! or signing is needed; `ark-bdk-wallet` would pull BDK and an esplora client
//! for nothing).
//!
//! Test infrastructure only: nothing here is used by the relay.

use std::sync::Arc;
use std::time::Duration;

use ark_client::wallet::{Balance, OnchainWallet};
use ark_client::{
    Blockchain, Client, Error, InMemorySwapStorage, OfflineClient, OfflineClientConfig,
    SpendStatus, TxStatus,
};
use ark_core::{ExplorerUtxo, UtxoCoinSelection};
use ark_relay_sim::Chain;
use bitcoin::key::Keypair;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, Amount, FeeRate, Network, Psbt, Transaction, Txid};

/// An esplora over the simulator's chain.
#[derive(Clone, Debug)]
pub struct SimChain(pub Chain);

impl Blockchain for SimChain {
    async fn find_outpoints(&self, address: &Address) -> Result<Vec<ExplorerUtxo>, Error> {
        let height = self.0.height();
        Ok(self
            .0
            .outputs_of(&address.script_pubkey())
            .into_iter()
            .map(|u| ExplorerUtxo {
                outpoint: u.outpoint,
                amount: u.txout.value,
                confirmation_blocktime: u.confirmed_time.and_then(|t| u64::try_from(t).ok()),
                confirmations: u
                    .confirmed_height
                    .map_or(0, |h| u64::from(height.saturating_sub(h)) + 1),
                is_spent: u.spent_by.is_some(),
            })
            .collect())
    }

    async fn find_tx(&self, txid: &Txid) -> Result<Option<Transaction>, Error> {
        Ok(self.0.tx(txid))
    }

    async fn get_tx_status(&self, txid: &Txid) -> Result<TxStatus, Error> {
        Ok(TxStatus {
            confirmed_at: self.0.confirmed_at(txid).and_then(|h| self.0.block_time(h)),
        })
    }

    async fn get_output_status(&self, txid: &Txid, vout: u32) -> Result<SpendStatus, Error> {
        Ok(SpendStatus {
            spend_txid: self.0.spender(&bitcoin::OutPoint { txid: *txid, vout }),
        })
    }

    async fn broadcast(&self, tx: &Transaction) -> Result<(), Error> {
        self.0
            .broadcast(tx.clone())
            .map(|_| ())
            .map_err(|e| Error::wallet(e.to_string()))
    }

    async fn get_fee_rate(&self) -> Result<f64, Error> {
        Ok(self.0.fee_rate() as f64)
    }

    async fn broadcast_package(&self, txs: &[&Transaction]) -> Result<(), Error> {
        for tx in txs {
            self.broadcast(tx).await?;
        }
        Ok(())
    }
}

/// An on-chain wallet that only has an address: the tests never spend on chain.
pub struct NoOnchainWallet {
    address: Address,
}

impl NoOnchainWallet {
    /// A wallet whose address is the key-path P2TR of `kp`.
    pub fn new(kp: &Keypair) -> Self {
        let secp = Secp256k1::verification_only();
        Self {
            address: Address::p2tr(&secp, kp.x_only_public_key().0, None, Network::Regtest),
        }
    }
}

impl OnchainWallet for NoOnchainWallet {
    fn get_onchain_address(&self) -> Result<Address, Error> {
        Ok(self.address.clone())
    }

    async fn sync(&self) -> Result<(), Error> {
        Ok(())
    }

    fn balance(&self) -> Result<Balance, Error> {
        Ok(Balance {
            immature: Amount::ZERO,
            trusted_pending: Amount::ZERO,
            untrusted_pending: Amount::ZERO,
            confirmed: Amount::ZERO,
        })
    }

    fn prepare_send_to_address(&self, _: Address, _: Amount, _: FeeRate) -> Result<Psbt, Error> {
        Err(Error::wallet("the test wallet does not spend on chain"))
    }

    fn sign(&self, _: &mut Psbt) -> Result<bool, Error> {
        Ok(false)
    }

    fn select_coins(&self, _: Amount) -> Result<UtxoCoinSelection, Error> {
        Err(Error::wallet("the test wallet has no on-chain coins"))
    }
}

/// An `ark-client` wallet of this harness.
pub type Wallet = Client<SimChain, NoOnchainWallet, InMemorySwapStorage>;

/// Connects an `ark-client` wallet with secret key `[seed; 32]` to the arkd
/// simulator at `url`, using `chain` as its explorer.
pub async fn wallet(url: &str, chain: &Chain, seed: u8) -> anyhow::Result<Wallet> {
    let secp = Secp256k1::new();
    let kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[seed; 32])?);
    let config = OfflineClientConfig {
        ark_server_url: url.to_owned(),
        timeout: Duration::from_secs(30),
        ..OfflineClientConfig::default()
    };
    let offline = OfflineClient::with_keypair(
        config,
        kp,
        Arc::new(SimChain(chain.clone())),
        Arc::new(NoOnchainWallet::new(&kp)),
        Arc::new(InMemorySwapStorage::default()),
    );
    Ok(offline.connect().await?)
}
