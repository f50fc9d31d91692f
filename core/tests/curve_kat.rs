//! CurveZMQ known-answer test: vectors/curve-kat.txt fixes every key and random byte of one
//! handshake and its traffic. Our client and server, driven through their public constructors
//! by a scripted RNG that hands out exactly the file's random values, must produce every frame
//! byte for byte and open the other side's. Every test name contains `kat`.

mod common;

use common::{Script, each_provider, frame_body, unhex};
use crypto_box::aead::generic_array::GenericArray;
use crypto_secretbox::{AeadInPlace, Kdf, KeyInit, XSalsa20Poly1305};
use lokimq_core::crypto::CryptoProvider;
use lokimq_core::curve::{
    COOKIE_LEN, Command, CurveClient, CurveCodec, CurveServer, FLAG_COMMAND, FLAG_MORE, HELLO_LEN,
    INITIATE_MIN_LEN, READY_MIN_LEN, WELCOME_LEN,
};
use lokimq_core::keys::{Keypair, PublicKey};

const KAT: &str = include_str!("../../vectors/curve-kat.txt");

// ---------------------------------------------------------------------------------------------
// Helpers

fn arr32(v: &[u8]) -> [u8; 32] {
    v.try_into().expect("32 bytes")
}

/// The value after `label =` on the line starting with `label` (before any `(` note).
fn field(label: &str) -> String {
    let line = KAT
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no line {label:?}"));
    let value = line.split_once('=').expect("=").1.trim();
    value.split_whitespace().next().unwrap().to_string()
}

fn field_hex(label: &str) -> Vec<u8> {
    unhex(&field(label))
}

struct Kat {
    client: Keypair,
    server: Keypair,
    c_short: Vec<u8>,
    c_short_pub: Vec<u8>,
    s_short: Vec<u8>,
    s_short_pub: Vec<u8>,
    k: Vec<u8>,
    w: Vec<u8>,
    kn: Vec<u8>,
    vn: Vec<u8>,
}

fn kat() -> Kat {
    let client = Keypair::from_parts(&field_hex("C  (client"), &field_hex("c  (client")).unwrap();
    let server = Keypair::from_parts(&field_hex("S  (server"), &field_hex("s  (server")).unwrap();
    Kat {
        client,
        server,
        c_short: field_hex("c' (client"),
        c_short_pub: field_hex("C' (client"),
        s_short: field_hex("s' (server"),
        s_short_pub: field_hex("S' (server"),
        k: field_hex("K  (cookie"),
        w: field_hex("WELCOME nonce suffix"),
        kn: field_hex("COOKIE nonce suffix"),
        vn: field_hex("VOUCH nonce suffix"),
    }
}

fn frame(label: &str) -> Vec<u8> {
    field_hex(label)
}

/// One `X->Y MESSAGE nonce=N more=M command=C payload=...` line with its `frame =` line.
struct MessageLine {
    client_to_server: bool,
    nonce: u64,
    flags: u8,
    payload: Vec<u8>,
    frame: Vec<u8>,
}

fn message_lines() -> Vec<MessageLine> {
    let lines: Vec<&str> = KAT.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(dir) = ["C->S MESSAGE", "S->C MESSAGE"]
            .iter()
            .position(|p| line.starts_with(p))
        else {
            continue;
        };
        let kv = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("{key} in {line}"))
                .to_string()
        };
        let payload_text = kv("payload=");
        let more: u8 = kv("more=").parse().unwrap();
        let command: u8 = kv("command=").parse().unwrap();
        let nonce: u64 = kv("nonce=").parse().unwrap();
        let frame_line = lines[i + 1].trim();
        let frame = unhex(
            frame_line
                .strip_prefix("frame =")
                .expect("frame line")
                .trim(),
        );
        let payload = match payload_text.split_once("...(") {
            // The file abbreviates a long payload: "0001020304050607...(300 bytes)". Recover it
            // with an independent opener keyed by the file's precomputed key, and check it
            // against the abbreviation.
            Some((prefix, rest)) => {
                let len: usize = rest.split_whitespace().next().unwrap().parse().unwrap();
                let (flags, p) = raw_open(frame_body(&frame).1, dir == 0);
                assert_eq!(flags, more * FLAG_MORE + command * FLAG_COMMAND);
                assert_eq!(p.len(), len);
                assert!(p.starts_with(&unhex(prefix)));
                p
            }
            None => unhex(&payload_text),
        };
        out.push(MessageLine {
            client_to_server: dir == 0,
            nonce,
            flags: more * FLAG_MORE + command * FLAG_COMMAND,
            payload,
            frame,
        });
    }
    out
}

/// Opens a MESSAGE body with a plain XSalsa20-Poly1305 keyed by the file's precomputed key
/// (no lokimq code involved). Returns (flags byte, payload).
fn raw_open(body: &[u8], client_to_server: bool) -> (u8, Vec<u8>) {
    let cipher = XSalsa20Poly1305::new(GenericArray::from_slice(&precomputed_key()));
    let mut nonce = if client_to_server {
        b"CurveZMQMESSAGEC".to_vec()
    } else {
        b"CurveZMQMESSAGES".to_vec()
    };
    nonce.extend_from_slice(&body[8..16]);
    let mut data = body[32..].to_vec();
    cipher
        .decrypt_in_place_detached(
            GenericArray::from_slice(&nonce),
            b"",
            &mut data,
            GenericArray::from_slice(&body[16..32]),
        )
        .expect("KAT MESSAGE opens with the KAT key");
    (data[0], data[1..].to_vec())
}

/// Runs the whole handshake through the public API with the KAT's randomness, both sides on
/// provider `p`.
struct Run {
    hello: Vec<u8>,
    welcome: Vec<u8>,
    initiate: Vec<u8>,
    ready: Vec<u8>,
    client_meta_seen: Vec<u8>,
    client_codec: CurveCodec,
    server_codec: CurveCodec,
}

fn run(p: &'static dyn CryptoProvider) -> Run {
    let k = kat();
    let initiate_meta = field_hex("INITIATE metadata");
    let ready_meta = field_hex("READY metadata");

    let mut client_rng = Script::new(&[&k.c_short, &k.vn]);
    let mut server_rng = Script::new(&[&k.s_short, &k.k, &k.w, &k.kn]);
    let mut client =
        CurveClient::with_provider(p, &k.client, *k.server.public(), &mut client_rng).unwrap();
    let mut server = CurveServer::with_provider(p, &k.server, &mut server_rng);
    assert_eq!(client.short_term_public().as_bytes()[..], k.c_short_pub[..]);
    assert_eq!(server.short_term_public().as_bytes()[..], k.s_short_pub[..]);

    let hello = client.hello().unwrap();
    let welcome = server.handle_hello(&hello, &mut server_rng).unwrap();
    let initiate = client
        .handle_welcome(&welcome, &initiate_meta, &mut client_rng)
        .unwrap();
    let init = server.handle_initiate(&initiate).unwrap();
    assert_eq!(init.client_key, *k.client.public());
    assert_eq!(init.metadata, initiate_meta);
    let (ready, server_codec) = server.ready(&ready_meta).unwrap();
    let (client_meta_seen, client_codec) = client.handle_ready(&ready).unwrap();
    client_rng.assert_consumed();
    server_rng.assert_consumed();
    Run {
        hello,
        welcome,
        initiate,
        ready,
        client_meta_seen,
        client_codec,
        server_codec,
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn kat_keys_are_consistent() {
    let k = kat();
    let pubkey =
        |s: &[u8]| x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(arr32(s)));
    assert_eq!(pubkey(&k.c_short).as_bytes()[..], k.c_short_pub[..]);
    assert_eq!(pubkey(&k.s_short).as_bytes()[..], k.s_short_pub[..]);
    assert_eq!(k.c_short, vec![0x11; 32]);
    assert_eq!(k.s_short, vec![0x22; 32]);
    assert_eq!(k.k, vec![0x33; 32]);
    assert_eq!(k.w, (0x00..0x10).collect::<Vec<u8>>());
    assert_eq!(k.kn, (0x10..0x20).collect::<Vec<u8>>());
    assert_eq!(k.vn, (0xa0..0xb0).collect::<Vec<u8>>());
}

#[test]
fn kat_client_hello_is_byte_exact() {
    each_provider(|p| {
        let r = run(p);
        let frame_bytes = frame("HELLO frame");
        let (flags, body) = frame_body(&frame_bytes);
        assert_eq!(flags, 0x04);
        assert_eq!(body.len(), HELLO_LEN);
        assert_eq!(r.hello, body);
        assert_eq!(Command::of(&r.hello), Some(Command::Hello));
    });
}

#[test]
fn kat_server_welcome_and_cookie_are_byte_exact() {
    each_provider(|p| {
        let r = run(p);
        let frame_bytes = frame("WELCOME frame");
        let (flags, body) = frame_body(&frame_bytes);
        assert_eq!(flags, 0x04);
        assert_eq!(body.len(), WELCOME_LEN);
        assert_eq!(r.welcome, body);
        // The cookie travels back verbatim in INITIATE.
        let cookie = field_hex("cookie (96)");
        assert_eq!(cookie.len(), COOKIE_LEN);
        assert_eq!(&r.initiate[9..9 + COOKIE_LEN], cookie.as_slice());
    });
}

#[test]
fn kat_client_initiate_and_vouch_are_byte_exact() {
    each_provider(|p| {
        let r = run(p);
        let frame_bytes = frame("INITIATE frame");
        let (flags, body) = frame_body(&frame_bytes);
        assert_eq!(flags, 0x06, "long command frame");
        assert_eq!(
            body.len(),
            INITIATE_MIN_LEN + field_hex("INITIATE metadata").len()
        );
        assert_eq!(r.initiate, body);

        // The vouch line: open INITIATE's box with the precomputed key and find it at 48..128.
        let key = precomputed_key();
        let cipher = XSalsa20Poly1305::new(GenericArray::from_slice(&key));
        let mut nonce = b"CurveZMQINITIATE".to_vec();
        nonce.extend_from_slice(&2u64.to_be_bytes());
        let mut data = r.initiate[113 + 16..].to_vec();
        cipher
            .decrypt_in_place_detached(
                GenericArray::from_slice(&nonce),
                b"",
                &mut data,
                GenericArray::from_slice(&r.initiate[113..129]),
            )
            .unwrap();
        assert_eq!(&data[48..128], field_hex("vouch box (80)").as_slice());
    });
}

#[test]
fn kat_server_ready_is_byte_exact_and_client_reads_its_metadata() {
    each_provider(|p| {
        let r = run(p);
        let frame_bytes = frame("READY frame");
        let (flags, body) = frame_body(&frame_bytes);
        assert_eq!(flags, 0x04);
        assert_eq!(
            body.len(),
            READY_MIN_LEN + field_hex("READY metadata").len()
        );
        assert_eq!(r.ready, body);
        assert_eq!(r.client_meta_seen, field_hex("READY metadata"));
    });
}

fn precomputed_key() -> Vec<u8> {
    let line = KAT
        .lines()
        .find(|l| l.starts_with("precomputed key"))
        .unwrap();
    unhex(line.rsplit_once('=').unwrap().1.trim())
}

#[test]
fn kat_precomputed_key_matches_both_sides_and_keys_the_codecs() {
    each_provider(|p| {
        let k = kat();
        let key = precomputed_key();
        let beforenm = |sk: &[u8], pk: &[u8]| {
            let shared = x25519_dalek::StaticSecret::from(arr32(sk))
                .diffie_hellman(&x25519_dalek::PublicKey::from(arr32(pk)));
            XSalsa20Poly1305::kdf(
                GenericArray::from_slice(shared.as_bytes()),
                &GenericArray::default(),
            )
            .to_vec()
        };
        assert_eq!(beforenm(&k.c_short, &k.s_short_pub), key);
        assert_eq!(beforenm(&k.s_short, &k.c_short_pub), key);

        // A raw XSalsa20-Poly1305 with exactly that key reproduces what our codec seals.
        let mut r = run(p);
        let cipher = XSalsa20Poly1305::new(GenericArray::from_slice(&key));
        let mut body = Vec::new();
        r.client_codec.seal(FLAG_MORE, b"hello", &mut body).unwrap();
        let mut nonce = b"CurveZMQMESSAGEC".to_vec();
        nonce.extend_from_slice(&3u64.to_be_bytes());
        let mut plain = vec![FLAG_MORE];
        plain.extend_from_slice(b"hello");
        let tag = cipher
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), b"", &mut plain)
            .unwrap();
        assert_eq!(&body[16..32], tag.as_slice());
        assert_eq!(&body[32..], plain.as_slice());
        // And the server side reads it.
        assert_eq!(
            r.server_codec.open(&body).unwrap(),
            (FLAG_MORE, b"hello".to_vec())
        );
    });
}

#[test]
fn kat_every_message_is_sealed_byte_exact_and_opened() {
    each_provider(|p| {
        let mut r = run(p);
        let lines = message_lines();
        assert_eq!(lines.len(), 6, "the file lists six MESSAGEs");
        assert!(lines.iter().any(|m| m.payload.len() == 300));
        assert!(
            lines
                .iter()
                .any(|m| m.flags == FLAG_COMMAND && !m.client_to_server)
        );
        for m in &lines {
            let (tx, rx) = if m.client_to_server {
                (&mut r.client_codec, &mut r.server_codec)
            } else {
                (&mut r.server_codec, &mut r.client_codec)
            };
            assert_eq!(tx.next_send_nonce(), Some(m.nonce));
            let (flags, body) = frame_body(&m.frame);
            assert_eq!(flags & 0x04, 0, "MESSAGE travels in a data frame");
            assert_eq!(body.len(), CurveCodec::sealed_len(m.payload.len()));
            let mut sealed = Vec::new();
            tx.seal(m.flags, &m.payload, &mut sealed).unwrap();
            assert_eq!(sealed, body, "MESSAGE nonce {}", m.nonce);
            assert_eq!(
                raw_open(body, m.client_to_server),
                (m.flags, m.payload.clone())
            );
            assert_eq!(rx.open(body).unwrap(), (m.flags, m.payload.clone()));
            assert_eq!(rx.last_received_nonce(), m.nonce);
        }
    });
}

#[test]
fn kat_messages_also_open_in_place_and_replays_fail() {
    each_provider(|p| {
        let mut r = run(p);
        for m in message_lines().iter().filter(|m| m.client_to_server) {
            let (_, body) = frame_body(&m.frame);
            let mut buf = bytes::BytesMut::from(body);
            let flags = r.server_codec.open_bytes(&mut buf).unwrap();
            assert_eq!((flags, &buf[..]), (m.flags, m.payload.as_slice()));
            let mut again = body.to_vec();
            assert!(r.server_codec.open_in_place(&mut again).is_err(), "replay");
        }
    });
}

#[test]
fn kat_side_constructs_from_public_keys_only() {
    each_provider(|p| {
        // The client needs only S; building it with S from the file and our own c works, and a
        // different S changes HELLO's box but not its C'.
        let k = kat();
        let mut rng = Script::new(&[&k.c_short]);
        let other = PublicKey::from_bytes(arr32(&k.s_short_pub));
        let mut c = CurveClient::with_provider(p, &k.client, other, &mut rng).unwrap();
        let hello = c.hello().unwrap();
        let frame_bytes = frame("HELLO frame");
        let (_, body) = frame_body(&frame_bytes);
        assert_eq!(&hello[..120], &body[..120]);
        assert_ne!(&hello[120..], &body[120..]);
    });
}
