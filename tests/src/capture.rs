//! Parser for the recorded OxenMQ conversations in `vectors/oxenmq-*.txt`.
//!
//! Each file holds one or more runs (`######## Run X: …`). A run has a "Sequence" (every ZMTP
//! greeting, READY, PING/PONG, application message and EOF, in arrival order, with the sending
//! party) and a "Chunk log" (every TCP read the relay saw, with its raw bytes). The byte stream
//! of each party is the concatenation of its chunks; [`stream_units`] cuts a stream back into
//! one range per sequence item.

use lokimq_core::zmtp::FrameDecoder;

/// What one sequence item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A 64-byte ZMTP greeting.
    Greeting(Vec<u8>),
    /// A READY command.
    Ready {
        /// Its Socket-Type property.
        socket_type: Vec<u8>,
        /// Its Identity property.
        identity: Vec<u8>,
    },
    /// A PING command.
    Ping {
        /// Its TTL (deciseconds).
        ttl: u16,
    },
    /// A PONG command.
    Pong,
    /// An application message (frames).
    Message(Vec<Vec<u8>>),
    /// The sender closed its end.
    Eof,
}

/// One sequence item.
#[derive(Debug, Clone)]
pub struct Item {
    /// The sending party's name (e.g. `OxenMQ`, `DEALER`).
    pub from: String,
    /// What it is.
    pub kind: ItemKind,
}

/// One recorded conversation.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's title (empty for single-run files).
    pub name: String,
    /// The sequence.
    pub items: Vec<Item>,
    /// `(from, bytes)` for each TCP read, in order.
    pub chunks: Vec<(String, Vec<u8>)>,
}

/// Decodes hex (panics on bad input: the vectors are fixed test data).
#[must_use]
pub fn unhex(s: &str) -> Vec<u8> {
    lokimq_core::encoding::hex::decode(s).unwrap_or_else(|e| panic!("{e}: {s:?}"))
}

/// Parses a `"text with \xNN escapes"` or `hex:...` value at the start of `s`; returns it and
/// the rest of the string.
fn parse_value(s: &str) -> (Vec<u8>, &str) {
    if let Some(rest) = s.strip_prefix("hex:") {
        let end = rest
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len());
        return (unhex(&rest[..end]), &rest[end..]);
    }
    let rest = s
        .strip_prefix('"')
        .unwrap_or_else(|| panic!("value expected: {s}"));
    let bytes = rest.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match bytes[i] {
            b'"' => return (out, &rest[i + 1..]),
            b'\\' => match bytes[i + 1] {
                b'x' => {
                    out.push(u8::from_str_radix(&rest[i + 2..i + 4], 16).expect("hex escape"));
                    i += 4;
                }
                c => {
                    out.push(c);
                    i += 2;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn parse_list(s: &str) -> Vec<Vec<u8>> {
    let mut rest = s.strip_prefix('[').expect("[");
    let mut parts = Vec::new();
    loop {
        let (v, r) = parse_value(rest);
        parts.push(v);
        if let Some(r) = r.strip_prefix(", ") {
            rest = r;
        } else {
            assert!(r.starts_with(']'), "list end: {r}");
            return parts;
        }
    }
}

fn parse_item(line: &str) -> Option<Item> {
    let l = line.trim_start();
    let (num, rest) = l.split_once("  ")?;
    num.parse::<u32>().ok()?;
    let (from, rest) = rest.split_once(" -> ")?;
    let (_to, what) = rest.split_once("  ")?;
    let what = what.trim();
    let kind = if let Some(g) = what.strip_prefix("ZMTP greeting ") {
        ItemKind::Greeting(unhex(g.split(' ').next().expect("greeting hex")))
    } else if let Some(r) = what.strip_prefix("ZMTP READY Socket-Type=") {
        let (socket_type, r) = parse_value(r);
        let r = r.strip_prefix(", Identity=").expect("Identity");
        let (identity, _) = parse_value(r);
        ItemKind::Ready {
            socket_type,
            identity,
        }
    } else if let Some(r) = what.strip_prefix("ZMTP PING ttl=") {
        ItemKind::Ping {
            ttl: r
                .split(' ')
                .next()
                .and_then(|t| t.parse().ok())
                .expect("ttl"),
        }
    } else if what.starts_with("ZMTP PONG") {
        ItemKind::Pong
    } else if what.starts_with("TCP EOF") {
        ItemKind::Eof
    } else if what.starts_with('[') {
        ItemKind::Message(parse_list(what))
    } else {
        panic!("unknown sequence item: {what}");
    };
    Some(Item {
        from: from.to_string(),
        kind,
    })
}

/// Parses every run of a capture file.
#[must_use]
pub fn parse_runs(text: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let segments: Vec<&str> = if text.contains("######## Run") {
        text.split("######## Run").skip(1).collect()
    } else {
        vec![text]
    };
    for seg in segments {
        let name = seg.lines().next().unwrap_or("").trim().to_string();
        let seq_start = seg.find("Sequence (").expect("Sequence");
        let log_start = seg.find("Chunk log:").expect("Chunk log");
        let items: Vec<Item> = seg[seq_start..log_start]
            .lines()
            .skip(1)
            .filter_map(parse_item)
            .collect();
        let mut chunks: Vec<(String, Vec<u8>)> = Vec::new();
        for line in seg[log_start..].lines() {
            if let Some(h) = line.strip_prefix("--- chunk ") {
                let from = h
                    .split("  ")
                    .nth(1)
                    .and_then(|p| p.split(" -> ").next())
                    .expect("chunk header");
                chunks.push((from.to_string(), Vec::new()));
            } else if let Some(raw) = line.trim_start().strip_prefix("raw ") {
                chunks
                    .last_mut()
                    .expect("raw line after a chunk header")
                    .1
                    .extend(unhex(raw.trim()));
            }
        }
        runs.push(Run {
            name,
            items,
            chunks,
        });
    }
    runs
}

impl Run {
    /// The byte stream `party` sent.
    #[must_use]
    pub fn stream_from(&self, party: &str) -> Vec<u8> {
        self.chunks
            .iter()
            .filter(|(f, _)| f == party)
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }

    /// The items `party` sent, in order.
    pub fn items_from<'a>(&'a self, party: &'a str) -> impl Iterator<Item = &'a ItemKind> + 'a {
        self.items
            .iter()
            .filter(move |i| i.from == party)
            .map(|i| &i.kind)
    }

    /// The messages `party` sent, in order.
    #[must_use]
    pub fn messages_from(&self, party: &str) -> Vec<Vec<Vec<u8>>> {
        self.items_from(party)
            .filter_map(|k| match k {
                ItemKind::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Cuts a stream into the byte ranges of its items: the greeting, then one range per command
/// frame or complete multipart message.
#[must_use]
pub fn stream_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut units = vec![&stream[..64]];
    let mut input = &stream[64..];
    let mut d = FrameDecoder::new(None);
    let mut start = 64;
    while let Some(f) = d.decode(&mut input).expect("frame") {
        if f.command || !f.more {
            let end = stream.len() - input.len();
            units.push(&stream[start..end]);
            start = end;
        }
    }
    assert_eq!(start, stream.len(), "the stream ends on a unit boundary");
    units
}
