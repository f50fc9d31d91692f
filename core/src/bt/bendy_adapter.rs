//! The one place that calls `bendy`: building a [`BtValue`] from validated input.
//!
//! `bendy`'s decoder enforces most canonical-form rules itself (see `docs/bt.md`), but it is a
//! stream decoder: it accepts empty input, ignores whatever follows the first value, and hands
//! integers over as unparsed text of any length. [`build_raw`] closes those three gaps so that it
//! is a complete strict decoder on its own; the property tests hold it to the same verdicts as
//! our validator. Its errors are opaque (the error kind is private to `bendy`), which is why
//! [`super::decode`] validates first and reports our own typed errors.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use bendy::decoding::{Decoder, Object};

use super::{BtError, BtValue, InvalidReason, MAX_DEPTH};

/// Builds the value from input that [`super::scan::validate`] accepted.
pub(super) fn build(input: &[u8]) -> Result<BtValue, BtError> {
    build_raw(input).ok_or(BtError::Invalid {
        offset: 0,
        reason: InvalidReason::RejectedByCodec,
    })
}

/// Decodes exactly one canonical value with `bendy` alone, or `None` if `bendy` or one of our
/// three additional checks rejects it.
pub(super) fn build_raw(input: &[u8]) -> Option<BtValue> {
    let mut decoder = Decoder::new(input).with_max_depth(MAX_DEPTH);
    // Empty input is `Ok(None)` for bendy.
    let value = convert(decoder.next_object().ok()??)?;
    // Anything after the first value (a second value, or bytes bendy cannot parse) is trailing
    // garbage; only a clean end of input is acceptable.
    match decoder.next_object() {
        Ok(None) => Some(value),
        _ => None,
    }
}

fn convert(object: Object<'_, '_>) -> Option<BtValue> {
    Some(match object {
        Object::Bytes(bytes) => BtValue::Bytes(bytes.to_vec()),
        // bendy has checked the digits are canonical; only the range is left to check.
        Object::Integer(text) => match text.strip_prefix('-') {
            Some(_) => BtValue::Int(text.parse().ok()?),
            None => BtValue::UInt(text.parse().ok()?),
        },
        Object::List(mut list) => {
            let mut items = Vec::new();
            while let Some(item) = list.next_object().ok()? {
                items.push(convert(item)?);
            }
            BtValue::List(items)
        }
        Object::Dict(mut dict) => {
            let mut entries = BTreeMap::new();
            while let Some((key, item)) = dict.next_pair().ok()? {
                entries.insert(key.to_vec(), convert(item)?);
            }
            BtValue::Dict(entries)
        }
    })
}
