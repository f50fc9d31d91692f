//! The strict, allocation-free bt validator that every reader in this module shares.
//!
//! Each function reads one item at an absolute position of the full input and returns the
//! position just past it, so errors carry offsets into what the caller handed in. Recursion is
//! one level per container and stops at [`MAX_DEPTH`], so stack use is bounded whatever the
//! input.

use super::{BtError, BtKind, InvalidReason, MAX_DEPTH};

/// The kind of value a byte starts, if it starts one.
pub(crate) const fn kind_of(byte: u8) -> Option<BtKind> {
    match byte {
        b'0'..=b'9' => Some(BtKind::Bytes),
        b'i' => Some(BtKind::Integer),
        b'l' => Some(BtKind::List),
        b'd' => Some(BtKind::Dict),
        _ => None,
    }
}

const fn invalid(offset: usize, reason: InvalidReason) -> BtError {
    BtError::Invalid { offset, reason }
}

const fn end(src: &[u8]) -> BtError {
    BtError::UnexpectedEnd { offset: src.len() }
}

/// Reads the byte string starting at `pos` (which must hold a digit).
///
/// The length must be canonical (no leading zero) and the string must fit in the input. A length
/// too large for `usize` is reported as [`BtError::UnexpectedEnd`]: no input can hold it.
pub(crate) fn string(src: &[u8], pos: usize) -> Result<(&[u8], usize), BtError> {
    let mut p = pos;
    let mut len: usize = 0;
    loop {
        match src.get(p) {
            None => return Err(end(src)),
            Some(b':') if p > pos => break,
            Some(&d @ b'0'..=b'9') => {
                if p > pos && src[pos] == b'0' {
                    return Err(invalid(p, InvalidReason::LeadingZero));
                }
                len = len.saturating_mul(10).saturating_add(usize::from(d - b'0'));
            }
            Some(_) => return Err(invalid(p, InvalidReason::MalformedLength)),
        }
        p += 1;
    }
    let start = p + 1;
    match start.checked_add(len) {
        Some(stop) if stop <= src.len() => Ok((&src[start..stop], stop)),
        _ => Err(end(src)),
    }
}

/// Reads the integer starting at `pos` (which must hold `i`), as an `i128` that is always within
/// `i64::MIN..=u64::MAX`.
///
/// Malformed and non-canonical encodings are reported at the offending byte; a well-formed
/// integer outside the 64-bit ranges is [`BtError::IntegerOutOfRange`] at `pos`.
pub(crate) fn integer(src: &[u8], pos: usize) -> Result<(i128, usize), BtError> {
    #[derive(PartialEq, Eq)]
    enum State {
        Start,
        Sign,
        Zero,
        Digits,
    }
    let mut state = State::Start;
    let mut negative = false;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    let mut p = pos + 1;
    loop {
        let Some(&byte) = src.get(p) else {
            return Err(end(src));
        };
        state = match (state, byte) {
            (State::Start, b'-') => {
                negative = true;
                State::Sign
            }
            (State::Start, b'0') => State::Zero,
            (State::Sign, b'0') => return Err(invalid(p, InvalidReason::NegativeZero)),
            (State::Zero, b'0'..=b'9') => return Err(invalid(p, InvalidReason::LeadingZero)),
            (State::Start | State::Sign | State::Digits, d @ b'0'..=b'9') => {
                match magnitude
                    .checked_mul(10)
                    .and_then(|m| m.checked_add(u64::from(d - b'0')))
                {
                    Some(m) => magnitude = m,
                    None => overflow = true,
                }
                State::Digits
            }
            (State::Zero | State::Digits, b'e') => break,
            _ => return Err(invalid(p, InvalidReason::MalformedInteger)),
        };
        p += 1;
    }
    // i64::MIN's magnitude is 2^63, one more than i64::MAX.
    let limit = if negative { 1u64 << 63 } else { u64::MAX };
    if overflow || magnitude > limit {
        return Err(BtError::IntegerOutOfRange { offset: pos });
    }
    let value = if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    Ok((value, p + 1))
}

/// Validates the value starting at `pos`, nested inside `depth` containers, and returns the
/// position just past it.
pub(crate) fn skip(src: &[u8], pos: usize, depth: usize) -> Result<usize, BtError> {
    let Some(&byte) = src.get(pos) else {
        return Err(end(src));
    };
    match kind_of(byte) {
        Some(BtKind::Bytes) => string(src, pos).map(|(_, next)| next),
        Some(BtKind::Integer) => integer(src, pos).map(|(_, next)| next),
        Some(BtKind::List) => {
            if depth >= MAX_DEPTH {
                return Err(BtError::TooDeep { offset: pos });
            }
            let mut p = pos + 1;
            loop {
                match src.get(p) {
                    None => return Err(end(src)),
                    Some(b'e') => return Ok(p + 1),
                    Some(_) => p = skip(src, p, depth + 1)?,
                }
            }
        }
        Some(BtKind::Dict) => {
            if depth >= MAX_DEPTH {
                return Err(BtError::TooDeep { offset: pos });
            }
            let mut p = pos + 1;
            let mut previous: Option<&[u8]> = None;
            loop {
                match src.get(p) {
                    None => return Err(end(src)),
                    Some(b'e') => return Ok(p + 1),
                    Some(b'0'..=b'9') => {
                        let (key, value_pos) = string(src, p)?;
                        if let Some(prev) = previous {
                            if key == prev {
                                return Err(invalid(p, InvalidReason::DuplicateKey));
                            }
                            if key < prev {
                                return Err(invalid(p, InvalidReason::UnsortedKeys));
                            }
                        }
                        previous = Some(key);
                        match src.get(value_pos) {
                            None => return Err(end(src)),
                            Some(b'e') => {
                                return Err(invalid(value_pos, InvalidReason::MissingValue));
                            }
                            Some(_) => p = skip(src, value_pos, depth + 1)?,
                        }
                    }
                    Some(_) => return Err(invalid(p, InvalidReason::KeyNotString)),
                }
            }
        }
        None => Err(invalid(pos, InvalidReason::UnexpectedByte(byte))),
    }
}

/// Validates that `src` is exactly one value.
pub(crate) fn validate(src: &[u8]) -> Result<(), BtError> {
    let next = skip(src, 0, 0)?;
    if next == src.len() {
        Ok(())
    } else {
        Err(BtError::TrailingGarbage { offset: next })
    }
}

/// Validates that `src` is exactly one value of kind `want`.
pub(crate) fn validate_kind(src: &[u8], want: BtKind) -> Result<(), BtError> {
    validate(src)?;
    // validate() succeeded, so src is non-empty and starts a value.
    match src.first().copied().and_then(kind_of) {
        Some(found) if found != want => Err(BtError::WrongType {
            offset: 0,
            expected: want,
            found,
        }),
        _ => Ok(()),
    }
}
