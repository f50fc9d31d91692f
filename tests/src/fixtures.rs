//! Registries and handlers shared by the scenario tests.
//!
//! [`conformance_registry`] has the categories of the OxenMQ 1.2.16 conformance server the
//! `vectors/oxenmq-*.txt` captures were recorded against:
//!
//! | category | access | commands |
//! |---|---|---|
//! | `public` | none | request `echo` (replies with its data), command `hello` (`send_back` `public.hi` with its data), request `whoami` (replies `[hex pubkey or "", auth level, "1"/"0" caller is SN]`) |
//! | `basic` | basic | request `echo` |
//! | `admin` | admin | request `echo` |
//! | `sn` | remote_sn | request `echo`, command `hello` |
//! | `local` | local_sn | request `echo` |
//!
//! plus the alias `legacy.echo` → `public.echo`.

use bytes::Bytes;
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::node::{Config, Message};
use lokimq_core::registry::CategoryOptions;
use lokimq_core::registry::{Registry, RegistryBuilder};
use lokimq_core::time::Duration;

use crate::sim::{Ctx, NodeSpec};

/// The conformance server's registry (see the module docs).
#[must_use]
pub fn conformance_registry() -> Registry {
    conformance_builder().build()
}

/// The conformance registry as a builder, to add more.
#[must_use]
pub fn conformance_builder() -> RegistryBuilder {
    let mut b = RegistryBuilder::new();
    b.add_category("public", CategoryOptions::new(Access::default()))
        .expect("valid category");
    b.add_request_command("public", "echo")
        .expect("new command");
    b.add_command("public", "hello").expect("new command");
    b.add_request_command("public", "whoami")
        .expect("new command");
    b.add_category("basic", CategoryOptions::new(AuthLevel::Basic))
        .expect("valid category");
    b.add_request_command("basic", "echo").expect("new command");
    b.add_category("admin", CategoryOptions::new(AuthLevel::Admin))
        .expect("valid category");
    b.add_request_command("admin", "echo").expect("new command");
    b.add_category(
        "sn",
        CategoryOptions::new(Access {
            auth: AuthLevel::None,
            remote_sn: true,
            local_sn: false,
        }),
    )
    .expect("valid category");
    b.add_request_command("sn", "echo").expect("new command");
    b.add_command("sn", "hello").expect("new command");
    b.add_category(
        "local",
        CategoryOptions::new(Access {
            auth: AuthLevel::None,
            remote_sn: false,
            local_sn: true,
        }),
    )
    .expect("valid category");
    b.add_request_command("local", "echo").expect("new command");
    b.add_command_alias("legacy.echo", "public.echo")
        .expect("valid alias");
    b
}

/// Replies with the message's data.
pub fn echo(ctx: &mut Ctx, m: &Message) {
    ctx.reply(m, m.data.clone());
}

/// `send_back("public.hi", data)`.
pub fn hello(ctx: &mut Ctx, m: &Message) {
    ctx.send_back(m, "public.hi", m.data.clone());
}

/// Replies `[hex pubkey or "", auth level, "1"/"0"]`.
pub fn whoami(ctx: &mut Ctx, m: &Message) {
    let pk = m.conn.pubkey().map(|k| k.to_hex()).unwrap_or_default();
    let sn = if m.access.remote_sn { "1" } else { "0" };
    ctx.reply(
        m,
        vec![
            Bytes::from(pk.into_bytes()),
            Bytes::from_static(m.access.auth.as_str().as_bytes()),
            Bytes::from_static(sn.as_bytes()),
        ],
    );
}

/// A node spec with the conformance registry and its handlers.
#[must_use]
pub fn conformance_node(config: Config) -> NodeSpec {
    NodeSpec::new(config, conformance_registry())
        .handler("public.echo", echo)
        .handler("public.hello", hello)
        .handler("public.whoami", whoami)
        .handler("basic.echo", echo)
        .handler("admin.echo", echo)
        .handler("sn.echo", echo)
        .handler("sn.hello", hello)
        .handler("local.echo", echo)
}

/// OxenMQ's defaults with `workers` general workers and no heartbeats (so that
/// `run_until_idle` terminates).
#[must_use]
pub fn quiet_config(workers: u16) -> Config {
    let mut c = Config::new(workers);
    c.heartbeat_interval = Duration::ZERO;
    c
}

/// Frames from string literals.
#[must_use]
pub fn strs(parts: &[&str]) -> Vec<Bytes> {
    crate::sim::frames(parts)
}
