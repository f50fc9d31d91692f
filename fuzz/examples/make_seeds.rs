//! Writes the seed corpora under `fuzz/seeds/<target>/` from the recorded vectors in
//! `vectors/`, the sample MESSAGE records of `lokimq_fuzz_harness`, hand-written bt values and
//! OxenMQ conversations for the application target.
//!
//! Run from anywhere: `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`.
//! The output is deterministic; the seeds are small and committed.

use std::fs;
use std::path::{Path, PathBuf};

use lokimq_fuzz_harness::{AppPart, application_input, sample_records, seed_input};

const KAT: &str = include_str!("../../vectors/curve-kat.txt");
const OXENMQ_CLIENT: &str = include_str!("../../vectors/oxenmq-client-plain.txt");

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd hex: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The hex after `label =` on the first line starting with `label` (curve-kat.txt).
fn kat_field(label: &str) -> Vec<u8> {
    let line = KAT
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} in curve-kat.txt"));
    let value = line.split_once('=').expect("label = value").1;
    unhex(value.split_whitespace().next().expect("hex value"))
}

/// Every MESSAGE frame of one direction (`C->S` or `S->C`) of curve-kat.txt, concatenated.
fn kat_messages(dir: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut lines = KAT.lines();
    while let Some(l) = lines.next() {
        if l.starts_with(dir) && l.contains("MESSAGE") {
            let frame = lines.next().expect("frame line after a MESSAGE line");
            let hex = frame.split_once('=').expect("frame = hex").1;
            out.extend(unhex(hex));
        }
    }
    out
}

/// The OxenMQ → ROUTER byte stream of run A of oxenmq-client-plain.txt (a real OxenMQ client:
/// greeting, READY, HI, a request and a command), reassembled from its chunk log.
fn oxenmq_client_stream() -> Vec<u8> {
    let run = OXENMQ_CLIENT
        .split("######## Run B")
        .next()
        .expect("run A comes first");
    let mut out = Vec::new();
    let mut ours = false;
    for l in run.lines() {
        if let Some(rest) = l.strip_prefix("--- chunk ") {
            ours = rest.contains("OxenMQ -> ROUTER");
        } else if let Some(hex) = l.strip_prefix("  raw ")
            && ours
        {
            out.extend(unhex(hex));
        }
    }
    out
}

fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 9);
    if body.len() > 255 {
        v.push(flags | 0x02);
        v.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        v.push(flags);
        v.push(body.len() as u8);
    }
    v.extend_from_slice(body);
    v
}

fn message(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        v.extend(frame(u8::from(i + 1 < parts.len()), p));
    }
    v
}

/// OxenMQ traffic after a handshake: built-ins, commands of every access level, a request, a
/// bad request, a stray REPLY and an error word.
fn oxenmq_traffic() -> Vec<u8> {
    [
        message(&[b"HI"]),
        message(&[b"public.hello", b"x"]),
        message(&[b"public.echo", b"\x00tag", b"abc"]),
        message(&[b"public.echo"]),
        message(&[b"admin.echo", b"\x01tag"]),
        message(&[b"sn.echo", b"\x02tag"]),
        message(&[b"legacy.echo", b"\x03tag", b"x"]),
        message(&[b"nope.nope"]),
        message(&[b"REPLY", b"\x04tag", b"late"]),
        message(&[b"UNKNOWNCOMMAND", b"x.y"]),
        message(&[b"BYE"]),
        frame(0x04, b"\x04PING\x00\x1ehello"),
        frame(0x04, b"\x09SUBSCRIBEtopic"),
        frame(0x04, b"\x06CANCELtopic"),
        frame(0x04, b"\x03FOO"),
    ]
    .concat()
}

/// Sample records plus a replay (ctl 0x10) and a tampered record (ctl 0x40).
fn hostile_records() -> Vec<u8> {
    let mut v = sample_records();
    v.extend_from_slice(&[0x10, 0]);
    v.extend_from_slice(&[0x40, 5, b'e', b'v', b'i', b'l', b'!']);
    v
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    fs::create_dir_all(&d).expect("create seed dir");
    fs::write(d.join(name), bytes).expect("write seed");
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let null_greeting = unhex(
        "ff00000000000000017f03014e554c4c000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    );
    let curve_greeting = kat_field("client greeting");
    let hello = kat_field("HELLO frame");
    let welcome = kat_field("WELCOME frame");
    let initiate = kat_field("INITIATE frame");
    let ready = kat_field("READY frame");
    let c2s = kat_messages("C->S");
    let s2c = kat_messages("S->C");
    let oxen = oxenmq_client_stream();
    let null_ready_dealer = frame(
        0x04,
        b"\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00",
    );

    // greeting_framing: a split plan (count byte, distance bytes), then the stream.
    let t = "greeting_framing";
    write(
        dir.as_path(),
        t,
        "oxenmq-client",
        &[&[0u8][..], &oxen].concat(),
    );
    write(
        dir.as_path(),
        t,
        "oxenmq-client-chunked",
        &[&[3u8, 10, 54, 80][..], &oxen].concat(),
    );
    write(
        dir.as_path(),
        t,
        "curve-hello",
        &[&[1u8, 64][..], &curve_greeting, &hello].concat(),
    );
    let oversize = [
        &[0u8][..],
        &null_greeting,
        &null_ready_dealer,
        &[0x02, 0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c'],
        &[0x02, 0x40, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    write(dir.as_path(), t, "long-form-and-oversize", &oversize);

    // curve_server_handshake: header byte (stage | auth << 2 | chunk << 3), then the payload.
    let t = "curve_server_handshake";
    let kat_client = [&curve_greeting[..], &hello, &initiate, &c2s].concat();
    write(
        dir.as_path(),
        t,
        "raw-kat-client",
        &seed_input(0x00, &kat_client),
    );
    write(
        dir.as_path(),
        t,
        "after-hello-kat-initiate",
        &seed_input(0x01, &[&initiate[..], &c2s].concat()),
    );
    write(
        dir.as_path(),
        t,
        "handshaken-kat-messages",
        &seed_input(0x02, &c2s),
    );
    write(
        dir.as_path(),
        t,
        "after-hello-short-initiate",
        &seed_input(0x01, &frame(0x04, b"\x08INITIATEshort")),
    );
    write(
        dir.as_path(),
        t,
        "sealed",
        &seed_input(0x03, &sample_records()),
    );
    write(
        dir.as_path(),
        t,
        "sealed-auth-hostile",
        &seed_input(0x07, &hostile_records()),
    );
    write(
        dir.as_path(),
        t,
        "sealed-bytewise",
        &seed_input(0x0b, &sample_records()),
    );

    // curve_client_handshake: header byte (stage | queue << 2 | chunk << 3), then the payload.
    let t = "curve_client_handshake";
    let server_greeting = kat_field("server greeting");
    let kat_server = [&server_greeting[..], &welcome, &ready, &s2c].concat();
    write(
        dir.as_path(),
        t,
        "raw-kat-server",
        &seed_input(0x00, &kat_server),
    );
    write(
        dir.as_path(),
        t,
        "after-welcome-kat-ready",
        &seed_input(0x05, &[&ready[..], &s2c].concat()),
    );
    write(
        dir.as_path(),
        t,
        "after-welcome-error-400",
        &seed_input(0x01, &frame(0x04, b"\x05ERROR\x03400")),
    );
    write(
        dir.as_path(),
        t,
        "handshaken-kat-messages",
        &seed_input(0x02, &s2c),
    );
    write(
        dir.as_path(),
        t,
        "after-welcome-short-ready",
        &seed_input(0x01, &frame(0x04, b"\x05READYshort")),
    );
    write(
        dir.as_path(),
        t,
        "sealed",
        &seed_input(0x03, &sample_records()),
    );
    write(
        dir.as_path(),
        t,
        "sealed-queued-hostile",
        &seed_input(0x07, &hostile_records()),
    );

    // node_listener: header byte (curve | level << 1 | driven << 3 | (chunk - 1) << 4).
    let t = "node_listener";
    write(
        dir.as_path(),
        t,
        "plain-raw-oxenmq-none",
        &seed_input(0xf2, &oxen),
    );
    write(
        dir.as_path(),
        t,
        "plain-raw-oxenmq-denied",
        &seed_input(0x70, &oxen),
    );
    write(
        dir.as_path(),
        t,
        "plain-driven-basic",
        &seed_input(0xfc, &oxenmq_traffic()),
    );
    write(
        dir.as_path(),
        t,
        "plain-driven-admin",
        &seed_input(0x0e, &oxenmq_traffic()),
    );
    write(
        dir.as_path(),
        t,
        "curve-raw-kat",
        &seed_input(0xf7, &kat_client),
    );
    let mut sealed = Vec::new();
    for part in [&b"HI"[..], b"public.hello", b"admin.echo"] {
        sealed.extend_from_slice(&[0x00, part.len() as u8]);
        sealed.extend_from_slice(part);
    }
    sealed.extend(hostile_records());
    write(
        dir.as_path(),
        t,
        "curve-sealed-none",
        &seed_input(0xfb, &sealed),
    );
    write(
        dir.as_path(),
        t,
        "curve-sealed-admin",
        &seed_input(0x0f, &sealed),
    );
    bt_seeds(dir.as_path());
    application_seeds(dir.as_path());
    println!("seeds written to {}", dir.display());
}

/// bt_decode: canonical values of every kind and shape the typed decoders know, and one input
/// for each way of being invalid.
fn bt_seeds(dir: &Path) {
    let t = "bt_decode";
    let deep_ok = ["l".repeat(64), "e".repeat(64)].concat();
    let deep_bad = ["l".repeat(65), "e".repeat(65)].concat();
    let seeds: &[(&str, &[u8])] = &[
        ("string", b"5:hello"),
        ("empty-string", b"0:"),
        (
            "integers",
            b"li0ei-1ei9223372036854775807ei-9223372036854775808ei18446744073709551615ee",
        ),
        ("nested", b"d1:ai1e1:bl1:xe1:c3:abce"),
        (
            "typed",
            b"d1:ai7e1:bli-1ei2ee1:c2:hi1:dd1:xi1e1:yi0ee1:ed3:Newi5ee1:fli3eli1ei2eee1:gi-4ee",
        ),
        ("enum-unit", b"4:Unit"),
        ("enum-pair", b"d4:Pairli1e2:abee"),
        ("enum-named", b"d5:Namedd1:xi9e1:y3:\x00\x01\x02ee"),
        ("pairs", b"ll1:ai1eel1:bi-2eee"),
        (
            "oxenmq-control",
            b"d4:pubk32:abcdefghijklmnopqrstuvwxyz0123454:sent1:ye",
        ),
        ("deep-64", deep_ok.as_bytes()),
        ("bad-deep-65", deep_bad.as_bytes()),
        ("bad-leading-zero", b"i03e"),
        ("bad-negative-zero", b"i-0e"),
        ("bad-unsorted", b"d1:bi1e1:ai2ee"),
        ("bad-duplicate", b"d1:ai1e1:ai2ee"),
        ("bad-u64-overflow", b"i18446744073709551616e"),
        ("bad-trailing", b"i1ei2e"),
        ("bad-truncated", b"d1:al3:ab"),
        ("bad-length", b"99999999999999999999:x"),
    ];
    for (name, bytes) in seeds {
        write(dir, t, name, bytes);
    }
}

/// The peer's messages of an application seed: (wait first, parts).
type Conversation<'a> = &'a [(bool, &'a [AppPart<'a>])];

/// application: one conversation per setup (header bits: outgoing, CURVE, level, local SN, peer
/// SN, HI/HELLO, 7-byte pieces).
fn application_seeds(dir: &Path) {
    let t = "application";
    let b = AppPart::Bytes;
    let commands: Conversation<'_> = &[
        (false, &[b(b"pub.cmd"), b(b"x")]),
        (false, &[b(b"pub.req"), b(b"t1"), b(b"data")]),
        (false, &[b(b"basic.cmd")]),
        (false, &[b(b"basic.req"), b(b"t2")]),
        (false, &[b(b"admin.req"), b(b"t3")]),
        (false, &[b(b"sn.cmd")]),
        (false, &[b(b"sn.req"), b(b"t4")]),
        (false, &[b(b"lsn.req"), b(b"t5")]),
        (false, &[b(b"all.req"), b(b"t6")]),
        (false, &[b(b"old.req"), b(b"t7")]),
        (false, &[b(b"old.admin"), b(b"t8")]),
        (false, &[b(b"pub.req")]),
        (false, &[b(b"nope.cmd"), b(b"t9")]),
        (false, &[b(b"pub.call"), b(b"t10")]),
        (false, &[b(b"REPLY"), AppPart::Tag(0), b(b"answer")]),
        (false, &[b(b"REPLY"), AppPart::Tag(0), b(b"again")]),
        (false, &[b(b"REPLY")]),
        (false, &[b(b"HELLO")]),
        (false, &[b(b"UNKNOWNCOMMAND"), b(b"x.y")]),
        (true, &[b(b"BYE")]),
    ];
    let replies: Conversation<'_> = &[
        (false, &[b(b"REPLY"), AppPart::Tag(0), b(b"a"), b(b"b")]),
        (false, &[b(b"FORBIDDEN"), b(b"REPLY"), AppPart::Tag(1)]),
        (false, &[b(b"pub.call"), b(b"t1")]),
        (
            false,
            &[b(b"NOT_A_SERVICE_NODE"), b(b"REPLY"), AppPart::Tag(2)],
        ),
        (false, &[b(b"pub.cmd")]),
        (false, &[b(b"admin.req"), b(b"t2")]),
        (false, &[b(b"HI")]),
        (true, &[b(b"UNKNOWNCOMMAND"), b(b"peer.ask")]),
        (false, &[b(b"BYE")]),
        (false, &[b(b"pub.cmd")]),
    ];
    let seeds: &[(&str, u8, Conversation<'_>)] = &[
        ("in-null-basic", 0x48, commands),
        ("in-null-none-chunked", 0xc4, commands),
        ("in-curve-admin-sn", 0x7e, commands),
        ("in-curve-basic", 0x4a, commands),
        ("in-null-denied", 0x40, commands),
        ("in-null-no-hi", 0x0c, commands),
        ("out-null-none", 0x45, replies),
        ("out-curve-admin", 0x4f, replies),
        ("out-curve-none-sn-chunked", 0xf7, replies),
        ("out-null-no-hello", 0x05, replies),
    ];
    for (name, header, messages) in seeds {
        write(dir, t, name, &application_input(*header, messages));
    }
}
