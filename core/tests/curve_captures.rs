//! Our CURVE code against recordings of real libzmq 4.3.5.
//!
//! * vectors/curve-vectors-decrypted.txt: vector A is a reference client talking to a libzmq
//!   ROUTER; with the client's chosen randomness our client must reproduce every client byte and
//!   open every libzmq box. Vector B is a libzmq DEALER talking to a reference server; with the
//!   server's chosen randomness our server must accept libzmq's HELLO and INITIATE, reproduce the
//!   WELCOME, READY and MESSAGE bytes, and open libzmq's MESSAGEs.
//! * vectors/curve-handshake-capture.txt: two libzmq sockets with random short-term keys. Only
//!   the structure is checkable (frames, sizes, names, nonce sequences), plus the HELLO, whose
//!   signature box our server opens with the known long-term server secret.

mod common;

use common::{Script, each_provider, frame_body, frame_header, unhex};
use crypto_box::aead::generic_array::GenericArray;
use crypto_secretbox::{AeadInPlace, KeyInit, XSalsa20Poly1305};
use lokimq_core::crypto::CryptoProvider;
use lokimq_core::curve::{
    COOKIE_LEN, Command, CurveClient, CurveCodec, CurveServer, HELLO_LEN, INITIATE_MIN_LEN,
    MESSAGE_OVERHEAD, READY_MIN_LEN, WELCOME_LEN,
};
use lokimq_core::keys::Keypair;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DECRYPTED: &str = include_str!("../../vectors/curve-vectors-decrypted.txt");
const CAPTURE: &str = include_str!("../../vectors/curve-handshake-capture.txt");

// ---------------------------------------------------------------------------------------------
// Helpers

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len() % 2 == 0 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The hex token right after the first occurrence of `marker` in `text`.
fn after(text: &str, marker: &str) -> Vec<u8> {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("marker {marker:?} not found"))
        + marker.len();
    unhex(text[at..].split_whitespace().next().unwrap())
}

/// A `>> NAME (N bytes)` / `<< NAME (N bytes)` block of the decrypted-vectors file.
struct Block {
    sent_by_reference: bool,
    name: String,
    bytes: Vec<u8>,
}

fn blocks(section: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut expected_len = 0;
    for line in section.lines() {
        let t = line.trim();
        let dir = if let Some(rest) = t.strip_prefix(">> ") {
            Some((true, rest))
        } else {
            t.strip_prefix("<< ").map(|rest| (false, rest))
        };
        if let Some((sent, rest)) = dir {
            if let Some(last) = out.last() {
                assert_eq!(last.bytes.len(), expected_len, "{}", last.name);
            }
            let (name, len) = rest.rsplit_once(" (").unwrap();
            expected_len = len.trim_end_matches(" bytes)").parse().unwrap();
            out.push(Block {
                sent_by_reference: sent,
                name: name.to_string(),
                bytes: Vec::new(),
            });
        } else if is_hex(t) && line.starts_with("     ") {
            out.last_mut().unwrap().bytes.extend(unhex(t));
        }
    }
    if let Some(last) = out.last() {
        assert_eq!(last.bytes.len(), expected_len, "{}", last.name);
    }
    out
}

fn block<'a>(bs: &'a [Block], sent: bool, name: &str) -> &'a Block {
    bs.iter()
        .find(|b| b.sent_by_reference == sent && b.name == name)
        .unwrap_or_else(|| panic!("no block {name}"))
}

fn section(name: &str) -> &'static str {
    let start = DECRYPTED.find(name).unwrap();
    let rest = &DECRYPTED[start..];
    let end = rest[1..].find("VECTOR ").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// The long-term keys of vector A (vector B uses the same pair: its INITIATE plaintext and
/// vouch carry the same C and S).
fn long_term_keys() -> (Keypair, Keypair) {
    let a = section("VECTOR A");
    let client = Keypair::from_parts(&after(a, "C  = "), &after(a, "c  = ")).unwrap();
    let server = Keypair::from_parts(&after(a, "S  = "), &after(a, "s  = ")).unwrap();
    (client, server)
}

/// Opens a box (tag-first) with a raw XSalsa20-Poly1305 keyed by a precomputed key from the
/// file: an opener independent of lokimq's code.
fn raw_open(key: &[u8], nonce: &[u8], boxed: &[u8]) -> Vec<u8> {
    let cipher = XSalsa20Poly1305::new(GenericArray::from_slice(key));
    let mut data = boxed[16..].to_vec();
    cipher
        .decrypt_in_place_detached(
            GenericArray::from_slice(nonce),
            b"",
            &mut data,
            GenericArray::from_slice(&boxed[..16]),
        )
        .expect("recorded box opens with the recorded key");
    data
}

fn short_nonce(prefix: &[u8; 16], counter: &[u8]) -> Vec<u8> {
    let mut n = prefix.to_vec();
    n.extend_from_slice(counter);
    n
}

/// `X->Y nonce N: hex` lines (vector A) as (client_to_server, nonce, plaintext).
fn plaintext_lines(section: &str, marker: &str) -> Vec<(bool, u64, Vec<u8>)> {
    section
        .lines()
        .filter_map(|l| {
            let t = l.trim();
            let c2s = t.starts_with("C->S");
            if !(c2s || t.starts_with("S->C")) || !t.contains(marker) {
                return None;
            }
            let (head, tail) = t.split_once(':')?;
            let n = head.rsplit(' ').next()?.parse().ok()?;
            let hex = tail
                .rsplit(' ')
                .find(|w| is_hex(w))
                .or_else(|| tail.split_whitespace().find(|w| is_hex(w)))?;
            Some((c2s, n, unhex(hex)))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Vector A: our client against a libzmq 4.3.5 ROUTER

struct VectorA {
    client: CurveClient,
    blocks: Vec<Block>,
    hello: Vec<u8>,
    initiate_plain: Vec<u8>,
}

fn vector_a_after_hello(p: &'static dyn CryptoProvider) -> (VectorA, Script) {
    let a = section("VECTOR A");
    let (client_kp, server_kp) = long_term_keys();
    let mut rng = Script::new(&[&after(a, "c' = "), &after(a, "vouch nonce (16)     = ")]);
    let mut client =
        CurveClient::with_provider(p, &client_kp, *server_kp.public(), &mut rng).unwrap();
    assert_eq!(
        client.short_term_public().as_bytes().to_vec(),
        after(a, "C' = ")
    );
    let hello = client.hello().unwrap();
    let plain_at = a.find("INITIATE box plaintext").unwrap();
    let initiate_plain = unhex(a[plain_at..].lines().nth(1).unwrap().trim());
    (
        VectorA {
            client,
            blocks: blocks(a),
            hello,
            initiate_plain,
        },
        rng,
    )
}

#[test]
fn vector_a_client_hello_is_byte_identical() {
    each_provider(|p| {
        let (v, _) = vector_a_after_hello(p);
        let (flags, body) = frame_body(&block(&v.blocks, true, "HELLO").bytes);
        assert_eq!(flags, 0x04);
        assert_eq!(body.len(), HELLO_LEN);
        assert_eq!(v.hello, body);
    });
}

#[test]
fn vector_a_client_opens_libzmq_welcome_and_reproduces_initiate() {
    each_provider(|p| {
        let a = section("VECTOR A");
        let (mut v, mut rng) = vector_a_after_hello(p);
        let (_, welcome) = frame_body(&block(&v.blocks, false, "WELCOME").bytes);
        assert_eq!(welcome.len(), WELCOME_LEN);
        // The recorded WELCOME carries the S' and cookie the file lists.
        assert_eq!(
            &welcome[8..24],
            after(a, "WELCOME long nonce   = ").as_slice()
        );
        let metadata = v.initiate_plain[128..].to_vec();
        let initiate = v
            .client
            .handle_welcome(welcome, &metadata, &mut rng)
            .unwrap();
        rng.assert_consumed();
        let (flags, recorded) = frame_body(&block(&v.blocks, true, "INITIATE").bytes);
        assert_eq!(flags, 0x06);
        assert_eq!(initiate, recorded);
        assert_eq!(initiate.len(), INITIATE_MIN_LEN + metadata.len());
        assert_eq!(
            &initiate[9..105],
            after(a, "cookie (96)          = ").as_slice()
        );
        assert_eq!(COOKIE_LEN, 96);
        // The box plaintext the file lists is what we boxed: check with an independent opener.
        let key = after(a, "crypto_box_beforenm(S', c') = ");
        let plain = raw_open(
            &key,
            &short_nonce(b"CurveZMQINITIATE", &initiate[105..113]),
            &initiate[113..],
        );
        assert_eq!(plain, v.initiate_plain);
        assert_eq!(&plain[..32], long_term_keys().0.public().as_bytes());
    });
}

fn vector_a_codec(p: &'static dyn CryptoProvider) -> (CurveCodec, Vec<Block>, Vec<u8>) {
    let (mut v, mut rng) = vector_a_after_hello(p);
    let (_, welcome) = frame_body(&block(&v.blocks, false, "WELCOME").bytes);
    let metadata = v.initiate_plain[128..].to_vec();
    v.client
        .handle_welcome(welcome, &metadata, &mut rng)
        .unwrap();
    let (_, ready) = frame_body(&block(&v.blocks, false, "READY").bytes);
    let (meta, codec) = v.client.handle_ready(ready).unwrap();
    (codec, v.blocks, meta)
}

#[test]
fn vector_a_client_opens_libzmq_ready() {
    each_provider(|p| {
        let a = section("VECTOR A");
        let (codec, blocks, meta) = vector_a_codec(p);
        let (flags, ready) = frame_body(&block(&blocks, false, "READY").bytes);
        assert_eq!(flags, 0x04);
        assert_eq!(ready.len(), READY_MIN_LEN + meta.len());
        assert_eq!(meta, after(a, "READY box plaintext (server metadata) = "));
        assert_eq!(codec.last_received_nonce(), 1);
        assert_eq!(codec.next_send_nonce(), Some(3));
    });
}

#[test]
fn vector_a_client_messages_are_byte_identical_and_libzmq_messages_open() {
    each_provider(|p| {
        let a = section("VECTOR A");
        let (mut codec, blocks, _) = vector_a_codec(p);
        let plains = plaintext_lines(a, "nonce");
        let sent: Vec<&Block> = blocks
            .iter()
            .filter(|b| b.sent_by_reference && b.name.starts_with("MESSAGE"))
            .collect();
        let received: Vec<&Block> = blocks
            .iter()
            .filter(|b| !b.sent_by_reference && b.name.starts_with("MESSAGE"))
            .collect();
        let c2s: Vec<_> = plains.iter().filter(|p| p.0).collect();
        let s2c: Vec<_> = plains.iter().filter(|p| !p.0).collect();
        assert_eq!((sent.len(), c2s.len()), (3, 3));
        assert_eq!((received.len(), s2c.len()), (3, 3));

        for (block, (_, n, plain)) in sent.iter().zip(&c2s) {
            let (flags, body) = frame_body(&block.bytes);
            assert_eq!(flags, 0x00, "MESSAGE is a data frame");
            assert_eq!(codec.next_send_nonce(), Some(*n));
            let mut ours = Vec::new();
            codec.seal(plain[0], &plain[1..], &mut ours).unwrap();
            assert_eq!(ours, body, "{} (nonce {n})", block.name);
        }
        for (block, (_, n, plain)) in received.iter().zip(&s2c) {
            let (flags, body) = frame_body(&block.bytes);
            assert_eq!(flags, 0x00, "libzmq sends MESSAGE as a data frame");
            assert_eq!(body.len(), MESSAGE_OVERHEAD + plain.len() - 1);
            let (got_flags, payload) = codec.open(body).unwrap();
            assert_eq!(got_flags, plain[0]);
            assert_eq!(payload, &plain[1..]);
            assert_eq!(codec.last_received_nonce(), *n);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Vector B: a libzmq 4.3.5 DEALER against our server

struct VectorB {
    server: CurveServer,
    blocks: Vec<Block>,
    rng: Script,
    welcome: Vec<u8>,
}

fn vector_b_after_hello(p: &'static dyn CryptoProvider) -> VectorB {
    let b = section("VECTOR B");
    let (_, server_kp) = long_term_keys();
    let mut rng = Script::new(&[
        &after(b, "s' = "),
        &after(b, "cookie key           = "),
        &after(b, "WELCOME nonce16      = "),
        &after(b, "cookie nonce16 = "),
    ]);
    let mut server = CurveServer::with_provider(p, &server_kp, &mut rng);
    assert_eq!(
        server.short_term_public().as_bytes().to_vec(),
        after(b, "S' = ")
    );
    let blocks = blocks(b);
    let (flags, hello) = frame_body(&block(&blocks, false, "HELLO").bytes);
    assert_eq!(flags, 0x04);
    assert_eq!(&hello[80..112], after(b, "C' = ").as_slice());
    let welcome = server.handle_hello(hello, &mut rng).unwrap();
    VectorB {
        server,
        blocks,
        rng,
        welcome,
    }
}

#[test]
fn vector_b_server_accepts_libzmq_hello_and_reproduces_welcome() {
    each_provider(|p| {
        let v = vector_b_after_hello(p);
        v.rng.assert_consumed();
        let (flags, recorded) = frame_body(&block(&v.blocks, true, "WELCOME").bytes);
        assert_eq!(flags, 0x04);
        assert_eq!(v.welcome, recorded);
    });
}

#[test]
fn vector_b_server_verifies_libzmq_initiate_including_the_vouch_server_key() {
    each_provider(|p| {
        let b = section("VECTOR B");
        let mut v = vector_b_after_hello(p);
        let (flags, initiate) = frame_body(&block(&v.blocks, false, "INITIATE").bytes);
        assert_eq!(flags, 0x06);
        // The cookie libzmq echoes starts with our cookie nonce suffix (it opens below).
        assert_eq!(&initiate[9..25], after(b, "cookie nonce16 = ").as_slice());
        let got = v.server.handle_initiate(initiate).unwrap();
        let (client_kp, server_kp) = long_term_keys();
        assert_eq!(got.client_key, *client_kp.public());
        let plain = after(b, "INITIATE plaintext = ");
        assert_eq!(got.metadata, &plain[128..]);
        // Our stricter vouch check passed: libzmq's vouch names the real S, as the file shows.
        let vouch = after(b, "vouch plaintext (C' | S) = ");
        assert_eq!(&vouch[32..], server_kp.public().as_bytes());
        assert_eq!(v.server.client_key(), Some(client_kp.public()));
    });
}

#[test]
fn vector_b_server_reproduces_ready_and_message_and_opens_libzmq_messages() {
    each_provider(|p| {
        let b = section("VECTOR B");
        let mut v = vector_b_after_hello(p);
        let (_, initiate) = frame_body(&block(&v.blocks, false, "INITIATE").bytes);
        v.server.handle_initiate(initiate).unwrap();

        // The reference server's READY metadata, recovered with an independent opener.
        let key = after(b, "crypto_box_beforenm(C', s') = ");
        let (_, recorded_ready) = frame_body(&block(&v.blocks, true, "READY").bytes);
        let meta = raw_open(
            &key,
            &short_nonce(b"CurveZMQREADY---", &recorded_ready[6..14]),
            &recorded_ready[14..],
        );
        let (ready, mut codec) = v.server.ready(&meta).unwrap();
        assert_eq!(ready, recorded_ready);
        assert_eq!(codec.last_received_nonce(), 2, "INITIATE's nonce");

        // Our first MESSAGE (nonce 2) matches the reference server's.
        let (flags, recorded_reply) = frame_body(&block(&v.blocks, true, "MESSAGE reply").bytes);
        assert_eq!(flags, 0x00);
        let plain = raw_open(
            &key,
            &short_nonce(b"CurveZMQMESSAGES", &recorded_reply[8..16]),
            &recorded_reply[16..],
        );
        let mut ours = Vec::new();
        codec.seal(plain[0], &plain[1..], &mut ours).unwrap();
        assert_eq!(ours, recorded_reply);

        // libzmq's MESSAGEs (nonces 3 and 4) open to the listed plaintexts.
        let plains = plaintext_lines(b, "plaintext");
        assert_eq!(plains.len(), 2);
        let received: Vec<&Block> = v
            .blocks
            .iter()
            .filter(|bl| !bl.sent_by_reference && bl.name == "MESSAGE")
            .collect();
        assert_eq!(received.len(), 2);
        for (bl, (c2s, n, plain)) in received.iter().zip(&plains) {
            assert!(*c2s);
            let (flags, body) = frame_body(&bl.bytes);
            assert_eq!(flags, 0x00);
            let mut buf = bytes::BytesMut::from(body);
            let got_flags = codec.open_bytes(&mut buf).unwrap();
            assert_eq!((got_flags, &buf[..]), (plain[0], &plain[1..]));
            assert_eq!(codec.last_received_nonce(), *n);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The libzmq ↔ libzmq capture: structure only

/// The `### DIR (N bytes)` stream of section 2.
fn stream(dir: &str) -> Vec<u8> {
    let head = format!("### {dir} (");
    let at = CAPTURE.find(&head).unwrap();
    let mut lines = CAPTURE[at..].lines();
    let first = lines.next().unwrap();
    let len: usize = first[head.len()..]
        .trim_end_matches(" bytes)")
        .parse()
        .unwrap();
    let bytes: Vec<u8> = lines
        .take_while(|l| is_hex(l.trim()))
        .flat_map(|l| unhex(l.trim()))
        .collect();
    assert_eq!(bytes.len(), len);
    bytes
}

/// Frames after the 64-byte greeting: (offset in stream, flags, body).
fn frames(stream: &[u8]) -> Vec<(usize, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 64;
    while at < stream.len() {
        let (flags, hdr, size) = frame_header(&stream[at..]);
        out.push((at, flags, stream[at + hdr..at + hdr + size].to_vec()));
        at += hdr + size;
    }
    assert_eq!(at, stream.len(), "stream ends on a frame boundary");
    out
}

#[test]
fn capture_chunks_reassemble_into_the_streams() {
    for dir in ["C->S", "S->C"] {
        let mut rebuilt = Vec::new();
        let lines: Vec<&str> = CAPTURE.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let Some(rest) = l.split_once("] ").map(|x| x.1) else {
                continue;
            };
            if !rest.starts_with(dir) {
                continue;
            }
            let off: usize = rest
                .split("off=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let len: usize = rest.split("len=").nth(1).unwrap().trim().parse().unwrap();
            assert_eq!(off, rebuilt.len());
            let chunk: Vec<u8> = lines[i + 1..]
                .iter()
                .take_while(|l| is_hex(l.trim()))
                .flat_map(|l| unhex(l.trim()))
                .collect();
            assert_eq!(chunk.len(), len);
            rebuilt.extend(chunk);
        }
        assert_eq!(rebuilt, stream(dir), "{dir}");
    }
}

#[test]
fn capture_greetings_are_libzmq_curve_greetings() {
    for (dir, padding) in [("C->S", 9u64), ("S->C", 1)] {
        let g = &stream(dir)[..64];
        assert_eq!(g[0], 0xff);
        assert_eq!(u64::from_be_bytes(g[1..9].try_into().unwrap()), padding);
        assert_eq!(g[9], 0x7f);
        assert_eq!(&g[10..12], &[3, 1]);
        assert_eq!(&g[12..17], b"CURVE");
        assert!(g[17..].iter().all(|&b| b == 0), "as-server 0, filler zero");
    }
}

#[test]
fn capture_client_frames_have_libzmq_structure_and_nonces() {
    let fs = frames(&stream("C->S"));
    let names: Vec<Option<Command>> = fs.iter().map(|f| Command::of(&f.2)).collect();
    assert_eq!(
        names,
        [
            Some(Command::Hello),
            Some(Command::Initiate),
            Some(Command::Message),
            Some(Command::Message),
            Some(Command::Message),
            Some(Command::Message),
            Some(Command::Message),
        ]
    );
    let (_, f, hello) = &fs[0];
    assert_eq!((*f, hello.len()), (0x04, HELLO_LEN));
    assert_eq!(&hello[6..8], &[1, 0]);
    assert!(
        hello[8..80].iter().all(|&b| b == 0),
        "libzmq pads with zeros"
    );
    assert_eq!(&hello[112..120], &1u64.to_be_bytes());
    let (_, f, initiate) = &fs[1];
    assert_eq!((*f, initiate.len()), (0x06, INITIATE_MIN_LEN + 43));
    assert_eq!(&initiate[105..113], &2u64.to_be_bytes());
    let payload_lens: Vec<usize> = fs[2..]
        .iter()
        .map(|f| f.2.len() - MESSAGE_OVERHEAD)
        .collect();
    assert_eq!(payload_lens, [5, 0, 300, 7, 7]);
    for (i, (_, f, body)) in fs[2..].iter().enumerate() {
        assert_eq!(*f, if body.len() > 255 { 0x02 } else { 0x00 });
        assert_eq!(&body[8..16], &(3 + i as u64).to_be_bytes());
    }
    check_annotations("### C->S", &fs);
}

#[test]
fn capture_server_frames_have_libzmq_structure_and_nonces() {
    let fs = frames(&stream("S->C"));
    let names: Vec<Option<Command>> = fs.iter().map(|f| Command::of(&f.2)).collect();
    assert_eq!(
        names,
        [
            Some(Command::Welcome),
            Some(Command::Ready),
            Some(Command::Message),
            Some(Command::Message),
            Some(Command::Message),
        ]
    );
    assert_eq!((fs[0].1, fs[0].2.len()), (0x04, WELCOME_LEN));
    // READY carries ROUTER's 35 metadata bytes (Socket-Type ROUTER, empty Identity).
    assert_eq!((fs[1].1, fs[1].2.len()), (0x04, READY_MIN_LEN + 35));
    assert_eq!(&fs[1].2[6..14], &1u64.to_be_bytes());
    for (i, (_, f, body)) in fs[2..].iter().enumerate() {
        assert_eq!(*f, 0x00);
        assert_eq!(body.len(), MESSAGE_OVERHEAD + 5);
        assert_eq!(&body[8..16], &(2 + i as u64).to_be_bytes());
    }
    check_annotations("### S->C\n", &fs);
}

/// Section 3's `@off flags=0xNN(..) size=N cmd=NAME` and `short nonce=` lines agree with our
/// parse of the stream.
fn check_annotations(header: &str, fs: &[(usize, u8, Vec<u8>)]) {
    let start = CAPTURE.rfind(header).unwrap();
    let text = &CAPTURE[start + header.len()..];
    let text = &text[..text.find("\n### ").unwrap_or(text.len())];
    let mut seen = 0;
    for line in text.lines().filter(|l| l.starts_with('@')) {
        let off: usize = line[1..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let flags = u8::from_str_radix(&line.split("flags=0x").nth(1).unwrap()[..2], 16).unwrap();
        let size: usize = line
            .split("size=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let cmd = line.split("cmd=").nth(1).unwrap().trim();
        let (f_off, f_flags, body) = &fs[seen];
        assert_eq!((off, flags, size), (*f_off, *f_flags, body.len()));
        assert_eq!(Command::of(body).unwrap().name(), cmd);
        seen += 1;
    }
    assert_eq!(seen, fs.len());
}

#[test]
fn capture_hello_opens_with_our_server_and_the_welcome_cookie_is_echoed() {
    each_provider(|p| {
        let (_, server_kp) = long_term_keys();
        let fs = frames(&stream("C->S"));
        // libzmq's HELLO passes every check of ours, the zero-signature one included.
        let mut server =
            CurveServer::with_provider(p, &server_kp, &mut ChaCha20Rng::seed_from_u64(9));
        let welcome = server
            .handle_hello(&fs[0].2, &mut ChaCha20Rng::seed_from_u64(10))
            .unwrap();
        assert_eq!(welcome.len(), WELCOME_LEN);

        // The recorded WELCOME opens with (C', s) (an independent opener): its cookie is what the
        // libzmq client echoed in INITIATE, and its S' is the annotated one.
        let sc = frames(&stream("S->C"));
        let c_short: [u8; 32] = fs[0].2[80..112].try_into().unwrap();
        let shared = server_kp
            .secret()
            .as_dalek()
            .diffie_hellman(&x25519_dalek::PublicKey::from(c_short));
        use crypto_secretbox::Kdf;
        let key = XSalsa20Poly1305::kdf(
            GenericArray::from_slice(shared.as_bytes()),
            &GenericArray::default(),
        );
        let mut nonce = b"WELCOME-".to_vec();
        nonce.extend_from_slice(&sc[0].2[8..24]);
        let plain = raw_open(&key, &nonce, &sc[0].2[24..]);
        assert_eq!(&plain[32..], &fs[1].2[9..105]);
        assert_eq!(&plain[..32], after(CAPTURE, "S'=").as_slice());
    });
}
