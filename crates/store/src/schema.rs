//! The relay's tables. Migrations live in `migrations/sqlite` and
//! `migrations/mariadb` (same tables, same columns; only DDL spelling differs),
//! are append-only, one table per file, and safe to re-run (`IF NOT EXISTS`),
//! because MariaDB commits DDL immediately. Each file opens with a comment that
//! documents its table; the summary:
//!
//! | table | what it holds | key guarantees |
//! |---|---|---|
//! | `assets` | registered assets (PRD §10.6.2), supply, reserve | unique `asset_id` |
//! | `asset_balances` | BTC reserve per asset in lnd channels / on chain | one row per asset |
//! | `vtxos` | every VTXO with carrier `sats`, colour (`asset_id`, `amount`), `status`, lock (`locked_by`), creating/spending ark txid, tapscripts | unique `vtxo_id` (`txid:vout`) |
//! | `l2_transactions` | finalized ark transactions applied to the ledger | unique `ark_txid` (commit idempotency) |
//! | `processed_events` | every Nostr event handled, with its rejection code | unique `event_id` |
//! | `intents` | accepted 31510 intents and their progress | unique `event_id`; unique `(author, action_id)` |
//! | `signing_sessions` | one signing ceremony per party (PRD §10.1) | unique `session_id` |
//! | `signing_challenges` | 31511 challenges and 31512 answers | unique `(session_id, step)` |
//! | `outbox` | signed events waiting to be published | unique `dedupe_key` |
//! | `jobs` | durable jobs (Redis only distributes them) | unique `job_key` |
//! | `lifts` | Lightning on-ramps with their hold-invoice preimage | unique `payment_hash` |
//! | `lands` | Lightning off-ramps | unique `payment_hash` |
//! | `settlements` | hourly L1 commitments (PRD §10.4) | unique `period_start` |
//! | `vtxo_inventory` | inventory replenishment batches (PRD §10.3) | unique `batch_id` |
//! | `vtxo_disputes` | VTXOs whose colour or sats the last reconciliation found different at the arkd indexer (refused with 2006) | primary key `vtxo_id` |
//! | `reconciliation_runs` | one summary per ledger ↔ arkd indexer reconciliation (`/health`) | newest by `id` |
//! | `taproot_links` | the Taproot Asset id (tapd) of each lifted permissionless asset issued on Ark by its own genesis (ledger id = genesis txid) | primary key `asset_id`; unique `taproot_asset_id` |
//! | `round_jobs` | what the relay registers in its next Ark batch round (boarding, renewals, delegated renewals, recoveries) | unique `job_id` |
//! | `round_participations` | the round-participation saga (phase, typed state, `version`) | unique `participation_id` |
//! | `delegations` | users' VTXOs renewed or recovered from a pre-signed `sign_renewal` delegation (challenge, status, round job, new VTXO, near-expiry notice) | unique `renewal_id`; by `vtxo`, by `owner` |
//!
//! Deviations from the PRD's DDL, with reasons: times are `BIGINT` unix seconds
//! (portable across both dialects and time-zone free); enums are `VARCHAR` with
//! `CHECK` constraints (same spelling in both dialects, readable through sqlx's
//! `Any` driver); `vtxos.asset_id` is nullable for uncoloured carrier VTXOs;
//! `vtxo_id` is `VARCHAR(80)` because an outpoint (`txid:vout`) does not fit 64.

/// Number of migrations per dialect in this build.
pub const MIGRATION_COUNT: usize = 14;
