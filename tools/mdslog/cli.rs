//! The command line: every command, its arguments, its help and its example.
//!
//! Every command that works on a store takes the store directory as its first positional
//! argument; when it is left out, `MDSLOG_DIR` gives it (see `main::parse`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const TOP_HELP: &str = "\
Examples:
  mdslog generate ./store --volume-sets 3 --snapshots 2000 --branches 20 --seed 7
  mdslog stats ./store
  mdslog volume-set list ./store
  mdslog tree ./store vs-name
  mdslog verify ./store
  mdslog sync ./laptop ./hub --volume-set vs-name
  mdslog follow ./store ./replica

The store directory is the first argument of every command; when it is left out, the
MDSLOG_DIR environment variable gives it. Wherever an id is asked for, a unique prefix of
it, or a volume set's name, will do.

Exit codes: 0 success; 1 the log or a bundle is damaged (verify findings, or a command that
met damage); 2 usage, I/O or any other error.";

#[derive(Parser, Debug)]
#[command(
    name = "mdslog",
    version,
    about = "Inspect and script an mdslog store: an event-sourced metadata store for versioned data volumes",
    after_help = TOP_HELP,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The store directory, the first positional argument of every store command.
#[derive(Args, Debug, Clone)]
pub struct StoreDir {
    /// Store directory (when left out: the MDSLOG_DIR environment variable).
    #[arg(value_name = "DIR", env = "MDSLOG_DIR", hide_env_values = true)]
    pub dir: PathBuf,
}

/// Who the records written by a command are attributed to.
#[derive(Args, Debug, Clone)]
pub struct Actor {
    /// Recorded as the actor of every record this command writes (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

impl Actor {
    pub fn name(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "mdslog".into())
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the log end to end, then replay it through the projections.
    ///
    /// Checks every segment header, record checksum, footer digest, the hash chain and LSN
    /// continuity, then replays every record through the projections and checks the
    /// invariants of the state they build. Lists every finding (file, byte offset, LSN, what is wrong), not just the first.
    /// Exit 0 when clean, 1 when anything is wrong, 2 for usage or I/O errors. A torn tail
    /// is not a finding: the next writer's open (or `mdslog repair`) cuts it.
    #[command(
        after_help = "Examples:\n  mdslog verify ./store\n  mdslog verify --json ./store | jq '.findings'"
    )]
    Verify {
        #[command(flatten)]
        store: StoreDir,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Segments and bytes, records by kind, objects, and the first and last record.
    #[command(after_help = "Examples:\n  mdslog stats ./store\n  mdslog stats --json ./store")]
    Stats {
        #[command(flatten)]
        store: StoreDir,
        /// Print the statistics as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Print the records of the log, one a line.
    ///
    /// Readable by default; `--json` prints JSON lines in the stable schema README.md
    /// documents (lsn, kind, kind_id, time, time_us, actor, event).
    #[command(
        after_help = "Examples:\n  mdslog dump ./store --from 100 --to 120\n  mdslog dump ./store --kind \
                            fork-branch,rename-branch --volume-set db\n  mdslog dump --json ./store | jq -c \
                            'select(.kind == \"rename-branch\")'"
    )]
    Dump(DumpArgs),

    /// Draw the snapshot forest of a volume set.
    ///
    /// Each snapshot shows its short id, name, depth, size and whether this store holds
    /// its data (blob); branch names stand at their tips. Long runs of plain snapshots
    /// are elided unless --full.
    #[command(
        after_help = "Examples:\n  mdslog tree ./store db\n  mdslog tree ./store db --at 120\n  mdslog tree \
                            ./store db --at 2025-11-24T17:00:00Z --full"
    )]
    Tree {
        #[command(flatten)]
        store: StoreDir,
        /// The volume set: its name, id, or a unique id prefix.
        #[arg(value_name = "VOLUME_SET")]
        volume_set: String,
        /// Draw it as of an LSN or a time (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in UTC).
        #[arg(long, value_name = "LSN|TIME")]
        at: Option<String>,
        /// Show every snapshot (long runs of plain snapshots are elided otherwise).
        #[arg(long)]
        full: bool,
        /// Print the volume set, its branches and snapshots as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Every record that touched one volume set, snapshot or branch.
    ///
    /// Creation, renames, edits, deletes, with time and actor; deleted objects have a
    /// history too. ID is a volume set name, a branch as VOLUME_SET:BRANCH, or an id or a unique prefix
    /// of one.
    #[command(
        after_help = "Examples:\n  mdslog history ./store db\n  mdslog history ./store db:master\n  mdslog \
                            history ./store 3f2a9c1e --json"
    )]
    History {
        #[command(flatten)]
        store: StoreDir,
        /// Volume set name, VOLUME_SET:BRANCH, or an id or unique id prefix.
        #[arg(value_name = "ID")]
        id: String,
        /// For a volume set: also every record about what it holds (snapshots, branches,
        /// bushes, volumes).
        #[arg(long)]
        all: bool,
        /// Print JSON lines (the schema of `dump --json`).
        #[arg(long)]
        json: bool,
    },

    /// One volume set, snapshot or branch, now or as of a point in time.
    #[command(
        after_help = "Examples:\n  mdslog show ./store db\n  mdslog show ./store db:master --at 40\n  mdslog \
                            show ./store 3f2a9c1e --json"
    )]
    Show {
        #[command(flatten)]
        store: StoreDir,
        /// Volume set name, VOLUME_SET:BRANCH, or an id or unique id prefix.
        #[arg(value_name = "ID")]
        id: String,
        /// Show it as of an LSN or a time (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in UTC).
        #[arg(long, value_name = "LSN|TIME")]
        at: Option<String>,
        /// Print the object as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Repair a log offline: cut a torn tail, or salvage the longest valid prefix.
    ///
    /// Without --salvage only a torn tail is cut; with it, the log is cut at the first
    /// damaged place. What is cut is saved beside the log. Takes the writer's lock. Asks for confirmation on a terminal unless --yes; refuses without --yes when
    /// standard input is not a terminal.
    #[command(
        after_help = "Examples:\n  mdslog repair ./store\n  mdslog repair ./store --salvage --yes"
    )]
    Repair {
        #[command(flatten)]
        store: StoreDir,
        /// Also cut real damage: keep the longest valid prefix of the log, move the rest
        /// aside (`*.cut-OFFSET`, `*.salvaged`).
        #[arg(long)]
        salvage: bool,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Create, list, show, update and delete volume sets.
    #[command(subcommand, name = "volume-set", alias = "vs")]
    VolumeSet(VolumeSetCmd),

    /// Add a snapshot on a branch, or fork a new branch off any snapshot.
    ///
    /// Without --fork the snapshot goes on top of --branch's tip (master by default).
    /// With --fork NAME a new branch starts: off --from SNAPSHOT, or as a new root.
    #[command(
        after_help = "Examples:\n  mdslog snapshot ./store db --name 'nightly'              # on master\n  \
                            mdslog snapshot ./store db --branch dev --attr build=42\n  mdslog snapshot ./store db \
                            --fork hotfix --from 3f2a9c1e  # new branch off a snapshot\n  mdslog snapshot ./store db \
                            --fork fresh                  # new branch, new root"
    )]
    Snapshot(SnapshotArgs),

    /// List, rename and delete branches.
    #[command(subcommand)]
    Branch(BranchCmd),

    /// Write a synthetic, realistic workload: deep branches, forks, renames, edits.
    ///
    /// The same seed makes the same shape. --snapshots and --branches are totals over all volume sets; every volume set has a
    /// "master" branch, so --branches is at least --volume-sets and --snapshots at least
    /// --branches.
    #[command(
        after_help = "Example:\n  mdslog generate ./store --volume-sets 5 --snapshots 100000 --branches 200 \
                            --seed 42"
    )]
    Generate(GenerateArgs),

    /// Sync one volume set between two stores: push LOCAL to REMOTE, then pull back.
    ///
    /// Each side receives the records of the volume set the other has not sent it yet
    /// (after its cursor for the other). New branches and snapshots travel; a branch one
    /// side is ahead on moves forward on the other; renames and metadata edits travel.
    /// REMOTE is the reference: when both sides edited the same thing differently, its
    /// value is kept on both (a conflict, reported). A branch whose two histories
    /// diverged keeps each side's tip (reported). Exit 0 even with conflicts or
    /// divergences: they are listed and the last line says so. Both stores are opened for
    /// writing; with --pull-only REMOTE is opened read-only and nothing is written there.
    /// LOCAL may be an empty directory: it becomes a store holding the volume set.
    #[command(
        after_help = "Examples:\n  mdslog sync ./laptop ./hub --volume-set db\n  mdslog sync ./laptop ./hub \
                            --volume-set db --pull-only\n  mdslog sync ./laptop ./hub --volume-set 3f2a9c1e --full \
                            --json | jq '.conflicts'"
    )]
    Sync(SyncArgs),

    /// Write the records of one volume set after a cursor to a bundle file, for import
    /// elsewhere.
    ///
    /// --since is an LSN of DIR's log: the importer's cursor for DIR (`mdslog cursors
    /// IMPORTER` lists it), or 0 for the whole history. Opens DIR read-only (a store
    /// that never had an identity is opened for writing once to get one). The bundle
    /// carries a digest and is checked in full before an import applies anything.
    #[command(
        after_help = "Examples:\n  mdslog export ./laptop --volume-set db --since 0 --out db.bundle\n  \
                            mdslog export ./laptop --volume-set db --since 57 --out db-2.bundle --json"
    )]
    Export(ExportArgs),

    /// Apply a bundle made by `mdslog export` to a store.
    ///
    /// The bundle is read and checked in full first (digest, every record), then applied
    /// atomically with this store's new cursor for the exporting store. Importing the same
    /// bundle again changes nothing. A bundle that starts after this store's cursor (its
    /// --since was too late) is refused: export again with the cursor the error names.
    /// --prefer ours (the default): this store keeps its value when both sides edited the
    /// same thing, as a hub receiving a push; the conflict is recorded and travels back
    /// in this store's next export. --prefer theirs: the bundle's value wins, as when
    /// pulling; import the hub's bundles this way so the hub's value is adopted. DIR may
    /// be an empty directory.
    #[command(
        after_help = "Examples:\n  mdslog import ./hub db.bundle\n  mdslog import ./hub db.bundle --volume-set db \
                            --prefer theirs --json"
    )]
    Import(ImportArgs),

    /// Write a checkpoint of the store now.
    ///
    /// A checkpoint holds the state as of the last durable record, so the next open
    /// replays only the log after it (log-format.md §10). It is written to a temporary
    /// name, fsynced and renamed; the two newest are kept. Takes the writer's lock for
    /// the moment it runs.
    #[command(
        after_help = "Examples:\n  mdslog checkpoint ./store\n  mdslog checkpoint ./store --json"
    )]
    Checkpoint {
        #[command(flatten)]
        store: StoreDir,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },

    /// This store's identity and the sync cursors it holds.
    ///
    /// A cursor says up to which LSN of a peer store's log the records of one volume set
    /// are applied here: the --since of the peer's next export for this store.
    #[command(after_help = "Examples:\n  mdslog cursors ./hub\n  mdslog cursors ./hub --json")]
    Cursors {
        #[command(flatten)]
        store: StoreDir,
        /// Print the identity and cursors as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Ship the primary's log into a follower directory, once.
    ///
    /// Copies what the follower lacks of SRC's durable log: each sealed segment whole
    /// (checked end to end first), then the new records of the active segment (each checked
    /// before it is written). The follower holds a byte-identical copy of a prefix of SRC's
    /// log; a store opened read-only on it answers like the primary did at that LSN.
    /// SRC is opened read-only (it may be a live primary); FOLLOWER is created if missing and
    /// locked while the ship runs. Shipping again copies only what is new; a torn tail left
    /// by an interrupted ship is cut. A follower that is not a copy of SRC's log (another
    /// store, a promoted follower, a primary that lost records) is refused and left as it
    /// is. Exit 0 when shipped (or nothing was new), 1 when SRC's log is damaged (nothing of
    /// a damaged segment is shipped), 2 for a refusal, a lock or any other error.
    #[command(
        after_help = "Examples:\n  mdslog ship ./primary ./follower\n  mdslog ship ./primary /mnt/backup/store \
                            --json | jq '.records_shipped'"
    )]
    Ship(ShipArgs),

    /// Keep shipping the primary's log into a follower until Ctrl-C or SIGTERM.
    ///
    /// Ships as `mdslog ship` does, at once and then every --interval-ms, holding the
    /// follower's lock all along (so nothing promotes it meanwhile). Prints a line for
    /// each ship that shipped something (with --json one JSON object per line); on a
    /// terminal a status line shows where both sides are. Ctrl-C (SIGINT) or SIGTERM stops
    /// it cleanly: the ship in progress ends, the lock is released, exit 0. A second Ctrl-C
    /// ends it at once (the next ship cuts whatever was left half-written). Stops with exit
    /// 1 or 2 on the errors of `mdslog ship`. Once it has stopped, the follower can be
    /// promoted: a store opened on it for writing continues the log as a primary.
    #[command(
        after_help = "Examples:\n  mdslog follow ./primary ./follower\n  mdslog follow ./primary ./follower \
                            --interval-ms 100 --json >> ship.log"
    )]
    Follow(FollowArgs),

    /// What a store directory holds, who holds its lock, and how far a follower is behind.
    ///
    /// Last LSN, segments, store id, whether a writer or a shipper holds the lock (with its
    /// pid), and the ship source noted by the last ship into it (SHIP-SOURCE). When
    /// --primary is given, or a ship source is noted and can be opened, also how far this
    /// copy is behind it (records and bytes), or that it is not a copy of that primary's
    /// log. An unreachable noted source is reported, not an error. Changes no file.
    #[command(
        after_help = "Examples:\n  mdslog status ./follower\n  mdslog status ./follower --primary ./primary \
                            --json | jq '.primary.lag.records'"
    )]
    Status(StatusArgs),

    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  mdslog completions bash > ~/.local/share/bash-completion/completions/mdslog\n  \
                            mdslog completions zsh > ~/.zfunc/_mdslog\n  mdslog completions fish > \
                            ~/.config/fish/completions/mdslog.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },

    /// Make or extend a demo store, then print its tree.
    ///
    /// A volume set, snapshots on two branches, a fork, a rename and an attribute edit;
    /// then the branch tree and counts. Running it again extends the same store.
    #[command(after_help = "Example:\n  mdslog demo ./mdslog-demo")]
    Demo {
        /// Store directory (created if missing).
        #[arg(
            value_name = "DIR",
            env = "MDSLOG_DIR",
            hide_env_values = true,
            default_value = "mdslog-demo"
        )]
        dir: PathBuf,
    },
}

/// Shells with completion scripts.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub store: StoreDir,
    /// First LSN to print.
    #[arg(long, value_name = "LSN")]
    pub from: Option<u64>,
    /// Last LSN to print.
    #[arg(long, value_name = "LSN")]
    pub to: Option<u64>,
    /// Only records of these kinds (names or numbers; repeat or separate with commas).
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Only records about this volume set (name, id or unique id prefix; deleted ones too).
    #[arg(long, value_name = "VOLUME_SET")]
    pub volume_set: Option<String>,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum VolumeSetCmd {
    /// Create a volume set.
    #[command(
        after_help = "Example:\n  mdslog volume-set create ./store db --prefix acme --description 'our database' \
                            --attr team=storage"
    )]
    Create {
        #[command(flatten)]
        store: StoreDir,
        /// Its name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Its prefix (a namespace, such as an organisation).
        #[arg(long, default_value = "")]
        prefix: String,
        /// Its description.
        #[arg(long, default_value = "")]
        description: String,
        /// An attribute (repeatable).
        #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attr)]
        attrs: Vec<(String, String)>,
        /// Its owner (default: the actor).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        actor: Actor,
        /// Print the new volume set as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List volume sets.
    #[command(
        after_help = "Examples:\n  mdslog volume-set list ./store\n  mdslog volume-set list ./store --glob \
                            'acme/*' --json"
    )]
    List {
        #[command(flatten)]
        store: StoreDir,
        /// Only those whose name, user names or attributes contain this text.
        #[arg(long)]
        search: Option<String>,
        /// Only those whose PREFIX/NAME matches this glob (a leading / anchors it).
        #[arg(long)]
        glob: Option<String>,
        /// Only those with this attribute (repeatable).
        #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attr)]
        attrs: Vec<(String, String)>,
        /// Print JSON (an array of volume sets).
        #[arg(long)]
        json: bool,
    },
    /// Show one volume set with its branches.
    #[command(after_help = "Example:\n  mdslog volume-set show ./store db --json")]
    Show {
        #[command(flatten)]
        store: StoreDir,
        /// Name, id or unique id prefix.
        #[arg(value_name = "VOLUME_SET")]
        volume_set: String,
        /// As of an LSN or a time.
        #[arg(long, value_name = "LSN|TIME")]
        at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a volume set's name, prefix, description, owner, attributes or size.
    #[command(
        after_help = "Example:\n  mdslog volume-set update ./store db --name db2 --attr tier=gold --remove-attr \
                            old"
    )]
    Update {
        #[command(flatten)]
        store: StoreDir,
        /// Name, id or unique id prefix.
        #[arg(value_name = "VOLUME_SET")]
        volume_set: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New owner.
        #[arg(long)]
        owner: Option<String>,
        /// Set an attribute (repeatable).
        #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attr)]
        attrs: Vec<(String, String)>,
        /// Remove an attribute (repeatable).
        #[arg(long = "remove-attr", value_name = "KEY")]
        remove_attrs: Vec<String>,
        /// New size in bytes.
        #[arg(long)]
        size: Option<u64>,
        #[command(flatten)]
        actor: Actor,
        /// Print the updated volume set as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a volume set and everything in it. Asks first unless --yes.
    #[command(after_help = "Example:\n  mdslog volume-set delete ./store db --yes")]
    Delete {
        #[command(flatten)]
        store: StoreDir,
        /// Name, id or unique id prefix.
        #[arg(value_name = "VOLUME_SET")]
        volume_set: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub store: StoreDir,
    /// The volume set: name, id or unique id prefix.
    #[arg(value_name = "VOLUME_SET")]
    pub volume_set: String,
    /// Add the snapshot on top of this branch's tip.
    #[arg(long, default_value = "master", conflicts_with = "fork")]
    pub branch: String,
    /// Fork a new branch with this name, off --from (or as a new root without --from).
    #[arg(long, value_name = "NEW_BRANCH")]
    pub fork: Option<String>,
    /// The snapshot to fork off: an id, a unique id prefix, or a branch name (its tip).
    #[arg(long, value_name = "SNAPSHOT", requires = "fork")]
    pub from: Option<String>,
    /// The snapshot's name.
    #[arg(long, default_value = "")]
    pub name: String,
    /// The snapshot's description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// An attribute (repeatable).
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attr)]
    pub attrs: Vec<(String, String)>,
    /// Its size in bytes.
    #[arg(long, default_value_t = 0)]
    pub size: u64,
    /// The blob id of its data in this store (default: none).
    #[arg(long, default_value = "")]
    pub blob: String,
    #[command(flatten)]
    pub actor: Actor,
    /// Print the new snapshot as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum BranchCmd {
    /// List the branches of a volume set with their tips.
    #[command(after_help = "Example:\n  mdslog branch list ./store db --json")]
    List {
        #[command(flatten)]
        store: StoreDir,
        /// Name, id or unique id prefix.
        #[arg(value_name = "VOLUME_SET")]
        volume_set: String,
        /// Print JSON (an array of branches).
        #[arg(long)]
        json: bool,
    },
    /// Rename a branch.
    #[command(after_help = "Example:\n  mdslog branch rename ./store db dev feature-x")]
    Rename {
        #[command(flatten)]
        store: StoreDir,
        /// Name, id or unique id prefix.
        #[arg(value_name = "VOLUME_SET")]
        volume_set: String,
        /// The branch's name now.
        #[arg(value_name = "OLD")]
        old: String,
        /// Its new name.
        #[arg(value_name = "NEW")]
        new: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Delete a branch. Asks first unless --yes.
    ///
    /// Deletes its snapshots back to the fork point; the snapshot there becomes the tip
    /// of a branch that keeps the name.
    #[command(after_help = "Example:\n  mdslog branch delete ./store db old-experiment --yes")]
    Delete {
        #[command(flatten)]
        store: StoreDir,
        /// Name, id or unique id prefix.
        #[arg(value_name = "VOLUME_SET")]
        volume_set: String,
        /// The branch's name.
        #[arg(value_name = "BRANCH")]
        branch: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The local store directory (when left out: the MDSLOG_DIR environment variable).
    #[arg(value_name = "LOCAL", env = "MDSLOG_DIR", hide_env_values = true)]
    pub local: PathBuf,
    /// The remote store directory: the reference, whose value wins a conflict.
    #[arg(value_name = "REMOTE")]
    pub remote: PathBuf,
    /// The volume set: name, id or unique id prefix (looked up in LOCAL, then REMOTE).
    #[arg(long, value_name = "ID|NAME")]
    pub volume_set: String,
    /// Only pull REMOTE's records into LOCAL; REMOTE is opened read-only and not changed.
    #[arg(long)]
    pub pull_only: bool,
    /// Send whole histories instead of what follows the cursors: brings over branches a
    /// missing-ancestor report left behind.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub actor: Actor,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreDir,
    /// The volume set: name, id or unique id prefix.
    #[arg(long, value_name = "ID|NAME")]
    pub volume_set: String,
    /// Export the records after this LSN of DIR's log (the importer's cursor; 0: all).
    #[arg(long, value_name = "CURSOR")]
    pub since: u64,
    /// The bundle file to write (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ShipArgs {
    /// The primary's store directory, read only (when left out: the MDSLOG_DIR environment
    /// variable).
    #[arg(value_name = "SRC", env = "MDSLOG_DIR", hide_env_values = true)]
    pub source: PathBuf,
    /// The follower's directory (created if missing).
    #[arg(value_name = "FOLLOWER")]
    pub follower: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FollowArgs {
    /// The primary's store directory, read only (when left out: the MDSLOG_DIR environment
    /// variable).
    #[arg(value_name = "SRC", env = "MDSLOG_DIR", hide_env_values = true)]
    pub source: PathBuf,
    /// The follower's directory (created if missing).
    #[arg(value_name = "FOLLOWER")]
    pub follower: PathBuf,
    /// Milliseconds between the end of one ship and the start of the next.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: u64,
    /// Print one JSON object per line, for each ship that shipped something.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub store: StoreDir,
    /// The primary to measure the lag against (default: the ship source noted in DIR).
    #[arg(long, value_name = "SRC")]
    pub primary: Option<PathBuf>,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Whose value an import keeps when both sides edited the same thing.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// This store's value (a hub receiving a push).
    Ours,
    /// The bundle's value (pulling from the exporting store).
    Theirs,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreDir,
    /// The bundle file (made by `mdslog export`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Check that the bundle is for this volume set (name, id or unique id prefix).
    #[arg(long, value_name = "ID|NAME")]
    pub volume_set: Option<String>,
    /// Whose value is kept on a conflict.
    #[arg(long, value_enum, default_value = "ours")]
    pub prefer: Prefer,
    #[command(flatten)]
    pub actor: Actor,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub store: StoreDir,
    /// Volume sets to create.
    #[arg(long, default_value_t = 3)]
    pub volume_sets: u64,
    /// Snapshots to create, in total.
    #[arg(long, default_value_t = 1000)]
    pub snapshots: u64,
    /// Branches to create, in total (each volume set's "master" included).
    #[arg(long, default_value_t = 12)]
    pub branches: u64,
    /// Seed of the pseudo-random choices: the same seed makes the same workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub actor: Actor,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `KEY=VALUE`.
fn parse_attr(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}
