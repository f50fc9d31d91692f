//! The command registry: categories, commands, request commands and aliases.
//!
//! Commands are named `category.command` on the wire. A category carries the [`Access`] its
//! commands require plus its scheduling parameters (reserved threads, queue limit); a command is
//! either plain or a *request* command (its first data frame is a reply tag). An alias rewrites an
//! incoming name to another `category.command` before lookup and before the access check, so the
//! target's category decides access.
//!
//! Registration happens on a [`RegistryBuilder`]; [`RegistryBuilder::build`] freezes it into an
//! immutable [`Registry`] that the node owns from the start. OxenMQ's "Cannot add a category /
//! command / command alias after calling \`start()\`" errors therefore do not exist here: once the
//! node is running there is no builder left to add to.
//!
//! Name validation keeps OxenMQ's limits, check order and exact error texts ([`RegistryError`]'s
//! `Display`). Behaviour kept from OxenMQ on purpose:
//! - a command name may contain dots (`public.client.pubkey`) and may even be empty (then `cat.`
//!   is a valid command); lookup splits at the *first* dot, which is unambiguous because category
//!   names cannot contain dots;
//! - an alias's `from` need not contain a dot, and its target need not exist yet (or ever): a
//!   dangling alias simply resolves to an unknown command;
//! - aliases apply once: the rewritten name is looked up directly, never re-aliased.
//!
//! Where this registry is stricter than OxenMQ (each with its own error):
//! - an alias whose `from` is longer than 251 bytes is refused: lookup rejects such names before
//!   consulting aliases, so OxenMQ would accept the alias and never use it;
//! - at most 65 535 categories and 65 535 commands, so ids fit their `u16` without wrapping.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::auth::Access;
use crate::ids::{CategoryId, CommandId};
pub use crate::sched::QueueLimit;

/// Longest category name, in bytes.
pub const MAX_CATEGORY_LENGTH: usize = 50;
/// Longest command name (the part after the category's dot), in bytes.
pub const MAX_COMMAND_LENGTH: usize = 200;
/// Longest `category.command` accepted from the wire (50 + 1 + 200 bytes).
pub const MAX_FULL_COMMAND_LENGTH: usize = MAX_CATEGORY_LENGTH + 1 + MAX_COMMAND_LENGTH;
/// Most categories, and most commands, one registry can hold.
pub const MAX_ENTRIES: usize = u16::MAX as usize;

/// Why a registration was refused. Display texts are OxenMQ's, byte for byte, except for the
/// variants OxenMQ does not have (marked below).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The category name is longer than [`MAX_CATEGORY_LENGTH`] bytes.
    #[error("Invalid category name `{name}': name too long (> {MAX_CATEGORY_LENGTH})")]
    CategoryNameTooLong {
        /// The refused name.
        name: String,
    },
    /// The category name is empty or contains a `.`.
    #[error("Invalid category name `{name}'")]
    InvalidCategoryName {
        /// The refused name.
        name: String,
    },
    /// A category with this name already exists.
    #[error("Unable to add category `{name}': that category already exists")]
    DuplicateCategory {
        /// The refused name.
        name: String,
    },
    /// The registry already holds [`MAX_ENTRIES`] categories (not in OxenMQ).
    #[error("Unable to add category `{name}': too many categories (limit {MAX_ENTRIES})")]
    TooManyCategories {
        /// The refused name.
        name: String,
    },
    /// The command name is longer than [`MAX_COMMAND_LENGTH`] bytes.
    #[error("Invalid command name `{name}': name too long (> {MAX_COMMAND_LENGTH})")]
    CommandNameTooLong {
        /// The refused command name (without the category).
        name: String,
    },
    /// The command's category has not been added.
    #[error("Cannot add a command to unknown category `{category}'")]
    UnknownCategory {
        /// The category name given.
        category: String,
    },
    /// An alias with the command's full name exists, so the command could never be reached.
    #[error("Cannot add command `{full_name}': a command alias with that name is already defined")]
    CommandShadowsAlias {
        /// `category.command`.
        full_name: String,
    },
    /// The category already has a command with this name.
    #[error("Cannot add command `{full_name}': that command already exists")]
    DuplicateCommand {
        /// `category.command`.
        full_name: String,
    },
    /// The registry already holds [`MAX_ENTRIES`] commands (not in OxenMQ).
    #[error("Cannot add command `{full_name}': too many commands (limit {MAX_ENTRIES})")]
    TooManyCommands {
        /// `category.command`.
        full_name: String,
    },
    /// The alias name is empty.
    #[error("Cannot add an alias for empty command")]
    EmptyAlias,
    /// The alias name starts with a `.`.
    #[error("Invalid command alias `{from}'")]
    InvalidAlias {
        /// The refused alias name.
        from: String,
    },
    /// The alias target has no `.`, or starts with one.
    #[error("Invalid command alias target `{to}'")]
    InvalidAliasTarget {
        /// The refused target.
        to: String,
    },
    /// The alias name is the full name of an existing command.
    #[error("Invalid command alias: `{from}' would mask an existing command")]
    AliasMasksCommand {
        /// The refused alias name.
        from: String,
    },
    /// The alias name is longer than [`MAX_FULL_COMMAND_LENGTH`] bytes, so it could never match
    /// (not in OxenMQ, which accepts it and never uses it).
    #[error("Invalid command alias `{from}': name too long (> {MAX_FULL_COMMAND_LENGTH})")]
    AliasTooLong {
        /// The refused alias name.
        from: String,
    },
    /// An alias with this name already exists.
    #[error("Cannot add command alias `{from}': that alias already exists")]
    DuplicateAlias {
        /// The refused alias name.
        from: String,
    },
}

/// Why an incoming command name did not resolve.
///
/// Every variant is answered on the wire the same way: `UNKNOWNCOMMAND` followed by the command
/// frame exactly as received (before alias rewriting); see [`LookupError::wire_word`]. The
/// variants exist for logging and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The name is longer than [`MAX_FULL_COMMAND_LENGTH`] bytes (checked before aliases).
    #[error("command too long ({len} bytes > {MAX_FULL_COMMAND_LENGTH})")]
    TooLong {
        /// Length of the received name.
        len: usize,
    },
    /// The (rewritten) name has no `.` (this includes the empty name).
    #[error("expected <category>.<command>: no dot")]
    MissingDot,
    /// The (rewritten) name starts with a `.`, so its category is empty.
    #[error("expected <category>.<command>: empty category")]
    LeadingDot,
    /// No category has the name before the first dot.
    #[error("unknown command category")]
    UnknownCategory,
    /// The category exists but has no command with the name after the first dot.
    #[error("unknown command")]
    UnknownCommand,
}

impl LookupError {
    /// The error word sent back for every lookup failure: `"UNKNOWNCOMMAND"`.
    #[must_use]
    pub const fn wire_word(self) -> &'static str {
        "UNKNOWNCOMMAND"
    }
}

/// A command a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resolved {
    /// The command (after alias rewriting); its name is [`Command::full_name`].
    pub command: CommandId,
    /// The command's category, which decides access.
    pub category: CategoryId,
    /// Whether the command is a request command (its first data frame is a reply tag).
    pub is_request: bool,
}

/// A registered category, as frozen in a [`Registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    id: CategoryId,
    name: Box<str>,
    access: Access,
    reserved_threads: u16,
    max_queue: QueueLimit,
    /// The category's commands in registration (= id) order.
    command_ids: Box<[CommandId]>,
    /// Command name → id, sorted by name bytes for binary search.
    index: Box<[(Box<str>, CommandId)]>,
}

impl Category {
    /// This category's id.
    #[must_use]
    pub fn id(&self) -> CategoryId {
        self.id
    }

    /// The category name (the part before the dot).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What a caller needs to run this category's commands.
    #[must_use]
    pub fn access(&self) -> Access {
        self.access
    }

    /// Worker threads kept available for this category beyond the general pool.
    #[must_use]
    pub fn reserved_threads(&self) -> u16 {
        self.reserved_threads
    }

    /// How many of this category's commands may wait for a worker.
    #[must_use]
    pub fn max_queue(&self) -> QueueLimit {
        self.max_queue
    }

    /// The category's commands, in id order.
    #[must_use]
    pub fn command_ids(&self) -> &[CommandId] {
        &self.command_ids
    }

    fn find(&self, name: &[u8]) -> Option<CommandId> {
        self.index
            .binary_search_by(|(k, _)| k.as_bytes().cmp(name))
            .ok()
            .map(|i| self.index[i].1)
    }
}

/// A registered command, as frozen in a [`Registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    id: CommandId,
    category: CategoryId,
    is_request: bool,
    full_name: Box<str>,
    /// Byte offset of the command name inside `full_name` (after the category's dot).
    name_start: usize,
}

impl Command {
    /// This command's id.
    #[must_use]
    pub fn id(&self) -> CommandId {
        self.id
    }

    /// The command name without its category (may itself contain dots).
    #[must_use]
    pub fn name(&self) -> &str {
        // `name_start` is just past the ASCII dot `build` put there, so it is a char boundary.
        &self.full_name[self.name_start..]
    }

    /// `category.command`, the name a peer sends.
    #[must_use]
    pub fn full_name(&self) -> &str {
        &self.full_name
    }

    /// The command's category.
    #[must_use]
    pub fn category(&self) -> CategoryId {
        self.category
    }

    /// Whether this is a request command (its first data frame is a reply tag).
    #[must_use]
    pub fn is_request(&self) -> bool {
        self.is_request
    }
}

#[derive(Debug, Clone)]
struct CategoryDraft {
    name: String,
    access: Access,
    reserved_threads: u16,
    max_queue: QueueLimit,
    commands: BTreeMap<String, CommandId>,
}

/// How a category is added ([`RegistryBuilder::add_category`]): who may call its commands, the
/// workers kept for it, and how many of its commands may wait. An [`AuthLevel`] or an
/// [`Access`] converts into options with OxenMQ's defaults (no reserved threads, a queue of
/// [`QueueLimit::OXENMQ_DEFAULT`]).
///
/// ```
/// use lokimq_core::auth::AuthLevel;
/// use lokimq_core::registry::{CategoryOptions, QueueLimit};
///
/// let opts = CategoryOptions::new(AuthLevel::Basic)
///     .reserved_threads(2)
///     .max_queue(QueueLimit::Unlimited);
/// assert_eq!(opts.max_queue, QueueLimit::Unlimited);
/// ```
///
/// [`AuthLevel`]: crate::auth::AuthLevel
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CategoryOptions {
    /// What a caller needs for every command in the category.
    pub access: Access,
    /// Workers kept for this category on top of the general pool, so it keeps running when the
    /// pool is busy.
    pub reserved_threads: u16,
    /// How many of its commands may wait for a worker; beyond that they are dropped.
    pub max_queue: QueueLimit,
}

impl CategoryOptions {
    /// `access` with OxenMQ's defaults: no reserved threads, a queue of 200.
    #[must_use]
    pub fn new(access: impl Into<Access>) -> Self {
        Self {
            access: access.into(),
            reserved_threads: 0,
            max_queue: QueueLimit::OXENMQ_DEFAULT,
        }
    }

    /// Sets the reserved threads.
    #[must_use]
    pub const fn reserved_threads(mut self, n: u16) -> Self {
        self.reserved_threads = n;
        self
    }

    /// Sets the queue limit.
    #[must_use]
    pub const fn max_queue(mut self, limit: QueueLimit) -> Self {
        self.max_queue = limit;
        self
    }
}

impl From<Access> for CategoryOptions {
    fn from(access: Access) -> Self {
        Self::new(access)
    }
}

impl From<crate::auth::AuthLevel> for CategoryOptions {
    fn from(level: crate::auth::AuthLevel) -> Self {
        Self::new(level)
    }
}

#[derive(Debug, Clone)]
struct CommandDraft {
    category: CategoryId,
    name: String,
    is_request: bool,
}

/// Collects categories, commands and aliases before the node starts; [`build`](Self::build)
/// freezes them.
///
/// ```
/// use lokimq_core::auth::{Access, AuthLevel};
/// use lokimq_core::registry::{CategoryOptions, QueueLimit, RegistryBuilder};
///
/// let mut builder = RegistryBuilder::new();
/// builder
///     .add_category("public", AuthLevel::None)?
///     .command("hello")?
///     .request_command("client.pubkey")?;
/// let sn = CategoryOptions::new(Access::new(AuthLevel::None, true, false))
///     .reserved_threads(2)
///     .max_queue(QueueLimit::Unlimited);
/// builder.add_category("sn", sn)?;
/// builder.add_request_command("sn", "ping")?;
/// builder.add_command_alias("ping", "sn.ping")?;
/// let registry = builder.build();
///
/// let found = registry.lookup(b"ping")?;
/// assert_eq!(registry.command(found.command).full_name(), "sn.ping");
/// assert!(found.is_request);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RegistryBuilder {
    categories: Vec<CategoryDraft>,
    category_ids: BTreeMap<String, CategoryId>,
    commands: Vec<CommandDraft>,
    aliases: BTreeMap<String, String>,
}

impl RegistryBuilder {
    /// An empty builder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a category and returns a helper that adds commands to it, so registrations chain:
    /// `builder.add_category("x", AuthLevel::Basic)?.command("a")?.request_command("b")?`.
    ///
    /// `opts` is a [`CategoryOptions`], or an [`Access`]/[`AuthLevel`](crate::auth::AuthLevel)
    /// for OxenMQ's defaults. The name must be 1–50 bytes without a `.`, and new.
    pub fn add_category(
        &mut self,
        name: &str,
        opts: impl Into<CategoryOptions>,
    ) -> Result<CategoryHelper<'_>, RegistryError> {
        let opts = opts.into();
        if name.len() > MAX_CATEGORY_LENGTH {
            return Err(RegistryError::CategoryNameTooLong {
                name: name.to_string(),
            });
        }
        if name.is_empty() || name.contains('.') {
            return Err(RegistryError::InvalidCategoryName {
                name: name.to_string(),
            });
        }
        if self.category_ids.contains_key(name) {
            return Err(RegistryError::DuplicateCategory {
                name: name.to_string(),
            });
        }
        let id =
            next_id(self.categories.len()).ok_or_else(|| RegistryError::TooManyCategories {
                name: name.to_string(),
            })?;
        let id = CategoryId(id);
        self.category_ids.insert(name.to_string(), id);
        self.categories.push(CategoryDraft {
            name: name.to_string(),
            access: opts.access,
            reserved_threads: opts.reserved_threads,
            max_queue: opts.max_queue,
            commands: BTreeMap::new(),
        });
        Ok(CategoryHelper { builder: self, id })
    }

    /// Adds a plain command to an existing category.
    ///
    /// The name may be up to 200 bytes and may contain dots; it must be new within the category
    /// and `category.name` must not already be an alias.
    pub fn add_command(&mut self, category: &str, name: &str) -> Result<CommandId, RegistryError> {
        self.insert_command(category, name, false)
    }

    /// Adds a request command (its first data frame is the reply tag) to an existing category.
    /// Same rules as [`add_command`](Self::add_command).
    pub fn add_request_command(
        &mut self,
        category: &str,
        name: &str,
    ) -> Result<CommandId, RegistryError> {
        self.insert_command(category, name, true)
    }

    /// Makes `from` an alias of `to` (`category.command`): an incoming `from` is looked up, and
    /// access-checked, as `to`.
    ///
    /// `from` must be non-empty, must not start with a `.`, must not name an existing command
    /// and must be new; it need not contain a dot. `to` must contain a dot, not at its start; it
    /// does not have to exist (yet).
    pub fn add_command_alias(&mut self, from: &str, to: &str) -> Result<(), RegistryError> {
        if from.is_empty() {
            return Err(RegistryError::EmptyAlias);
        }
        let from_dot = from.find('.');
        if from_dot == Some(0) {
            return Err(RegistryError::InvalidAlias {
                from: from.to_string(),
            });
        }
        match to.find('.') {
            Some(0) | None => {
                return Err(RegistryError::InvalidAliasTarget { to: to.to_string() });
            }
            Some(_) => {}
        }
        if let Some(dot) = from_dot {
            // `dot` indexes an ASCII byte, so both slices fall on char boundaries.
            let masks = self.category_ids.get(&from[..dot]).is_some_and(|cat| {
                self.categories[cat.index()]
                    .commands
                    .contains_key(&from[dot + 1..])
            });
            if masks {
                return Err(RegistryError::AliasMasksCommand {
                    from: from.to_string(),
                });
            }
        }
        if from.len() > MAX_FULL_COMMAND_LENGTH {
            return Err(RegistryError::AliasTooLong {
                from: from.to_string(),
            });
        }
        if self.aliases.contains_key(from) {
            return Err(RegistryError::DuplicateAlias {
                from: from.to_string(),
            });
        }
        self.aliases.insert(from.to_string(), to.to_string());
        Ok(())
    }

    /// Freezes the registrations into an immutable [`Registry`].
    #[must_use]
    pub fn build(self) -> Registry {
        let commands: Box<[Command]> = self
            .commands
            .into_iter()
            .zip(0u16..)
            .map(|(draft, id)| {
                let category = &self.categories[draft.category.index()].name;
                Command {
                    id: CommandId(id),
                    category: draft.category,
                    is_request: draft.is_request,
                    full_name: format!("{category}.{}", draft.name).into_boxed_str(),
                    name_start: category.len() + 1,
                }
            })
            .collect();
        let categories: Box<[Category]> = self
            .categories
            .into_iter()
            .zip(0u16..)
            .map(|(draft, id)| {
                let mut command_ids: Vec<CommandId> = draft.commands.values().copied().collect();
                command_ids.sort_unstable();
                Category {
                    id: CategoryId(id),
                    access: draft.access,
                    reserved_threads: draft.reserved_threads,
                    max_queue: draft.max_queue,
                    command_ids: command_ids.into_boxed_slice(),
                    // BTreeMap<String, _> iterates in byte order, which is what lookup searches by.
                    index: draft
                        .commands
                        .into_iter()
                        .map(|(name, id)| (name.into_boxed_str(), id))
                        .collect(),
                    name: draft.name.into_boxed_str(),
                }
            })
            .collect();
        let total_reserved_threads = categories
            .iter()
            .map(|c| u32::from(c.reserved_threads))
            // Cannot saturate: at most 65 535 categories × 65 535 threads < u32::MAX.
            .fold(0u32, u32::saturating_add);
        Registry {
            category_index: self
                .category_ids
                .into_iter()
                .map(|(name, id)| (name.into_boxed_str(), id))
                .collect(),
            aliases: self
                .aliases
                .into_iter()
                .map(|(from, to)| (from.into_boxed_str(), to.into_boxed_str()))
                .collect(),
            categories,
            commands,
            total_reserved_threads,
        }
    }

    fn insert_command(
        &mut self,
        category: &str,
        name: &str,
        is_request: bool,
    ) -> Result<CommandId, RegistryError> {
        check_command_length(name)?;
        let Some(&cat) = self.category_ids.get(category) else {
            return Err(RegistryError::UnknownCategory {
                category: category.to_string(),
            });
        };
        self.insert_into(cat, name, is_request)
    }

    /// The checks after the length and category checks, in OxenMQ's order.
    fn insert_into(
        &mut self,
        cat: CategoryId,
        name: &str,
        is_request: bool,
    ) -> Result<CommandId, RegistryError> {
        let draft = &self.categories[cat.index()];
        let full_name = format!("{}.{name}", draft.name);
        if self.aliases.contains_key(&full_name) {
            return Err(RegistryError::CommandShadowsAlias { full_name });
        }
        if draft.commands.contains_key(name) {
            return Err(RegistryError::DuplicateCommand { full_name });
        }
        let Some(id) = next_id(self.commands.len()) else {
            return Err(RegistryError::TooManyCommands { full_name });
        };
        let id = CommandId(id);
        self.categories[cat.index()]
            .commands
            .insert(name.to_string(), id);
        self.commands.push(CommandDraft {
            category: cat,
            name: name.to_string(),
            is_request,
        });
        Ok(id)
    }
}

fn check_command_length(name: &str) -> Result<(), RegistryError> {
    if name.len() > MAX_COMMAND_LENGTH {
        return Err(RegistryError::CommandNameTooLong {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The id for the entry after `len` existing ones, or `None` once [`MAX_ENTRIES`] are taken.
fn next_id(len: usize) -> Option<u16> {
    if len >= MAX_ENTRIES {
        return None;
    }
    u16::try_from(len).ok()
}

/// Chains command registrations onto one category; made by [`RegistryBuilder::add_category`].
#[derive(Debug)]
pub struct CategoryHelper<'a> {
    builder: &'a mut RegistryBuilder,
    id: CategoryId,
}

impl CategoryHelper<'_> {
    /// The category being added to.
    #[must_use]
    pub fn id(&self) -> CategoryId {
        self.id
    }

    /// Adds a plain command to this category (see [`RegistryBuilder::add_command`]).
    pub fn command(self, name: &str) -> Result<Self, RegistryError> {
        self.add(name, false)
    }

    /// Adds a request command to this category (see [`RegistryBuilder::add_request_command`]).
    pub fn request_command(self, name: &str) -> Result<Self, RegistryError> {
        self.add(name, true)
    }

    fn add(self, name: &str, is_request: bool) -> Result<Self, RegistryError> {
        check_command_length(name)?;
        self.builder.insert_into(self.id, name, is_request)?;
        Ok(self)
    }
}

/// The frozen command registry: immutable, cheap to query, no hashing.
///
/// Ids are dense: categories are `0..category_count()` and commands `0..command_count()`, in
/// registration order. Lookups are binary searches over sorted boxed slices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    categories: Box<[Category]>,
    commands: Box<[Command]>,
    /// Category name → id, sorted by name bytes.
    category_index: Box<[(Box<str>, CategoryId)]>,
    /// Alias → target, sorted by alias bytes.
    aliases: Box<[(Box<str>, Box<str>)]>,
    total_reserved_threads: u32,
}

impl Registry {
    /// A new, empty [`RegistryBuilder`].
    #[must_use]
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::new()
    }

    /// Resolves a command frame received from a peer, as OxenMQ's `get_command` does:
    /// 1. more than [`MAX_FULL_COMMAND_LENGTH`] bytes → [`LookupError::TooLong`];
    /// 2. an alias for the exact bytes rewrites them (once; the target is not re-aliased);
    /// 3. split at the first `.`: none → [`LookupError::MissingDot`], at the start →
    ///    [`LookupError::LeadingDot`];
    /// 4. unknown category → [`LookupError::UnknownCategory`], unknown command in it →
    ///    [`LookupError::UnknownCommand`].
    ///
    /// Names are compared as bytes, so non-UTF-8 input is simply unknown.
    #[must_use = "a failed lookup must be answered with UNKNOWNCOMMAND"]
    pub fn lookup(&self, command: &[u8]) -> Result<Resolved, LookupError> {
        if command.len() > MAX_FULL_COMMAND_LENGTH {
            return Err(LookupError::TooLong { len: command.len() });
        }
        let name = self.alias_target(command).map_or(command, str::as_bytes);
        let dot = match name.iter().position(|&b| b == b'.') {
            None => return Err(LookupError::MissingDot),
            Some(0) => return Err(LookupError::LeadingDot),
            Some(dot) => dot,
        };
        let category = self
            .find_category_bytes(&name[..dot])
            .ok_or(LookupError::UnknownCategory)?;
        let command = self.categories[category.index()]
            .find(&name[dot + 1..])
            .ok_or(LookupError::UnknownCommand)?;
        Ok(Resolved {
            command,
            category,
            is_request: self.commands[command.index()].is_request,
        })
    }

    /// The target an alias rewrites `name` to, if `name` is an alias.
    #[must_use]
    pub fn alias_target(&self, name: &[u8]) -> Option<&str> {
        self.aliases
            .binary_search_by(|(k, _)| k.as_bytes().cmp(name))
            .ok()
            .map(|i| &*self.aliases[i].1)
    }

    /// The category with this id.
    ///
    /// # Panics
    /// If the id did not come from this registry (like indexing a slice out of bounds); use
    /// [`get_category`](Self::get_category) for ids of unknown origin.
    #[must_use]
    pub fn category(&self, id: CategoryId) -> &Category {
        &self.categories[id.index()]
    }

    /// The category with this id, or `None` if there is none.
    #[must_use]
    pub fn get_category(&self, id: CategoryId) -> Option<&Category> {
        self.categories.get(id.index())
    }

    /// The command with this id.
    ///
    /// # Panics
    /// If the id did not come from this registry; use [`get_command`](Self::get_command) for ids
    /// of unknown origin.
    #[must_use]
    pub fn command(&self, id: CommandId) -> &Command {
        &self.commands[id.index()]
    }

    /// The command with this id, or `None` if there is none.
    #[must_use]
    pub fn get_command(&self, id: CommandId) -> Option<&Command> {
        self.commands.get(id.index())
    }

    /// Every category, in id order.
    pub fn categories(&self) -> core::slice::Iter<'_, Category> {
        self.categories.iter()
    }

    /// Every command, in id order.
    pub fn commands(&self) -> core::slice::Iter<'_, Command> {
        self.commands.iter()
    }

    /// Every alias and its target, sorted by alias.
    pub fn aliases(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.aliases.iter().map(|(from, to)| (&**from, &**to))
    }

    /// The id of the category with this name.
    #[must_use]
    pub fn find_category(&self, name: &str) -> Option<CategoryId> {
        self.find_category_bytes(name.as_bytes())
    }

    /// The id of the category called `name`, or the node's error for an unknown one: the one
    /// rule for `inject_task`'s category, shared by the node and drivers that check before
    /// posting to it.
    ///
    /// # Errors
    ///
    /// [`NodeError::UnknownCategory`](crate::node::NodeError::UnknownCategory).
    pub fn require_category(&self, name: &str) -> Result<CategoryId, crate::node::NodeError> {
        self.find_category(name)
            .ok_or_else(|| crate::node::NodeError::UnknownCategory(name.to_string()))
    }

    /// The id of the command with this exact `category.command` name (aliases are not applied).
    #[must_use]
    pub fn find_command(&self, full_name: &str) -> Option<CommandId> {
        let (category, name) = full_name.split_once('.')?;
        let category = self.find_category(category)?;
        self.categories[category.index()].find(name.as_bytes())
    }

    /// Sum of every category's reserved threads (part of the worker limit).
    #[must_use]
    pub fn total_reserved_threads(&self) -> u32 {
        self.total_reserved_threads
    }

    /// Number of categories.
    #[must_use]
    pub fn category_count(&self) -> usize {
        self.categories.len()
    }

    /// Number of commands, over all categories.
    #[must_use]
    pub fn command_count(&self) -> usize {
        self.commands.len()
    }

    /// Number of aliases.
    #[must_use]
    pub fn alias_count(&self) -> usize {
        self.aliases.len()
    }

    fn find_category_bytes(&self, name: &[u8]) -> Option<CategoryId> {
        self.category_index
            .binary_search_by(|(k, _)| k.as_bytes().cmp(name))
            .ok()
            .map(|i| self.category_index[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthLevel, PeerAccess, Verdict, check_access};
    use alloc::string::ToString;
    use alloc::vec;
    use proptest::prelude::*;

    fn a(n: usize) -> String {
        "a".repeat(n)
    }

    fn err_text<T: core::fmt::Debug>(r: Result<T, RegistryError>) -> String {
        r.unwrap_err().to_string()
    }

    /// A builder with category `x` (none) holding `a` and request `r`, and `sn` (remote_sn).
    fn sample() -> RegistryBuilder {
        let mut b = RegistryBuilder::new();
        b.add_category("x", AuthLevel::None)
            .unwrap()
            .command("a")
            .unwrap()
            .request_command("r")
            .unwrap();
        b.add_category(
            "sn",
            CategoryOptions::new(Access::new(AuthLevel::Basic, true, false))
                .reserved_threads(3)
                .max_queue(QueueLimit::Unlimited),
        )
        .unwrap();
        b.add_command("sn", "ping").unwrap();
        b
    }

    // ---- categories ----

    #[test]
    fn category_name_length_limit() {
        let mut b = RegistryBuilder::new();
        assert!(b.add_category(&a(50), AuthLevel::None).is_ok());
        let long = a(51);
        assert_eq!(
            err_text(b.add_category(&long, AuthLevel::None)),
            format!("Invalid category name `{long}': name too long (> 50)")
        );
    }

    #[test]
    fn category_length_is_checked_before_dots() {
        let mut b = RegistryBuilder::new();
        let name = format!("{}.", a(50));
        assert_eq!(
            b.add_category(&name, AuthLevel::None).map(|c| c.id()),
            Err(RegistryError::CategoryNameTooLong { name })
        );
    }

    #[test]
    fn category_length_counts_bytes_not_chars() {
        let mut b = RegistryBuilder::new();
        // 26 two-byte characters: 26 chars, 52 bytes.
        let name = "é".repeat(26);
        assert!(matches!(
            b.add_category(&name, AuthLevel::None),
            Err(RegistryError::CategoryNameTooLong { .. })
        ));
    }

    #[test]
    fn empty_category_name_is_invalid() {
        let mut b = RegistryBuilder::new();
        assert_eq!(
            err_text(b.add_category("", AuthLevel::None)),
            "Invalid category name `'"
        );
    }

    #[test]
    fn category_name_with_dot_is_invalid() {
        let mut b = RegistryBuilder::new();
        for name in ["a.b", ".a", "a."] {
            assert_eq!(
                err_text(b.add_category(name, AuthLevel::None)),
                format!("Invalid category name `{name}'")
            );
        }
    }

    #[test]
    fn duplicate_category_is_refused() {
        let mut b = sample();
        assert_eq!(
            err_text(
                b.add_category(
                    "x",
                    CategoryOptions::new(AuthLevel::Admin)
                        .reserved_threads(1)
                        .max_queue(QueueLimit::At(5))
                )
            ),
            "Unable to add category `x': that category already exists"
        );
        // Names are case-sensitive.
        assert!(b.add_category("X", AuthLevel::None).is_ok());
    }

    #[test]
    fn category_ids_are_dense_and_parameters_kept() {
        let mut b = RegistryBuilder::new();
        assert_eq!(
            b.add_category("c0", AuthLevel::None).map(|c| c.id()),
            Ok(CategoryId(0))
        );
        assert_eq!(
            b.add_category(
                "c1",
                CategoryOptions::new(Access::new(AuthLevel::Admin, true, true))
                    .reserved_threads(4)
                    .max_queue(QueueLimit::Unlimited)
            )
            .map(|c| c.id()),
            Ok(CategoryId(1))
        );
        assert_eq!(
            b.add_category("c2", AuthLevel::Basic).unwrap().id(),
            CategoryId(2)
        );
        let r = b.build();
        assert_eq!(r.category_count(), 3);
        let c0 = r.category(CategoryId(0));
        assert_eq!(c0.name(), "c0");
        assert_eq!(c0.access(), Access::default());
        assert_eq!(c0.reserved_threads(), 0);
        assert_eq!(c0.max_queue(), QueueLimit::OXENMQ_DEFAULT);
        assert_eq!(c0.max_queue().limit(), Some(200));
        let c1 = r.category(CategoryId(1));
        assert_eq!(c1.access(), Access::new(AuthLevel::Admin, true, true));
        assert_eq!(c1.reserved_threads(), 4);
        assert_eq!(c1.max_queue(), QueueLimit::Unlimited);
        assert_eq!(r.category(CategoryId(2)).access().auth, AuthLevel::Basic);
        let names: Vec<&str> = r.categories().map(Category::name).collect();
        assert_eq!(names, ["c0", "c1", "c2"]);
        assert!(r.categories().enumerate().all(|(i, c)| c.id().index() == i));
    }

    #[test]
    fn queue_limit_maps_negative_to_unlimited() {
        let mut b = RegistryBuilder::new();
        for (i, q) in [-1, i32::MIN, 0, 1, i32::MAX].into_iter().enumerate() {
            b.add_category(
                &format!("q{i}"),
                CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::from_oxenmq(q)),
            )
            .unwrap();
        }
        let r = b.build();
        let limits: Vec<Option<u32>> = r.categories().map(|c| c.max_queue().limit()).collect();
        assert_eq!(
            limits,
            [None, None, Some(0), Some(1), Some(i32::MAX as u32)]
        );
    }

    #[test]
    fn total_reserved_threads_sums_categories() {
        let mut b = sample();
        b.add_category(
            "big",
            CategoryOptions::new(AuthLevel::None)
                .reserved_threads(u16::MAX)
                .max_queue(QueueLimit::At(0)),
        )
        .unwrap();
        let r = b.build();
        assert_eq!(r.total_reserved_threads(), 3 + u32::from(u16::MAX));
        assert_eq!(Registry::default().total_reserved_threads(), 0);
    }

    #[test]
    fn too_many_categories_is_an_error_not_a_wrap() {
        let mut b = RegistryBuilder::new();
        for i in 0..MAX_ENTRIES {
            b.add_category(
                &format!("c{i}"),
                CategoryOptions::new(AuthLevel::None).max_queue(QueueLimit::At(0)),
            )
            .unwrap();
        }
        assert_eq!(
            err_text(b.add_category("last", AuthLevel::None)),
            "Unable to add category `last': too many categories (limit 65535)"
        );
        let r = b.build();
        assert_eq!(r.category_count(), MAX_ENTRIES);
        let last = r.categories().last().unwrap();
        assert_eq!(last.id(), CategoryId(u16::MAX - 1));
        assert_eq!(r.find_category("c65534"), Some(last.id()));
    }

    // ---- commands ----

    #[test]
    fn command_name_length_limit() {
        let mut b = sample();
        assert!(b.add_command("x", &a(200)).is_ok());
        let long = a(201);
        assert_eq!(
            err_text(b.add_command("x", &long)),
            format!("Invalid command name `{long}': name too long (> 200)")
        );
    }

    #[test]
    fn command_length_is_checked_before_category() {
        let mut b = RegistryBuilder::new();
        let long = a(201);
        assert_eq!(
            b.add_request_command("nope", &long),
            Err(RegistryError::CommandNameTooLong { name: long })
        );
    }

    #[test]
    fn command_in_unknown_category_is_refused() {
        let mut b = sample();
        assert_eq!(
            err_text(b.add_command("nope", "a")),
            "Cannot add a command to unknown category `nope'"
        );
        assert_eq!(
            err_text(b.add_request_command("", "a")),
            "Cannot add a command to unknown category `'"
        );
    }

    #[test]
    fn command_may_not_shadow_an_alias() {
        let mut b = sample();
        b.add_command_alias("x.b", "x.a").unwrap();
        assert_eq!(
            err_text(b.add_command("x", "b")),
            "Cannot add command `x.b': a command alias with that name is already defined"
        );
        // The alias can name a category that does not exist yet.
        b.add_command_alias("later.cmd", "x.a").unwrap();
        b.add_category("later", AuthLevel::None).unwrap();
        assert_eq!(
            b.add_request_command("later", "cmd"),
            Err(RegistryError::CommandShadowsAlias {
                full_name: "later.cmd".to_string()
            })
        );
    }

    #[test]
    fn duplicate_command_is_refused() {
        let mut b = sample();
        assert_eq!(
            err_text(b.add_command("x", "a")),
            "Cannot add command `x.a': that command already exists"
        );
        // A request command with a plain command's name is still a duplicate, and vice versa.
        assert_eq!(
            err_text(b.add_request_command("x", "a")),
            "Cannot add command `x.a': that command already exists"
        );
        assert_eq!(
            err_text(b.add_command("x", "r")),
            "Cannot add command `x.r': that command already exists"
        );
        // Through the helper too.
        let helper = b
            .add_category("y", AuthLevel::None)
            .unwrap()
            .command("c")
            .unwrap();
        assert_eq!(
            err_text(helper.command("c")),
            "Cannot add command `y.c': that command already exists"
        );
    }

    #[test]
    fn same_command_name_in_different_categories() {
        let mut b = sample();
        let in_sn = b.add_command("sn", "a").unwrap();
        let r = b.build();
        let x_a = r.lookup(b"x.a").unwrap();
        let sn_a = r.lookup(b"sn.a").unwrap();
        assert_ne!(x_a.command, sn_a.command);
        assert_eq!(sn_a.command, in_sn);
        assert_eq!(sn_a.category, r.find_category("sn").unwrap());
    }

    #[test]
    fn command_ids_are_dense_and_accessors_work() {
        let mut b = sample();
        assert_eq!(b.add_command("x", "later"), Ok(CommandId(3)));
        let r = b.build();
        assert_eq!(r.command_count(), 4);
        let full: Vec<&str> = r.commands().map(Command::full_name).collect();
        assert_eq!(full, ["x.a", "x.r", "sn.ping", "x.later"]);
        let cmd = r.command(CommandId(1));
        assert_eq!(cmd.id(), CommandId(1));
        assert_eq!(cmd.name(), "r");
        assert_eq!(cmd.category(), CategoryId(0));
        assert!(cmd.is_request());
        assert!(!r.command(CommandId(0)).is_request());
        assert_eq!(
            r.category(CategoryId(0)).command_ids(),
            [CommandId(0), CommandId(1), CommandId(3)]
        );
        assert_eq!(r.category(CategoryId(1)).command_ids(), [CommandId(2)]);
    }

    #[test]
    fn too_many_commands_is_an_error_not_a_wrap() {
        let mut b = RegistryBuilder::new();
        b.add_category("c", AuthLevel::None).unwrap();
        for i in 0..MAX_ENTRIES {
            b.add_command("c", &format!("{i}")).unwrap();
        }
        assert_eq!(
            err_text(b.add_request_command("c", "more")),
            "Cannot add command `c.more': too many commands (limit 65535)"
        );
        let r = b.build();
        assert_eq!(r.command_count(), MAX_ENTRIES);
        assert_eq!(
            r.lookup(b"c.65534").map(|x| x.command),
            Ok(CommandId(u16::MAX - 1))
        );
    }

    #[test]
    fn empty_command_name_is_allowed_like_oxenmq() {
        let mut b = sample();
        assert_eq!(
            sample().build().lookup(b"x."),
            Err(LookupError::UnknownCommand)
        );
        let id = b.add_command("x", "").unwrap();
        let r = b.build();
        assert_eq!(r.lookup(b"x.").map(|x| x.command), Ok(id));
        assert_eq!(r.command(id).full_name(), "x.");
        assert_eq!(r.command(id).name(), "");
    }

    // ---- aliases ----

    #[test]
    fn empty_alias_is_refused() {
        let mut b = sample();
        assert_eq!(
            err_text(b.add_command_alias("", "x.a")),
            "Cannot add an alias for empty command"
        );
        // Checked first, even when the target is also bad.
        assert_eq!(b.add_command_alias("", ""), Err(RegistryError::EmptyAlias));
    }

    #[test]
    fn alias_starting_with_dot_is_refused() {
        let mut b = sample();
        assert_eq!(
            err_text(b.add_command_alias(".a", "x.a")),
            "Invalid command alias `.a'"
        );
        assert_eq!(
            b.add_command_alias(".", "nodot"),
            Err(RegistryError::InvalidAlias {
                from: ".".to_string()
            })
        );
    }

    #[test]
    fn alias_target_needs_an_inner_dot() {
        let mut b = sample();
        for to in ["xa", "", ".a", "."] {
            assert_eq!(
                err_text(b.add_command_alias("y.a", to)),
                format!("Invalid command alias target `{to}'")
            );
        }
        // A trailing dot is fine (it names the empty command).
        assert!(b.add_command_alias("y.a", "x.").is_ok());
    }

    #[test]
    fn alias_may_not_mask_a_command() {
        let mut b = sample();
        assert_eq!(
            err_text(b.add_command_alias("x.a", "sn.ping")),
            "Invalid command alias: `x.a' would mask an existing command"
        );
        // Same category, other command: fine. Unknown category: fine.
        assert!(b.add_command_alias("x.b", "x.a").is_ok());
        assert!(b.add_command_alias("nocat.a", "x.a").is_ok());
    }

    #[test]
    fn alias_mask_check_splits_at_the_first_dot() {
        let mut b = sample();
        b.add_command("x", "client.pubkey").unwrap();
        assert_eq!(
            b.add_command_alias("x.client.pubkey", "x.a"),
            Err(RegistryError::AliasMasksCommand {
                from: "x.client.pubkey".to_string()
            })
        );
    }

    #[test]
    fn duplicate_alias_is_refused() {
        let mut b = sample();
        b.add_command_alias("old", "x.a").unwrap();
        assert_eq!(
            err_text(b.add_command_alias("old", "x.r")),
            "Cannot add command alias `old': that alias already exists"
        );
        let r = b.build();
        assert_eq!(r.alias_target(b"old"), Some("x.a"));
    }

    #[test]
    fn over_long_alias_is_refused() {
        let mut b = sample();
        let ok = format!("{}.{}", a(50), a(200));
        assert!(b.add_command_alias(&ok, "x.a").is_ok());
        let long = a(252);
        assert_eq!(
            err_text(b.add_command_alias(&long, "x.a")),
            format!("Invalid command alias `{long}': name too long (> 251)")
        );
        let r = b.build();
        assert_eq!(r.lookup(ok.as_bytes()).map(|x| x.command), Ok(CommandId(0)));
    }

    #[test]
    fn alias_rewrites_before_lookup_and_access_follows_the_target() {
        let mut b = sample();
        b.add_command_alias("x.ping", "sn.ping").unwrap();
        let r = b.build();
        let found = r.lookup(b"x.ping").unwrap();
        assert_eq!(r.command(found.command).full_name(), "sn.ping");
        assert_eq!(found.category, r.find_category("sn").unwrap());
        let access = r.category(found.category).access();
        // `x` is open to everyone, but the alias lands in `sn` whose rules apply.
        let client = PeerAccess::new(AuthLevel::Basic, false, false);
        assert_eq!(check_access(&client, &access), Verdict::ForbiddenSn);
    }

    #[test]
    fn alias_without_dot() {
        let mut b = sample();
        b.add_command_alias("ping", "sn.ping").unwrap();
        b.add_command_alias("req", "x.r").unwrap();
        let r = b.build();
        assert_eq!(
            r.lookup(b"ping").map(|x| r.command(x.command).full_name()),
            Ok("sn.ping")
        );
        assert!(r.lookup(b"req").unwrap().is_request);
        assert_eq!(r.lookup(b"pin"), Err(LookupError::MissingDot));
    }

    #[test]
    fn aliases_apply_once() {
        let mut b = sample();
        b.add_command_alias("first", "x.second").unwrap();
        b.add_command_alias("x.second", "x.a").unwrap();
        let r = b.build();
        assert!(r.lookup(b"x.second").is_ok());
        // `first` becomes `x.second`, which is not re-aliased and is no command.
        assert_eq!(r.lookup(b"first"), Err(LookupError::UnknownCommand));
    }

    #[test]
    fn dangling_alias_resolves_to_unknown() {
        let mut b = sample();
        b.add_command_alias("a1", "nocat.a").unwrap();
        b.add_command_alias("a2", "x.nocmd").unwrap();
        let r = b.build();
        assert_eq!(r.lookup(b"a1"), Err(LookupError::UnknownCategory));
        assert_eq!(r.lookup(b"a2"), Err(LookupError::UnknownCommand));
    }

    #[test]
    fn alias_target_may_be_registered_later() {
        let mut b = RegistryBuilder::new();
        b.add_command_alias("go", "later.cmd").unwrap();
        b.add_category("later", AuthLevel::Admin)
            .unwrap()
            .request_command("cmd")
            .unwrap();
        let r = b.build();
        let found = r.lookup(b"go").unwrap();
        assert_eq!(r.command(found.command).full_name(), "later.cmd");
        assert_eq!(r.aliases().collect::<Vec<_>>(), [("go", "later.cmd")]);
        assert_eq!(r.alias_count(), 1);
    }

    // ---- lookup ----

    #[test]
    fn lookup_length_boundary() {
        let (cat, cmd) = (a(50), a(200));
        let mut b = RegistryBuilder::new();
        b.add_category(&cat, AuthLevel::None).unwrap();
        let id = b.add_command(&cat, &cmd).unwrap();
        let r = b.build();
        let exact = format!("{cat}.{cmd}");
        assert_eq!(exact.len(), 251);
        assert_eq!(r.lookup(exact.as_bytes()).map(|x| x.command), Ok(id));
        let over = format!("{exact}a");
        assert_eq!(
            r.lookup(over.as_bytes()),
            Err(LookupError::TooLong { len: 252 })
        );
        // Length is checked before anything else, even for garbage.
        assert_eq!(
            r.lookup(&[0xff; 1000]),
            Err(LookupError::TooLong { len: 1000 })
        );
    }

    #[test]
    fn lookup_splits_at_the_first_dot() {
        let mut b = RegistryBuilder::new();
        b.add_category("public", AuthLevel::None)
            .unwrap()
            .request_command("client.pubkey")
            .unwrap();
        let r = b.build();
        let found = r.lookup(b"public.client.pubkey").unwrap();
        let cmd = r.command(found.command);
        assert_eq!(cmd.name(), "client.pubkey");
        assert_eq!(cmd.full_name(), "public.client.pubkey");
        assert!(found.is_request);
        assert_eq!(r.lookup(b"public.client"), Err(LookupError::UnknownCommand));
        assert_eq!(
            r.lookup(b"public.client."),
            Err(LookupError::UnknownCommand)
        );
        assert_eq!(
            r.lookup(b"public.client.pubkey."),
            Err(LookupError::UnknownCommand)
        );
        assert_eq!(r.lookup(b"public"), Err(LookupError::MissingDot));
    }

    #[test]
    fn lookup_malformed_names() {
        let r = sample().build();
        assert_eq!(r.lookup(b""), Err(LookupError::MissingDot));
        assert_eq!(r.lookup(b"xa"), Err(LookupError::MissingDot));
        assert_eq!(r.lookup(b"."), Err(LookupError::LeadingDot));
        assert_eq!(r.lookup(b".x"), Err(LookupError::LeadingDot));
        assert_eq!(r.lookup(b".x.a"), Err(LookupError::LeadingDot));
        assert_eq!(r.lookup(b"x."), Err(LookupError::UnknownCommand));
        assert_eq!(r.lookup(b"y."), Err(LookupError::UnknownCategory));
        assert_eq!(r.lookup(b"x..a"), Err(LookupError::UnknownCommand));
        assert_eq!(r.lookup(b"y.a"), Err(LookupError::UnknownCategory));
        assert_eq!(r.lookup(b"x.b"), Err(LookupError::UnknownCommand));
    }

    #[test]
    fn lookup_is_exact_bytes() {
        let r = sample().build();
        assert_eq!(r.lookup(b"X.a"), Err(LookupError::UnknownCategory));
        assert_eq!(r.lookup(b"x.A"), Err(LookupError::UnknownCommand));
        assert_eq!(r.lookup(b"x.a "), Err(LookupError::UnknownCommand));
        assert_eq!(r.lookup(b" x.a"), Err(LookupError::UnknownCategory));
        assert_eq!(r.lookup(b"x.a\0"), Err(LookupError::UnknownCommand));
        assert!(r.lookup(b"x.a").is_ok());
    }

    #[test]
    fn lookup_non_utf8_is_unknown() {
        let r = sample().build();
        assert_eq!(r.lookup(b"\xff.a"), Err(LookupError::UnknownCategory));
        assert_eq!(r.lookup(b"x.\xff"), Err(LookupError::UnknownCommand));
        assert_eq!(r.lookup(b"x.a\xc3"), Err(LookupError::UnknownCommand));
        assert_eq!(r.lookup(b"\xff"), Err(LookupError::MissingDot));
        assert_eq!(r.lookup(b".\xff"), Err(LookupError::LeadingDot));
    }

    #[test]
    fn lookup_reports_request_flag_and_category() {
        let r = sample().build();
        let plain = r.lookup(b"x.a").unwrap();
        let req = r.lookup(b"x.r").unwrap();
        let ping = r.lookup(b"sn.ping").unwrap();
        assert_eq!(
            plain,
            Resolved {
                command: CommandId(0),
                category: CategoryId(0),
                is_request: false
            }
        );
        assert_eq!(
            req,
            Resolved {
                command: CommandId(1),
                category: CategoryId(0),
                is_request: true
            }
        );
        assert_eq!(ping.category, CategoryId(1));
        assert_eq!(
            r.category(ping.category).access(),
            Access::new(AuthLevel::Basic, true, false)
        );
    }

    #[test]
    fn lookup_errors_all_answer_unknowncommand() {
        let errors = [
            LookupError::TooLong { len: 300 },
            LookupError::MissingDot,
            LookupError::LeadingDot,
            LookupError::UnknownCategory,
            LookupError::UnknownCommand,
        ];
        for e in errors {
            assert_eq!(e.wire_word(), "UNKNOWNCOMMAND");
        }
        assert_eq!(
            LookupError::TooLong { len: 300 }.to_string(),
            "command too long (300 bytes > 251)"
        );
        assert_eq!(LookupError::UnknownCommand.to_string(), "unknown command");
    }

    #[test]
    fn empty_registry_finds_nothing() {
        let r = RegistryBuilder::new().build();
        assert_eq!(r, Registry::default());
        assert_eq!(
            (r.category_count(), r.command_count(), r.alias_count()),
            (0, 0, 0)
        );
        assert_eq!(r.lookup(b"x.a"), Err(LookupError::UnknownCategory));
        assert_eq!(r.find_category("x"), None);
        assert_eq!(r.get_category(CategoryId(0)), None);
        assert_eq!(r.get_command(CommandId(0)), None);
    }

    #[test]
    fn find_by_name_and_id() {
        let mut b = sample();
        b.add_command_alias("alias", "x.a").unwrap();
        let r = b.build();
        assert_eq!(r.find_category("sn"), Some(CategoryId(1)));
        assert_eq!(r.find_category("s"), None);
        assert_eq!(r.find_command("sn.ping"), Some(CommandId(2)));
        assert_eq!(r.find_command("x.r"), Some(CommandId(1)));
        // find_command takes only real full names: no aliases, no malformed names.
        assert_eq!(r.find_command("alias"), None);
        assert_eq!(r.find_command("sn"), None);
        assert_eq!(r.find_command(".ping"), None);
        assert_eq!(
            r.get_category(CategoryId(1)).map(Category::name),
            Some("sn")
        );
        assert_eq!(r.get_category(CategoryId(2)), None);
        assert_eq!(r.get_command(CommandId(2)).map(Command::name), Some("ping"));
        assert_eq!(r.get_command(CommandId(3)), None);
        assert_eq!(r.alias_target(b"x.a"), None);
    }

    #[test]
    #[should_panic(expected = "index out of bounds")]
    fn foreign_category_id_panics_on_direct_access() {
        let r = sample().build();
        let _ = r.category(CategoryId(99));
    }

    #[test]
    fn builder_via_registry_and_chained_helper() {
        let mut b = Registry::builder();
        let helper = b
            .add_category(
                "jobs",
                CategoryOptions::new(AuthLevel::Admin)
                    .reserved_threads(2)
                    .max_queue(QueueLimit::At(10)),
            )
            .unwrap()
            .command("run")
            .unwrap()
            .request_command("status")
            .unwrap();
        let jobs = helper.id();
        // Over-long names are refused by the helper with OxenMQ's text.
        let long = a(201);
        let err = b
            .add_category("other", AuthLevel::None)
            .unwrap()
            .command(&long)
            .unwrap_err();
        assert_eq!(err, RegistryError::CommandNameTooLong { name: long });
        let r = b.build();
        let cat = r.category(jobs);
        assert_eq!(
            (cat.reserved_threads(), cat.max_queue().limit()),
            (2, Some(10))
        );
        assert_eq!(cat.command_ids().len(), 2);
        assert!(r.lookup(b"jobs.status").unwrap().is_request);
        assert_eq!(r.category(CategoryId(1)).command_ids(), []);
    }

    // ---- property tests ----

    /// Names from a tiny alphabet (so collisions, dots and duplicates are common), plus names
    /// around the length limits.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[ab.]{0,3}",
            1 => "a{49,52}",
            1 => "[a.]{198,202}",
            1 => "a{250,253}",
        ]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Category(String),
        Command(String, String, bool),
        Alias(String, String),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            name().prop_map(Op::Category),
            (name(), name(), any::<bool>()).prop_map(|(c, n, r)| Op::Command(c, n, r)),
            (name(), name()).prop_map(|(f, t)| Op::Alias(f, t)),
        ]
    }

    /// A naive model of the registry: linear scans over plain vectors.
    #[derive(Default)]
    struct Model {
        categories: Vec<String>,
        commands: Vec<(usize, String, bool)>,
        aliases: Vec<(String, String)>,
    }

    impl Model {
        fn has_command(&self, cat: &str, name: &str) -> bool {
            self.commands
                .iter()
                .any(|(c, n, _)| self.categories[*c] == cat && n == name)
        }

        fn apply(&mut self, op: &Op) -> Result<(), RegistryError> {
            match op {
                Op::Category(n) => {
                    if n.len() > 50 {
                        Err(RegistryError::CategoryNameTooLong { name: n.clone() })
                    } else if n.is_empty() || n.contains('.') {
                        Err(RegistryError::InvalidCategoryName { name: n.clone() })
                    } else if self.categories.contains(n) {
                        Err(RegistryError::DuplicateCategory { name: n.clone() })
                    } else {
                        self.categories.push(n.clone());
                        Ok(())
                    }
                }
                Op::Command(c, n, req) => {
                    let full_name = format!("{c}.{n}");
                    if n.len() > 200 {
                        Err(RegistryError::CommandNameTooLong { name: n.clone() })
                    } else if !self.categories.contains(c) {
                        Err(RegistryError::UnknownCategory {
                            category: c.clone(),
                        })
                    } else if self.aliases.iter().any(|(f, _)| *f == full_name) {
                        Err(RegistryError::CommandShadowsAlias { full_name })
                    } else if self.has_command(c, n) {
                        Err(RegistryError::DuplicateCommand { full_name })
                    } else {
                        let ci = self.categories.iter().position(|x| x == c).unwrap();
                        self.commands.push((ci, n.clone(), *req));
                        Ok(())
                    }
                }
                Op::Alias(f, t) => {
                    if f.is_empty() {
                        Err(RegistryError::EmptyAlias)
                    } else if f.starts_with('.') {
                        Err(RegistryError::InvalidAlias { from: f.clone() })
                    } else if !t.contains('.') || t.starts_with('.') {
                        Err(RegistryError::InvalidAliasTarget { to: t.clone() })
                    } else if f
                        .split_once('.')
                        .is_some_and(|(c, n)| self.has_command(c, n))
                    {
                        Err(RegistryError::AliasMasksCommand { from: f.clone() })
                    } else if f.len() > 251 {
                        Err(RegistryError::AliasTooLong { from: f.clone() })
                    } else if self.aliases.iter().any(|(x, _)| x == f) {
                        Err(RegistryError::DuplicateAlias { from: f.clone() })
                    } else {
                        self.aliases.push((f.clone(), t.clone()));
                        Ok(())
                    }
                }
            }
        }

        /// Expected lookup: (category index, command index, is_request).
        fn lookup(&self, input: &[u8]) -> Result<(usize, usize, bool), LookupError> {
            if input.len() > 251 {
                return Err(LookupError::TooLong { len: input.len() });
            }
            let name: Vec<u8> = self
                .aliases
                .iter()
                .find(|(f, _)| f.as_bytes() == input)
                .map_or_else(|| input.to_vec(), |(_, t)| t.as_bytes().to_vec());
            let mut parts = name.splitn(2, |&b| b == b'.');
            let cat = parts.next().unwrap_or_default();
            let Some(cmd) = parts.next() else {
                return Err(LookupError::MissingDot);
            };
            if cat.is_empty() {
                return Err(LookupError::LeadingDot);
            }
            let ci = self
                .categories
                .iter()
                .position(|c| c.as_bytes() == cat)
                .ok_or(LookupError::UnknownCategory)?;
            self.commands
                .iter()
                .position(|(c, n, _)| *c == ci && n.as_bytes() == cmd)
                .map(|i| (ci, i, self.commands[i].2))
                .ok_or(LookupError::UnknownCommand)
        }
    }

    fn run(ops: &[Op]) -> (Registry, Model) {
        let mut b = RegistryBuilder::new();
        let mut model = Model::default();
        for op in ops {
            let got = match op {
                Op::Category(n) => b.add_category(n, AuthLevel::None).map(drop),
                Op::Command(c, n, false) => b.add_command(c, n).map(drop),
                Op::Command(c, n, true) => b.add_request_command(c, n).map(drop),
                Op::Alias(f, t) => b.add_command_alias(f, t),
            };
            assert_eq!(got, model.apply(op), "{op:?}");
        }
        (b.build(), model)
    }

    fn probe() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'.'), Just(0xff)],
                0..6
            ),
            proptest::collection::vec(any::<u8>(), 0..300),
            name().prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #[test]
        fn lookup_of_arbitrary_bytes_never_panics(
            ops in proptest::collection::vec(op(), 0..20),
            input in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let (r, _) = run(&ops);
            match r.lookup(&input) {
                Ok(found) => {
                    let cmd = r.command(found.command);
                    prop_assert_eq!(cmd.category(), found.category);
                    prop_assert_eq!(cmd.is_request(), found.is_request);
                }
                Err(e) => prop_assert_eq!(e.wire_word(), "UNKNOWNCOMMAND"),
            }
        }

        #[test]
        fn builder_validation_matches_model(ops in proptest::collection::vec(op(), 0..40)) {
            let (r, model) = run(&ops);
            prop_assert_eq!(r.category_count(), model.categories.len());
            prop_assert_eq!(r.command_count(), model.commands.len());
            prop_assert_eq!(r.alias_count(), model.aliases.len());
        }

        #[test]
        fn every_registered_command_is_found_by_full_name(
            ops in proptest::collection::vec(op(), 0..40),
        ) {
            let (r, _) = run(&ops);
            for cmd in r.commands() {
                let found = r.lookup(cmd.full_name().as_bytes());
                prop_assert_eq!(found, Ok(Resolved {
                    command: cmd.id(),
                    category: cmd.category(),
                    is_request: cmd.is_request(),
                }));
                prop_assert_eq!(r.find_command(cmd.full_name()), Some(cmd.id()));
                let cat = r.category(cmd.category());
                prop_assert_eq!(cmd.full_name(), format!("{}.{}", cat.name(), cmd.name()));
                prop_assert!(cat.command_ids().contains(&cmd.id()));
            }
        }

        #[test]
        fn lookup_matches_naive_model(
            ops in proptest::collection::vec(op(), 0..40),
            probes in proptest::collection::vec(probe(), 0..20),
        ) {
            let (r, model) = run(&ops);
            let known: Vec<Vec<u8>> = r
                .commands()
                .map(|c| c.full_name().as_bytes().to_vec())
                .chain(r.aliases().map(|(f, _)| f.as_bytes().to_vec()))
                .collect();
            for input in probes.iter().chain(&known) {
                let expected = model.lookup(input).map(|(ci, i, req)| Resolved {
                    command: CommandId(u16::try_from(i).unwrap()),
                    category: CategoryId(u16::try_from(ci).unwrap()),
                    is_request: req,
                });
                prop_assert_eq!(r.lookup(input), expected, "{:?}", input);
            }
        }
    }

    #[test]
    fn model_catches_every_error_kind() {
        // Guards the property tests: the strategies above must be able to reach each rule.
        let ops = vec![
            Op::Category(a(51)),
            Op::Category(String::new()),
            Op::Category("a".into()),
            Op::Category("a".into()),
            Op::Command("a".into(), a(201), false),
            Op::Command("b".into(), "x".into(), false),
            Op::Alias("a.s".into(), "a.x".into()),
            Op::Command("a".into(), "s".into(), true),
            Op::Command("a".into(), "x".into(), false),
            Op::Command("a".into(), "x".into(), true),
            Op::Alias(String::new(), "a.x".into()),
            Op::Alias(".a".into(), "a.x".into()),
            Op::Alias("b".into(), "ax".into()),
            Op::Alias("a.x".into(), "a.s".into()),
            Op::Alias(a(252), "a.x".into()),
            Op::Alias("a.s".into(), "a.x".into()),
        ];
        let mut model = Model::default();
        let errors = ops.iter().filter(|op| model.apply(op).is_err()).count();
        assert_eq!(errors, 13);
        let (r, _) = run(&ops);
        assert_eq!(r.lookup(b"a.s").map(|x| x.command), Ok(CommandId(0)));
    }
}
