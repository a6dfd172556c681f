//! `bpv`: Blueprint Vault from the command line. A thin layer over the engine;
//! its `--json` output is a public interface that scripts depend on.

mod backup;
mod creds;
mod output;
mod sync;
mod team;
mod transfer;
mod watch;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bpv_engine::index::{ListQuery, SearchQuery, Sort};
use bpv_engine::library::{BlueprintSave, Library, OpenOptions, init_layout};
use bpv_engine::{Error, Result, paths};
use clap::{Parser, Subcommand, ValueEnum};

use output::Out;

/// Reindexing parses on every core at once, and glibc malloc was ~30% of that time.
#[global_allocator]
static GLOBAL: bpv_alloc::MiMalloc = bpv_alloc::MiMalloc;

#[derive(Parser)]
#[command(name = "bpv", version, about = "Blueprint Vault: store, search and manage workflow blueprints")]
struct Cli {
    /// Library folder (default: $BPV_LIBRARY, else <Documents>/Blueprint Vault).
    #[arg(long, global = true, env = "BPV_LIBRARY", value_name = "DIR")]
    library: Option<PathBuf>,
    /// Data folder for the index, trash and history (default: $BPV_DATA_DIR, else the OS data dir).
    #[arg(long, global = true, env = "BPV_DATA_DIR", value_name = "DIR", hide_env_values = true)]
    data_dir: Option<PathBuf>,
    /// Machine-readable JSON output (errors as {"code","message"} on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Credential store: secret-service, keyutils, file (macOS: macos-keychain; Windows:
    /// windows-credential-manager) (default: $BPV_CREDENTIAL_STORE,
    /// else the one this library uses, else the first that works here).
    #[arg(long, global = true, value_name = "STORE")]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum SortArg {
    Name,
    Modified,
}

#[derive(Subcommand)]
enum Command {
    /// Create the library layout (safe to run again).
    Init,
    /// Rebuild the index from the files.
    Reindex,
    /// List blueprints, optionally inside FOLDER.
    List {
        folder: Option<String>,
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        #[arg(long, value_enum, default_value = "name")]
        sort: SortArg,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Only invalid files.
        #[arg(long)]
        invalid: bool,
    },
    /// Ranked full-text search.
    Search {
        query: String,
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        #[arg(long)]
        folder: Option<String>,
        #[arg(long)]
        author: Option<String>,
        /// Modified on or after (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Modified before (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Print a blueprint's YAML (exact bytes), or with --meta its item.
    Show {
        path: String,
        #[arg(long)]
        meta: bool,
    },
    /// Validate and save a blueprint durably (YAML from --file, else stdin).
    Save {
        path: String,
        #[arg(long, value_name = "F")]
        file: Option<PathBuf>,
        /// Set the blueprint's tags (in its companion metadata).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Encrypt at rest (key in the OS keychain; see `bpv keys`).
        #[arg(long)]
        encrypt: bool,
        /// Store it in plain text, also over an encrypted blueprint (its sealed history stays sealed).
        #[arg(long, conflicts_with = "encrypt")]
        decrypt: bool,
        /// Fail with a conflict unless the file's current hash is HASH.
        #[arg(long, value_name = "HASH")]
        if_match: Option<String>,
        /// Fail if the blueprint already exists.
        #[arg(long)]
        create: bool,
    },
    /// Turn encryption off for a blueprint: its file becomes the plain YAML that was sealed.
    Decrypt {
        path: String,
        /// Fail with a conflict unless the file's current hash is HASH.
        #[arg(long, value_name = "HASH")]
        if_match: Option<String>,
    },
    /// Move a blueprint to the trash.
    Delete { path: String },
    /// Rename or move a blueprint (with its metadata and history) to a new path.
    Mv {
        from: String,
        to: String,
        /// Refuse (conflict) unless the file still has this content hash.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// The trash: list, restore, empty.
    Trash {
        #[command(subcommand)]
        action: TrashAction,
    },
    /// Earlier versions of a blueprint (kept on every save).
    History { path: String },
    /// Put back an earlier version (default: the one before the last save).
    Undo {
        path: String,
        #[arg(long)]
        version: Option<String>,
    },
    /// Tags with their counts.
    Tags { folder: Option<String> },
    /// Folders with their blueprint counts.
    Folders,
    /// Library, index, counts and capabilities.
    Info,
    /// Keep the index live and print changes as JSON lines until interrupted.
    Watch(watch::WatchArgs),
    /// Import blueprint files, folders and .zip bundles (dry run first with --dry-run).
    Import(transfer::ImportArgs),
    /// Export blueprints to a folder, or to a .zip bundle with a manifest.
    Export(transfer::ExportArgs),
    #[command(flatten)]
    Backup(backup::BackupCommand),
    /// Named secrets (API keys, tokens) in the OS keychain.
    Creds {
        #[command(subcommand)]
        action: creds::CredsAction,
    },
    /// The master key of encrypted blueprints: status, recovery kit, recover, rotate, audit.
    Keys {
        #[command(subcommand)]
        action: creds::KeysAction,
    },
    /// Sync with the linked team library (S3-compatible bucket); `link`, `--status`, `verify`.
    Sync(sync::SyncArgs),
    /// Move this library into its linked team library, or copy it elsewhere with `--to URL` (a folder or s3://BUCKET/PREFIX): validate, backup, send, verify byte for byte; run again to resume.
    Migrate(sync::MigrateArgs),
    /// The team library this one syncs with: `set` links it (like `sync link`), `unset` forgets it.
    Remote(sync::RemoteArgs),
}

#[derive(Subcommand)]
enum TrashAction {
    List,
    /// Restore by trash id or original path.
    Restore {
        what: String,
    },
    Empty,
}

fn main() -> ExitCode {
    bpv_alloc::tune();
    bpv_engine::process::disable_transparent_huge_pages();
    let cli = Cli::parse();
    // Test builds only (feature `fault-injection`): damage what a backup writes into the
    // named repository, between its write and its verify.
    #[cfg(feature = "fault-injection")]
    let _injector = std::env::var_os("BPV_FAULT_DAMAGE_COMPRESSED").map(|repo| {
        bpv_engine::fault::install(bpv_engine::fault::Plan {
            roots: vec![std::path::PathBuf::from(repo)],
            damage_compressed: true,
            ..Default::default()
        })
    });
    let out = Out::new(cli.json);
    match run(cli, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Exit codes by kind, so scripts can branch without parsing messages.
fn exit_code(e: &Error) -> u8 {
    match e.code() {
        "not_found" => 3,
        "invalid_key" | "invalid_argument" | "invalid_blueprint" => 4,
        "conflict" | "already_exists" => 5,
        _ => 1,
    }
}

fn open(cli: &Cli, create: bool) -> Result<Library> {
    open_with(cli, create, true)
}

/// `open` without the reconcile walk, for commands that never read the index (a backup
/// scans the files itself; walking them twice was most of an unchanged backup).
fn open_unindexed(cli: &Cli) -> Result<Library> {
    open_with(cli, false, false)
}

fn open_with(cli: &Cli, create: bool, reconcile: bool) -> Result<Library> {
    let (root, is_default) = match &cli.library {
        Some(dir) => (dir.clone(), false),
        None => (
            paths::default_library_dir()
                .ok_or_else(|| Error::InvalidArgument("no home folder: pass --library".into()))?,
            true,
        ),
    };
    let mut opts = OpenOptions::new(root);
    opts.data_dir = cli.data_dir.clone();
    // The default library is created on first use; a named one must exist (typos
    // should not silently create libraries).
    opts.create = create || is_default;
    opts.reconcile = reconcile;
    Library::open(opts)
}

fn run(cli: Cli, out: &Out) -> Result<()> {
    match &cli.command {
        Command::Init => {
            let lib = open(&cli, true)?;
            init_layout(lib.root())?;
            out.init(lib.root(), &lib.info()?)
        }
        Command::Reindex => {
            let lib = open(&cli, false)?;
            let bar = output::progress_bar(out, "indexing");
            let report = match &bar {
                Some(b) => {
                    let tick = |done: usize, total: usize| {
                        b.set_length(total as u64);
                        b.set_position(done as u64);
                    };
                    lib.reindex(Some(&tick))?
                }
                None => lib.reindex(None)?,
            };
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            out.reindex(&report)
        }
        Command::List { folder, tags, sort, limit, offset, invalid } => {
            let lib = open(&cli, false)?;
            let page = lib.list(&ListQuery {
                folder: folder.as_deref().map(clean_folder),
                tags: tags.clone(),
                author: None,
                modified_from: None,
                modified_to: None,
                valid: invalid.then_some(false),
                sort: match sort {
                    SortArg::Name => Sort::Name,
                    SortArg::Modified => Sort::Modified,
                },
                offset: *offset,
                limit: *limit,
            })?;
            out.items(&page.items, page.total)
        }
        Command::Search { query, tags, folder, author, since, until, limit, offset } => {
            let lib = open(&cli, false)?;
            let page = lib.search(&SearchQuery {
                text: query.clone(),
                tags: tags.clone(),
                folder: folder.as_deref().map(clean_folder),
                author: author.clone(),
                modified_from: since.as_deref().map(parse_time).transpose()?,
                modified_to: until.as_deref().map(parse_time).transpose()?,
                offset: *offset,
                limit: *limit,
            })?;
            out.hits(&page.hits, page.total)
        }
        Command::Show { path, meta } => {
            let lib = open(&cli, false)?;
            if *meta {
                out.item(&lib.item(path)?)
            } else {
                let bytes = lib.read(path)?;
                if bpv_engine::secrets::crypto::is_sealed(&bytes) {
                    return creds::show_plain(&lib, path, &creds::store_kind(cli.store.as_deref())?);
                }
                std::io::stdout()
                    .write_all(&bytes)
                    .map_err(|e| Error::Io { context: "cannot write to stdout".into(), source: e })
            }
        }
        Command::Save { path, file, tags, description, encrypt, decrypt, if_match, create } => {
            let bytes = match file {
                Some(f) => std::fs::read(f).map_err(|e| Error::io("cannot read", f, e))?,
                None => {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut buf)
                        .map_err(|e| Error::Io { context: "cannot read stdin".into(), source: e })?;
                    buf
                }
            };
            let lib = open(&cli, false)?;
            let save = BlueprintSave {
                tags: (!tags.is_empty()).then(|| tags.clone()),
                description: description.clone(),
                if_match: if_match.clone(),
                create_only: *create,
                ..Default::default()
            };
            let item = if *encrypt {
                let opts = creds::store_kind(cli.store.as_deref())?;
                bpv_engine::secrets::Secrets::open(&lib, &opts)?.save_encrypted(&lib, path, &bytes, &save)?
            } else if *decrypt {
                let opts = creds::store_kind(cli.store.as_deref())?;
                bpv_engine::secrets::Secrets::open(&lib, &opts)?.save_decrypted(&lib, path, &bytes, &save)?
            } else {
                bpv_engine::secrets::refuse_plain_overwrite(&lib, path)?;
                lib.save_blueprint(path, &bytes, &save)?
            };
            out.saved(&item)
        }
        Command::Decrypt { path, if_match } => {
            let lib = open(&cli, false)?;
            let opts = creds::store_kind(cli.store.as_deref())?;
            out.saved(&bpv_engine::secrets::Secrets::open(&lib, &opts)?.decrypt(&lib, path, if_match.as_deref())?)
        }
        Command::Delete { path } => {
            let lib = open(&cli, false)?;
            let entry = lib.delete(path)?;
            out.deleted(&entry)
        }
        Command::Mv { from, to, if_match } => {
            let lib = open(&cli, false)?;
            out.moved(&lib.rename(from, to, if_match.as_deref())?)
        }
        Command::Trash { action } => {
            let lib = open(&cli, false)?;
            match action {
                TrashAction::List => out.trash(&lib.trash_list()?),
                TrashAction::Restore { what } => out.saved(&lib.trash_restore(what)?),
                TrashAction::Empty => out.emptied(lib.trash_empty()?),
            }
        }
        Command::History { path } => {
            let lib = open(&cli, false)?;
            out.versions(&lib.versions(path)?)
        }
        Command::Undo { path, version } => {
            let lib = open(&cli, false)?;
            out.saved(&lib.restore_version(path, version.as_deref())?)
        }
        Command::Tags { folder } => {
            let lib = open(&cli, false)?;
            let folder = folder.as_deref().map(clean_folder);
            out.tags(&lib.index().tag_counts(folder.as_deref())?)
        }
        Command::Folders => {
            let lib = open(&cli, false)?;
            out.folders(&lib.index().folders()?)
        }
        Command::Backup(cmd) => backup::run(cmd, &cli, out),
        Command::Info => {
            let lib = open(&cli, false)?;
            let info = lib.info()?;
            let (keychain, keychain_text) = creds::info_keychain(&lib, &creds::store_kind(cli.store.as_deref())?);
            if cli.json {
                let mut v = serde_json::to_value(&info).map_err(|e| Error::Corrupt(e.to_string()))?;
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("keychain".into(), keychain);
                }
                println!("{v}");
                Ok(())
            } else {
                out.info(&info)?;
                println!("{keychain_text}");
                Ok(())
            }
        }
        Command::Watch(args) => watch::run(&cli, args),
        Command::Import(args) => transfer::import(&open(&cli, false)?, args, cli.json, out),
        Command::Export(args) => transfer::export(&open(&cli, false)?, args, cli.json, out),
        Command::Creds { action } => {
            creds::creds(&open(&cli, false)?, action, &creds::store_kind(cli.store.as_deref())?, cli.json)
        }
        Command::Keys { action } => {
            creds::keys(&open(&cli, false)?, action, &creds::store_kind(cli.store.as_deref())?, cli.json)
        }
        Command::Sync(args) => exit_on_failure(sync::run_sync(&open(&cli, false)?, args, out, cli.json)),
        Command::Migrate(args) => exit_on_failure(sync::run_migrate(&open(&cli, false)?, args, out, cli.json)),
        Command::Remote(args) => exit_on_failure(sync::run_remote(&open(&cli, false)?, args, out, cli.json)),
    }
}

/// For commands that print their own errors (their codes are not the engine's).
fn exit_on_failure(code: u8) -> Result<()> {
    if code != 0 {
        std::process::exit(i32::from(code));
    }
    Ok(())
}

fn clean_folder(f: &str) -> String {
    f.trim_end_matches('/').to_owned()
}

/// RFC 3339, or a plain date (midnight UTC), to milliseconds since the epoch.
fn parse_time(s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(Error::InvalidArgument(format!("{s:?} is not a date: use YYYY-MM-DD or RFC 3339")))
}

pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
