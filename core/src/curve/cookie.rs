//! The server's cookie: `Kn(16) ‖ secretbox(C' ‖ s', "COOKIE--" ‖ Kn, K)`, 96 bytes.
//!
//! Only the server ever reads its cookie, so any scheme would interoperate; we build it exactly
//! as libzmq does (a fresh random key K per WELCOME, kept in the connection) so that our WELCOME
//! bytes are reproducible against the known-answer vectors. On INITIATE the cookie must open
//! under K *and* hold exactly the stored C' ‖ s'.

use crate::crypto::CryptoProvider;
use crate::keys::SecretKey;
use crate::rng::{self, CryptoRngCore};

use super::crypto::{self, Cipher, TAG_LEN};
use super::error::{CurveError, Stage};
use super::nonce::{self, LONG_SUFFIX_LEN};

/// Length of a cookie on the wire.
pub(crate) const COOKIE_LEN: usize = LONG_SUFFIX_LEN + TAG_LEN + 64;

/// The per-connection cookie key K. The cipher zeroes the key when dropped.
// Clone only for tests, which fork a handshake at one step to feed it many variants.
#[cfg_attr(test, derive(Clone))]
pub(crate) struct CookieKey(Cipher);

impl CookieKey {
    /// Draws K: 32 private bytes from `rng`; the cookie is sealed and opened by `provider`.
    pub(crate) fn generate<R: CryptoRngCore + ?Sized>(
        provider: &'static dyn CryptoProvider,
        rng: &mut R,
    ) -> Self {
        let mut key = [0u8; 32];
        rng::fill_private(rng, &mut key);
        Self(crypto::cipher_from_key(provider, &mut key))
    }

    /// Writes the cookie for (`client_short`, `server_short`) into `out` (96 bytes), using the
    /// nonce suffix `kn`. The plaintext s' is overwritten by ciphertext before returning.
    pub(crate) fn seal(
        &self,
        kn: &[u8; LONG_SUFFIX_LEN],
        client_short: &[u8; 32],
        server_short: &SecretKey,
        out: &mut [u8; COOKIE_LEN],
    ) -> Result<(), CurveError> {
        out[..LONG_SUFFIX_LEN].copy_from_slice(kn);
        let region = &mut out[LONG_SUFFIX_LEN..];
        region[TAG_LEN..TAG_LEN + 32].copy_from_slice(client_short);
        let mut s = server_short.to_bytes();
        region[TAG_LEN + 32..].copy_from_slice(&s);
        crypto::wipe(&mut s);
        crypto::seal(
            &self.0,
            &nonce::long(nonce::COOKIE, kn),
            region,
            Stage::Cookie,
        )
    }

    /// Opens `cookie` (96 bytes) and checks it holds exactly (`client_short`, `server_short`).
    pub(crate) fn check(
        &self,
        cookie: &[u8],
        client_short: &[u8; 32],
        server_short: &SecretKey,
    ) -> Result<(), CurveError> {
        let mut buf = [0u8; COOKIE_LEN];
        if cookie.len() != COOKIE_LEN {
            return Err(CurveError::Malformed {
                command: super::Command::Initiate,
            });
        }
        buf.copy_from_slice(cookie);
        let kn: [u8; LONG_SUFFIX_LEN] = crypto::array_at(&buf, 0);
        let region = &mut buf[LONG_SUFFIX_LEN..];
        crypto::open(
            &self.0,
            &nonce::long(nonce::COOKIE, &kn),
            region,
            Stage::Cookie,
        )?;
        let mut s = server_short.to_bytes();
        let ok = crypto::ct_eq(&region[TAG_LEN..TAG_LEN + 32], client_short)
            & crypto::ct_eq(&region[TAG_LEN + 32..], &s);
        crypto::wipe(&mut s);
        crypto::wipe(&mut buf);
        if ok {
            Ok(())
        } else {
            Err(CurveError::BadCookie)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u8);
    impl rand_core::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(self.0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for Fixed {}

    #[test]
    fn cookie_roundtrip_and_content_check() {
        for &provider in crate::crypto::all_providers() {
            cookie_roundtrip_and_content_check_with(provider);
        }
    }

    fn cookie_roundtrip_and_content_check_with(provider: &'static dyn CryptoProvider) {
        let key = CookieKey::generate(provider, &mut Fixed(0x33));
        let s1 = SecretKey::from_bytes([0x22; 32]);
        let s2 = SecretKey::from_bytes([0x23; 32]);
        let mut cookie = [0u8; COOKIE_LEN];
        key.seal(&[0x10; 16], &[0x44; 32], &s1, &mut cookie)
            .unwrap();
        assert_eq!(&cookie[..16], &[0x10; 16]);
        // The plaintext secret does not survive in the output.
        assert!(!cookie.windows(32).any(|w| w == [0x22; 32]));
        key.check(&cookie, &[0x44; 32], &s1).unwrap();
        assert_eq!(
            key.check(&cookie, &[0x45; 32], &s1),
            Err(CurveError::BadCookie)
        );
        assert_eq!(
            key.check(&cookie, &[0x44; 32], &s2),
            Err(CurveError::BadCookie)
        );
        let other = CookieKey::generate(provider, &mut Fixed(0x34));
        assert_eq!(
            other.check(&cookie, &[0x44; 32], &s1),
            Err(CurveError::Cryptographic {
                stage: Stage::Cookie
            })
        );
        assert!(key.check(&cookie[..95], &[0x44; 32], &s1).is_err());
    }
}
