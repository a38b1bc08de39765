//! Arkade Asset packets (arkd ≥ 0.9, `research/ark-assets.md` §2–§5): the
//! `OP_RETURN` extension output of an ark tx that says which input holds how
//! much of which asset and which output receives it.
//!
//! - Encoding is ark-core 0.12's ([`Packet::encode`], [`Packet::to_txout`]); the
//!   types are re-exported from it so a packet built here *is* an ark-core packet.
//! - Decoding ([`decode_packet`], [`tx_packet`]) is written here because
//!   ark-core 0.12 has no decoder. It mirrors arkd's Go decoder
//!   (`pkg/ark-lib/asset/*.go`) rule by rule and then requires the canonical
//!   re-encoding to give back the same bytes, which is arkd's acceptance rule
//!   (`ValidateAssetTransaction` re-serializes and looks the bytes up).
//! - [`packet_for_colours`] states a ledger colour movement (one colour per VTXO)
//!   as a packet; [`output_assets`] / [`input_assets`] read a packet back as
//!   per-output / per-input denominations, issuance ids resolved.
//!
//! Asset ids here are Arkade ids (genesis txid + group index, 68 hex). The
//! relay's ledger names assets by 32-byte ids; [`arkade_id`] carries such an id
//! as the Arkade id whose genesis txid (display order) is those 32 bytes and
//! whose group index is 0, so the string form is the ledger's hex plus `0000`.
//! An asset the relay issues on Ark ([`genesis_packet`]) is group 0 of its
//! genesis, so its ledger id *is* its genesis txid and the mapping is exact;
//! its control asset is group 1 and gets a derived ledger id
//! ([`control_ledger_id`], mapped back by [`IdMap`]). Metadata linking an
//! asset to its Lightning / L1 side uses the keys in [`meta`].

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::hashes::Hash;
use bitcoin::{Transaction, Txid};

use ark_relay_core::{AssetId, Colour};

pub use ark_core::asset::packet::{AssetGroup, AssetInput, AssetOutput, AssetRef, Packet};
/// An Arkade asset id: genesis txid and group index (68 hex as a string).
pub use ark_core::asset::AssetId as ArkadeAssetId;

/// The extension record type of an asset packet.
pub const ASSET_PACKET_TYPE: u8 = 0x00;
/// arkd's bound on groups, inputs, outputs and metadata entries.
const MAX_ITEMS: u64 = 1000;
const PRESENCE_ASSET_ID: u8 = 0x01;
const PRESENCE_CONTROL: u8 = 0x02;
const PRESENCE_METADATA: u8 = 0x04;

/// Why bytes are not a valid asset packet or extension. Each variant names the
/// arkd error it stands for ([`PacketError::arkd_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The bytes break a structural rule of the codec.
    #[error("invalid asset packet: {0}")]
    Malformed(String),
    /// The bytes decode but are not the canonical encoding of what they decode to.
    #[error("asset packet not found in extension output (non-canonical encoding)")]
    NotCanonical,
    /// An intent-type (0x02) asset input: only server-built batch leaf txs carry them.
    #[error("asset input of intent type in an ark transaction")]
    IntentInput,
    /// More than one `ARK` extension output.
    #[error("multiple extension outputs")]
    MultipleExtensions,
    /// An extension output with a non-zero value.
    #[error("extension output {vout} has value {sats}, must be 0")]
    ExtensionValue {
        /// The output.
        vout: usize,
        /// Its value in sats.
        sats: u64,
    },
}

impl PacketError {
    /// The arkd error name a submission with this packet gets.
    pub fn arkd_name(&self) -> &'static str {
        match self {
            PacketError::Malformed(_) => "ASSET_PACKET_INVALID",
            PacketError::NotCanonical => "ASSET_VALIDATION_FAILED",
            PacketError::IntentInput => "ASSET_INPUT_INVALID",
            PacketError::MultipleExtensions | PacketError::ExtensionValue { .. } => {
                "MALFORMED_ARK_TX"
            }
        }
    }
}

fn bad(msg: impl Into<String>) -> PacketError {
    PacketError::Malformed(msg.into())
}

/// The Arkade id under which a ledger asset id travels in packets.
pub fn arkade_id(asset: &AssetId) -> ArkadeAssetId {
    let mut internal = *asset.as_bytes();
    internal.reverse();
    ArkadeAssetId {
        txid: Txid::from_byte_array(internal),
        group_index: 0,
    }
}

/// The ledger asset id an Arkade id stands for: group 0 of a transaction is
/// the ledger id equal to its txid ([`arkade_id`]); group 1 is the control
/// asset of group 0 in the relay's genesis layout ([`genesis_packet`]), whose
/// ledger id is [`control_ledger_id`] of the txid. Other groups have none.
/// The mapping is forward only, so a holder of a control asset (a DEX
/// minting its LP token) checks a packet without knowing the genesis.
pub fn ledger_id(id: &ArkadeAssetId) -> Option<AssetId> {
    let mut display = id.txid.to_byte_array();
    display.reverse();
    let asset = AssetId::from_bytes(display);
    match id.group_index {
        0 => Some(asset),
        1 => Some(control_ledger_id(&asset)),
        _ => None,
    }
}

/// A byte reader with arkd's primitive decoders.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], PacketError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| bad(format!("truncated {what}")))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn byte(&mut self, what: &str) -> Result<u8, PacketError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16le(&mut self, what: &str) -> Result<u16, PacketError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    /// LEB128 as Go's `binary.ReadUvarint` (at most 10 bytes, no overflow).
    fn uvarint(&mut self, what: &str) -> Result<u64, PacketError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte(what)?;
            if i == 9 && b > 1 {
                return Err(bad(format!("{what} overflows u64")));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad(format!("{what} overflows u64")))
    }
    fn count(&mut self, what: &str) -> Result<usize, PacketError> {
        let n = self.uvarint(what)?;
        if n > MAX_ITEMS {
            return Err(bad(format!("too many {what}: {n} > {MAX_ITEMS}")));
        }
        usize::try_from(n).map_err(|_| bad(format!("too many {what}")))
    }
    fn asset_id(&mut self) -> Result<ArkadeAssetId, PacketError> {
        let mut display: [u8; 32] = self
            .take(32, "asset id")?
            .try_into()
            .map_err(|_| bad("truncated asset id"))?;
        if display == [0u8; 32] {
            return Err(bad("asset id txid is all zero"));
        }
        display.reverse();
        let group_index = self.u16le("asset id group index")?;
        Ok(ArkadeAssetId {
            txid: Txid::from_byte_array(display),
            group_index,
        })
    }
    fn string(&mut self, what: &str) -> Result<String, PacketError> {
        let len = self.uvarint(what)?;
        let len = usize::try_from(len).map_err(|_| bad(format!("{what} too long")))?;
        if len == 0 {
            return Err(bad(format!("empty metadata {what}")));
        }
        let b = self.take(len, what)?;
        // ark-core's metadata type is `String`; arkd allows any bytes. Relay
        // metadata is always UTF-8, so a non-UTF-8 entry is refused here.
        String::from_utf8(b.to_vec()).map_err(|_| bad(format!("metadata {what} is not UTF-8")))
    }
}

/// Decodes one group. `leaf`: a batch leaf tx's packet, whose inputs are
/// intent-type (`{0x02, intent proof txid, vin, amount}`, arkd
/// `LeafTxPacket`): they are read and checked, not returned (ark-core 0.12's
/// `AssetInput` has no intent type, and a leaf's colour is in its outputs).
fn decode_group(r: &mut Reader<'_>, groups: usize, leaf: bool) -> Result<AssetGroup, PacketError> {
    let presence = r.byte("presence")?;
    let asset_id = if presence & PRESENCE_ASSET_ID != 0 {
        Some(r.asset_id()?)
    } else {
        None
    };
    let control_asset = if presence & PRESENCE_CONTROL != 0 {
        Some(match r.byte("asset ref type")? {
            0x01 => AssetRef::ById(r.asset_id()?),
            0x02 => {
                let g = r.u16le("asset ref group index")?;
                if usize::from(g) >= groups {
                    return Err(bad(format!("control asset group {g} out of range")));
                }
                AssetRef::ByGroup(g)
            }
            t => return Err(bad(format!("unknown asset ref type {t}"))),
        })
    } else {
        None
    };
    let metadata = if presence & PRESENCE_METADATA != 0 {
        let n = r.count("metadata entries")?;
        let mut list = Vec::with_capacity(n);
        for _ in 0..n {
            list.push((r.string("key")?, r.string("value")?));
        }
        // Go keeps an empty list as absent: re-encoded, the presence bit is gone.
        (!list.is_empty()).then_some(list)
    } else {
        None
    };
    let n_in = r.count("asset inputs")?;
    let mut inputs = Vec::with_capacity(n_in);
    let mut vins = BTreeSet::new();
    for _ in 0..n_in {
        match r.byte("asset input type")? {
            0x01 if !leaf => {}
            0x02 if leaf => {
                let txid = r.take(32, "intent input txid")?;
                if txid.iter().all(|b| *b == 0) {
                    return Err(bad("intent input txid is all zero"));
                }
                r.u16le("intent input vin")?;
                r.uvarint("intent input amount")?;
                continue;
            }
            0x02 => return Err(PacketError::IntentInput),
            t => return Err(bad(format!("unknown asset input type {t}"))),
        }
        let input_index = r.u16le("asset input vin")?;
        if !vins.insert(input_index) {
            return Err(bad(format!("duplicate asset input vin {input_index}")));
        }
        let amount = r.uvarint("asset input amount")?;
        inputs.push(AssetInput {
            input_index,
            amount,
        });
    }
    let n_out = r.count("asset outputs")?;
    let mut outputs = Vec::with_capacity(n_out);
    let mut vouts = BTreeSet::new();
    for _ in 0..n_out {
        let t = r.byte("asset output type")?;
        if t != 0x01 {
            return Err(bad(format!("unknown asset output type {t}")));
        }
        let output_index = r.u16le("asset output vout")?;
        if !vouts.insert(output_index) {
            return Err(bad(format!("duplicate asset output vout {output_index}")));
        }
        let amount = r.uvarint("asset output amount")?;
        if amount == 0 {
            return Err(bad("asset output amount must be > 0"));
        }
        outputs.push(AssetOutput {
            output_index,
            amount,
        });
    }
    if asset_id.is_none() {
        if !inputs.is_empty() {
            return Err(bad("an issuance group cannot have inputs"));
        }
        if outputs.is_empty() {
            return Err(bad("empty asset group"));
        }
    } else if control_asset.is_some() {
        return Err(bad("only an issuance may name a control asset"));
    }
    Ok(AssetGroup {
        asset_id,
        control_asset,
        metadata,
        inputs,
        outputs,
    })
}

/// Decodes an asset packet (the payload of a type-0 extension record) as arkd
/// does, and requires it to be the canonical encoding of what it decodes to.
pub fn decode_packet(bytes: &[u8]) -> Result<Packet, PacketError> {
    let packet = decode_groups(bytes, false)?;
    if packet.encode() != bytes {
        return Err(PacketError::NotCanonical);
    }
    Ok(packet)
}

/// Decodes a batch leaf tx's asset packet (arkd `LeafTxPacket`: the intent's
/// preservation packet with each group's inputs replaced by one intent-type
/// input). The groups come back without inputs; the canonical re-encoding
/// check does not apply (ark-core cannot encode intent inputs).
pub fn decode_leaf_packet(bytes: &[u8]) -> Result<Packet, PacketError> {
    decode_groups(bytes, true)
}

fn decode_groups(bytes: &[u8], leaf: bool) -> Result<Packet, PacketError> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.count("asset groups")?;
    if n == 0 {
        return Err(bad("a packet needs at least one group"));
    }
    let mut groups = Vec::with_capacity(n);
    let mut ids = BTreeSet::new();
    for _ in 0..n {
        let g = decode_group(&mut r, n, leaf)?;
        if leaf && g.asset_id.is_none() {
            return Err(bad("a leaf packet cannot issue an asset"));
        }
        if let Some(id) = &g.asset_id {
            if !ids.insert(id.to_string()) {
                return Err(bad(format!("duplicate asset group {id}")));
            }
        }
        groups.push(g);
    }
    if r.at != bytes.len() {
        return Err(bad(format!("left {} unknown bytes", bytes.len() - r.at)));
    }
    Ok(Packet { groups })
}

/// Whether an output script is an `ARK` extension (arkd `IsExtension`:
/// `OP_RETURN` whose first push starts with the magic; nothing else parsed).
pub fn is_extension(script: &bitcoin::Script) -> bool {
    ark_core::extension::is_extension(script)
}

/// A group's metadata list serialized as arkd does (`uvarint(n)` then each
/// key and value as `uvarint(len) || bytes`; research note §3). arkd's
/// `GetAsset` returns it hex-encoded.
pub fn encode_metadata(list: &[(String, String)]) -> Vec<u8> {
    let mut buf = Vec::new();
    ark_core::extension::encode_uvarint(&mut buf, list.len() as u64);
    for (k, v) in list {
        for part in [k, v] {
            ark_core::extension::encode_uvarint(&mut buf, part.len() as u64);
            buf.extend_from_slice(part.as_bytes());
        }
    }
    buf
}

/// Reads a metadata list serialized by [`encode_metadata`] (arkd's rules:
/// non-empty keys and values, at most 1000 entries, nothing left over).
pub fn decode_metadata(bytes: &[u8]) -> Result<Vec<(String, String)>, PacketError> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.count("metadata entries")?;
    let mut list = Vec::with_capacity(n);
    for _ in 0..n {
        list.push((r.string("key")?, r.string("value")?));
    }
    if r.at != bytes.len() {
        return Err(bad(format!("left {} unknown bytes", bytes.len() - r.at)));
    }
    Ok(list)
}

/// Metadata keys the relay writes on the assets it issues on Ark: what links
/// the Arkade asset to its Lightning / L1 side.
pub mod meta {
    /// Human-readable name.
    pub const NAME: &str = "name";
    /// Ticker (e.g. `gBTC`).
    pub const TICKER: &str = "ticker";
    /// Display precision (decimal string).
    pub const DECIMALS: &str = "decimals";
    /// The Taproot Asset id (64 hex) of the same asset on tapd.
    pub const TAPROOT_ASSET_ID: &str = "taproot_asset_id";
}

/// The metadata list of a relay-issued asset, keys in a fixed order.
pub fn asset_metadata(
    name: &str,
    ticker: &str,
    decimals: u8,
    taproot_asset_id: Option<&AssetId>,
) -> Vec<(String, String)> {
    let mut list = vec![
        (meta::NAME.to_owned(), name.to_owned()),
        (meta::TICKER.to_owned(), ticker.to_owned()),
        (meta::DECIMALS.to_owned(), decimals.to_string()),
    ];
    if let Some(id) = taproot_asset_id {
        list.push((meta::TAPROOT_ASSET_ID.to_owned(), id.to_string()));
    }
    list.retain(|(_, v)| !v.is_empty());
    list
}

/// The asset packet of `tx`, if it has one: at most one extension output, of
/// value 0, whose records parse, with no duplicate record type and at least one
/// record (arkd `NewExtensionFromBytes` and `validateOffchainTxOutputs`).
/// Returns the extension's output index with the packet.
pub fn tx_packet(tx: &Transaction) -> Result<Option<(usize, Packet)>, PacketError> {
    extension_packet(tx, decode_packet)
}

/// [`tx_packet`] for a batch leaf tx: its packet decoded with
/// [`decode_leaf_packet`].
pub fn tx_leaf_packet(tx: &Transaction) -> Result<Option<(usize, Packet)>, PacketError> {
    extension_packet(tx, decode_leaf_packet)
}

fn extension_packet(
    tx: &Transaction,
    decode: fn(&[u8]) -> Result<Packet, PacketError>,
) -> Result<Option<(usize, Packet)>, PacketError> {
    let mut found = None;
    for (vout, out) in tx.output.iter().enumerate() {
        let Some(payload) = ark_core::extension::extension_payload(&out.script_pubkey) else {
            continue;
        };
        if found.is_some() {
            return Err(PacketError::MultipleExtensions);
        }
        if out.value.to_sat() != 0 {
            return Err(PacketError::ExtensionValue {
                vout,
                sats: out.value.to_sat(),
            });
        }
        found = Some((vout, payload));
    }
    let Some((vout, payload)) = found else {
        return Ok(None);
    };
    let records =
        ark_core::extension::iter_packets(payload).map_err(|e| bad(format!("extension: {e}")))?;
    if records.is_empty() {
        return Err(bad("extension: missing packets"));
    }
    let mut types = BTreeSet::new();
    let mut asset = None;
    for (t, body) in records {
        if !types.insert(t) {
            return Err(bad(format!("extension: duplicate packet type {t}")));
        }
        if t == ASSET_PACKET_TYPE {
            asset = Some(body);
        }
    }
    match asset {
        Some(body) => Ok(Some((vout, decode(body)?))),
        None => Ok(None),
    }
}

/// The id a group of `packet` names: its asset id, or for an issuance
/// `(txid, group index)` of the transaction carrying it.
pub fn group_asset_id(txid: Txid, index: usize, group: &AssetGroup) -> ArkadeAssetId {
    group.asset_id.unwrap_or(ArkadeAssetId {
        txid,
        group_index: u16::try_from(index).unwrap_or(u16::MAX),
    })
}

/// Per output index, the assets `packet` assigns to it (`txid`: the carrying tx).
pub fn output_assets(txid: Txid, packet: &Packet) -> BTreeMap<u32, Vec<(ArkadeAssetId, u64)>> {
    let mut out: BTreeMap<u32, Vec<(ArkadeAssetId, u64)>> = BTreeMap::new();
    for (i, g) in packet.groups.iter().enumerate() {
        let id = group_asset_id(txid, i, g);
        for o in &g.outputs {
            out.entry(u32::from(o.output_index))
                .or_default()
                .push((id, o.amount));
        }
    }
    out
}

/// Per input index, the assets `packet` says it spends.
pub fn input_assets(packet: &Packet) -> BTreeMap<u32, Vec<(ArkadeAssetId, u64)>> {
    let mut out: BTreeMap<u32, Vec<(ArkadeAssetId, u64)>> = BTreeMap::new();
    for g in &packet.groups {
        let Some(id) = g.asset_id else { continue };
        for i in &g.inputs {
            out.entry(u32::from(i.input_index))
                .or_default()
                .push((id, i.amount));
        }
    }
    out
}

/// How ledger asset ids travel in packets: as their bridged Arkade id
/// ([`arkade_id`], group 0 of the transaction whose txid is the ledger id),
/// except the control assets named here, which are group 1 of their asset's
/// genesis ([`control_arkade_id`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    controls: BTreeMap<AssetId, ArkadeAssetId>,
}

impl IdMap {
    /// Every ledger id bridged.
    pub fn bridged() -> Self {
        Self::default()
    }

    /// Also maps the control asset of the relay-issued `asset`.
    pub fn with_control(mut self, asset: &AssetId) -> Self {
        self.controls
            .insert(control_ledger_id(asset), control_arkade_id(asset));
        self
    }

    /// Maps the control asset of every asset in `assets` (e.g. every
    /// registered asset: a control id that no VTXO carries costs nothing).
    pub fn for_assets<'a>(assets: impl IntoIterator<Item = &'a AssetId>) -> Self {
        assets
            .into_iter()
            .fold(Self::bridged(), |ids, a| ids.with_control(a))
    }

    /// The Arkade id of `asset` if it is a mapped control asset.
    pub fn control(&self, asset: &AssetId) -> Option<ArkadeAssetId> {
        self.controls.get(asset).copied()
    }

    /// The Arkade id of ledger asset `asset`.
    pub fn arkade(&self, asset: &AssetId) -> ArkadeAssetId {
        self.controls
            .get(asset)
            .copied()
            .unwrap_or_else(|| arkade_id(asset))
    }
}

/// Units of an asset its genesis on Ark issues to its holder (the *genesis
/// unit*, group 0), beside one unit of its control asset (group 1). No lift
/// backs it, so it does not circulate.
pub const GENESIS_UNITS: u64 = 1;

/// The ledger id of the control asset of relay-issued `asset` (the ledger
/// names every colour by 32 bytes; the control asset's Arkade id has group
/// index 1, so it gets a derived id: `SHA256(SHA256(tag) || SHA256(tag) ||
/// asset)`, `tag = "ark-relay/control-asset"`).
pub fn control_ledger_id(asset: &AssetId) -> AssetId {
    use bitcoin::hashes::{sha256, HashEngine};
    let tag = sha256::Hash::hash(b"ark-relay/control-asset");
    let mut engine = sha256::Hash::engine();
    engine.input(tag.as_byte_array());
    engine.input(tag.as_byte_array());
    engine.input(asset.as_bytes());
    AssetId::from_bytes(sha256::Hash::from_engine(engine).to_byte_array())
}

/// The Arkade id of the control asset of relay-issued `asset`: group 1 of
/// the asset's genesis transaction ([`genesis_packet`]).
pub fn control_arkade_id(asset: &AssetId) -> ArkadeAssetId {
    ArkadeAssetId {
        group_index: 1,
        ..arkade_id(asset)
    }
}

/// The packet of a relay asset's genesis: group 0 issues `amount` of the
/// asset to output `asset_output`, names group 1 as its control asset and
/// carries `metadata`; group 1 issues the control asset, 1 unit, to output
/// `control_output`. The asset's id is then (genesis txid, 0) — whose ledger
/// form is the txid itself ([`ledger_id`]) — and its control asset's
/// (genesis txid, 1) ([`control_arkade_id`]).
pub fn genesis_packet(
    asset_output: u16,
    amount: u64,
    control_output: u16,
    metadata: Vec<(String, String)>,
) -> Result<Packet, PacketError> {
    if amount == 0 {
        return Err(bad("a genesis issues at least 1 unit"));
    }
    if asset_output == control_output {
        return Err(bad(
            "the asset and its control asset need outputs of their own",
        ));
    }
    let issue = |output_index: u16, amount: u64| AssetGroup {
        asset_id: None,
        control_asset: None,
        metadata: None,
        inputs: vec![],
        outputs: vec![AssetOutput {
            output_index,
            amount,
        }],
    };
    let asset = AssetGroup {
        control_asset: Some(AssetRef::ByGroup(1)),
        metadata: (!metadata.is_empty()).then_some(metadata),
        ..issue(asset_output, amount)
    };
    Ok(Packet {
        groups: vec![asset, issue(control_output, 1)],
    })
}

/// The packet stating a ledger colour movement with bridged ids
/// ([`packet_for_colours_with`] and [`IdMap::bridged`]).
pub fn packet_for_colours(
    inputs: &[Option<Colour>],
    outputs: &[Option<Colour>],
) -> Result<Option<Packet>, PacketError> {
    packet_for_colours_with(inputs, outputs, &IdMap::bridged())
}

/// The packet stating a ledger colour movement: `inputs[i]` is the colour of
/// ark-tx input `i`, `outputs[j]` the colour output `j` receives. One group per
/// asset (ordered by ledger id), listing every input holding it with its whole
/// amount and every output receiving it; an asset whose outputs exceed its
/// inputs is a reissuance (valid at arkd when its control asset moves in the
/// same packet: a control-asset input re-output), one whose inputs exceed its
/// outputs a burn. `None` when no input or output is coloured (arkd requires
/// no packet then). `ids` says under which Arkade id each asset travels.
pub fn packet_for_colours_with(
    inputs: &[Option<Colour>],
    outputs: &[Option<Colour>],
    ids: &IdMap,
) -> Result<Option<Packet>, PacketError> {
    let index = |i: usize| u16::try_from(i).map_err(|_| bad(format!("index {i} above u16")));
    let mut groups: BTreeMap<AssetId, AssetGroup> = BTreeMap::new();
    for (i, c) in inputs.iter().enumerate() {
        let Some(c) = c else { continue };
        let input_index = index(i)?;
        entry(&mut groups, c.asset, ids).inputs.push(AssetInput {
            input_index,
            amount: c.amount.get(),
        });
    }
    for (j, c) in outputs.iter().enumerate() {
        let Some(c) = c else { continue };
        let output_index = index(j)?;
        entry(&mut groups, c.asset, ids).outputs.push(AssetOutput {
            output_index,
            amount: c.amount.get(),
        });
    }
    if groups.is_empty() {
        return Ok(None);
    }
    Ok(Some(Packet {
        groups: groups.into_values().collect(),
    }))
}

fn entry<'a>(
    groups: &'a mut BTreeMap<AssetId, AssetGroup>,
    asset: AssetId,
    ids: &IdMap,
) -> &'a mut AssetGroup {
    groups.entry(asset).or_insert_with(|| AssetGroup {
        asset_id: Some(ids.arkade(&asset)),
        control_asset: None,
        metadata: None,
        inputs: vec![],
        outputs: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_genesis_pair_maps_both_ways() {
        let asset = AssetId::from_bytes([0x5a; 32]);
        let ids = IdMap::bridged().with_control(&asset);
        let control = control_ledger_id(&asset);
        assert_eq!(ledger_id(&ids.arkade(&asset)), Some(asset));
        assert_eq!(ledger_id(&ids.arkade(&control)), Some(control));
        assert_eq!(ids.arkade(&control), control_arkade_id(&asset));
        let third = ArkadeAssetId {
            group_index: 2,
            ..arkade_id(&asset)
        };
        assert_eq!(ledger_id(&third), None);
    }
}
