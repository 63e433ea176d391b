//! `wash keys`: generate nkeys and read the ones stored in the keys directory
//! (`$WASH_KEYS`, default `~/.wash/keys`), where `wash claims sign` keeps the account and
//! module keys it generates. Each key is a file `NAME.nk` holding the seed, readable by
//! its owner only.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nimbus_core::keys::{KeyKind, KeyPair};
use serde::Serialize;

use crate::output::OutputFormat;

/// File extension of stored seeds.
const KEY_EXTENSION: &str = "nk";

/// The key types `wash keys gen` accepts (shown in `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyType {
    /// Signs actors and providers (`A...`).
    Account,
    /// Identifies an actor module (`M...`).
    Module,
    /// Identifies a capability provider (`V...`).
    Service,
    /// Identifies a host (`N...`).
    Server,
    /// Signs invocations between hosts of a lattice (`C...`).
    Cluster,
    /// Vouches for accounts (`O...`).
    Operator,
    /// NATS user credentials (`U...`).
    User,
}

impl From<KeyType> for KeyKind {
    fn from(t: KeyType) -> KeyKind {
        match t {
            KeyType::Account => KeyKind::Account,
            KeyType::Module => KeyKind::Module,
            KeyType::Service => KeyKind::Service,
            KeyType::Server => KeyKind::Server,
            KeyType::Cluster => KeyKind::Cluster,
            KeyType::Operator => KeyKind::Operator,
            KeyType::User => KeyKind::User,
        }
    }
}

/// Subcommands of `wash keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Generate a new key pair and print its public key and seed (nothing is stored).
    Gen {
        /// The type of key to generate.
        #[arg(value_enum)]
        key_type: KeyType,
    },
    /// Print a key stored in the keys directory (public key and seed).
    Get {
        /// The key's name: its file name in the keys directory, with or without `.nk`
        /// (e.g. `echo_module`).
        name: String,
        /// The keys directory.
        #[arg(short = 'd', long, env = "WASH_KEYS", value_name = "DIR")]
        directory: Option<PathBuf>,
    },
    /// List the keys stored in the keys directory (names, types and public keys).
    List {
        /// The keys directory.
        #[arg(short = 'd', long, env = "WASH_KEYS", value_name = "DIR")]
        directory: Option<PathBuf>,
    },
}

/// A key as printed by `gen` and `get`.
#[derive(Serialize)]
struct KeyOutput {
    public_key: String,
    seed: String,
}

/// One stored key as printed by `list`.
#[derive(Serialize)]
struct ListedKey {
    name: String,
    key_type: Option<&'static str>,
    public_key: Option<String>,
    /// Why the file could not be read as a seed, if it could not.
    error: Option<String>,
}

#[derive(Serialize)]
struct ListOutput {
    keys_directory: String,
    keys: Vec<ListedKey>,
}

/// Runs `wash keys ...`.
pub fn run(cmd: KeysCommand, output: OutputFormat) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Gen { key_type } => {
            let kp = KeyPair::generate(key_type.into());
            print_key(&kp, output)
        }
        KeysCommand::Get { name, directory } => {
            let dir = keys_dir(directory)?;
            let name = name.strip_suffix(".nk").unwrap_or(&name);
            check_key_name(name)?;
            let path = key_path(&dir, name);
            if !path.exists() {
                bail!(
                    "no key named `{name}` in {}; run `wash keys list` to see the stored keys",
                    dir.display()
                );
            }
            let kp = read_seed_file(&path)?;
            print_key(&kp, output)
        }
        KeysCommand::List { directory } => {
            let dir = keys_dir(directory)?;
            let keys = list_keys(&dir)?;
            let out = ListOutput {
                keys_directory: dir.display().to_string(),
                keys,
            };
            output.print(|| list_text(&out), &out)
        }
    }
}

fn print_key(kp: &KeyPair, output: OutputFormat) -> anyhow::Result<()> {
    let out = KeyOutput {
        public_key: kp.public_key(),
        seed: kp.seed().context("failed to encode the seed")?,
    };
    output.print(
        || format!("Public Key: {}\nSeed: {}", out.public_key, out.seed),
        &out,
    )
}

fn list_text(out: &ListOutput) -> String {
    if out.keys.is_empty() {
        return format!(
            "No keys in {} (keys appear here when `wash claims sign` generates them)",
            out.keys_directory
        );
    }
    let width = out.keys.iter().map(|k| k.name.len()).max().unwrap_or(0);
    let mut text = format!("Keys in {}:", out.keys_directory);
    for k in &out.keys {
        let detail = match (&k.public_key, k.key_type, &k.error) {
            (Some(pk), Some(kind), _) => format!("{kind:<9} {pk}"),
            (_, _, Some(e)) => format!("unreadable: {e}"),
            _ => "unreadable".to_string(),
        };
        text.push_str(&format!("\n  {:<width$}  {detail}", k.name));
    }
    text
}

/// The keys directory: `dir` if given (`--directory` or `$WASH_KEYS`), else
/// `~/.wash/keys`.
pub fn keys_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
        return Ok(dir);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("failed to find the keys directory: set WASH_KEYS (or HOME)")?;
    Ok(PathBuf::from(home).join(".wash").join("keys"))
}

/// The file of key `name` in `dir`.
pub(crate) fn key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.{KEY_EXTENSION}"))
}

/// Key names are plain file stems, so a name can never point outside the keys directory.
fn check_key_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        bail!(
            "invalid key name `{name}`: use a plain file name like `echo_module` (see `wash keys list`)"
        );
    }
    Ok(())
}

/// Turns any text (a file stem, a user name) into a safe key name part.
pub fn sanitize_key_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches(['_', '-']).to_string();
    if cleaned.is_empty() {
        "default".to_string()
    } else {
        cleaned
    }
}

/// Reads a seed file (any whitespace around the seed is ignored).
pub fn read_seed_file(path: &Path) -> anyhow::Result<KeyPair> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("failed to read key file {}", path.display()))?;
    KeyPair::from_seed(&text).with_context(|| format!("failed to read key file {}", path.display()))
}

fn list_keys(dir: &Path) -> anyhow::Result<Vec<ListedKey>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries = fs::read_dir(dir)
        .with_context(|| format!("failed to list keys directory {}", dir.display()))?;
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("failed to list keys directory {}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some(KEY_EXTENSION) || !path.is_file() {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let listed = match fs::read_to_string(&path)
            .map_err(anyhow::Error::from)
            .and_then(|s| KeyPair::from_seed(&s).map_err(anyhow::Error::from))
        {
            Ok(kp) => ListedKey {
                name,
                key_type: Some(kp.kind().name()),
                public_key: Some(kp.public_key()),
                error: None,
            },
            Err(e) => ListedKey {
                name,
                key_type: None,
                public_key: None,
                error: Some(e.to_string()),
            },
        };
        keys.push(listed);
    }
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(keys)
}

/// Where a key used by a command came from, so the user can find it again.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum KeySource {
    /// Given on the command line or in the environment.
    Given,
    /// Read from an existing file in the keys directory.
    Stored {
        /// The file.
        path: String,
    },
    /// Generated now and saved to the keys directory.
    Generated {
        /// The new file.
        path: String,
    },
}

impl KeySource {
    /// A short phrase for text output.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Given => "given".to_string(),
            KeySource::Stored { path } => format!("reused from {path}"),
            KeySource::Generated { path } => format!("generated and saved to {path}"),
        }
    }
}

/// Reads key `name` of `kind` from `dir`, or generates and stores it if it does not exist
/// yet (directory mode 0700, file mode 0600).
pub fn load_or_generate(
    dir: &Path,
    name: &str,
    kind: KeyKind,
) -> anyhow::Result<(KeyPair, KeySource)> {
    check_key_name(name)?;
    let path = key_path(dir, name);
    if path.exists() {
        let kp = read_seed_file(&path)?;
        if kp.kind() != kind {
            bail!(
                "key file {} holds a {} key, but a {kind} key is needed; move it away or pass the key explicitly",
                path.display(),
                kp.kind()
            );
        }
        return Ok((
            kp,
            KeySource::Stored {
                path: path.display().to_string(),
            },
        ));
    }
    let kp = KeyPair::generate(kind);
    if !store_seed(dir, &path, &kp)? {
        // Another process created the key a moment ago: use theirs.
        return load_or_generate(dir, name, kind);
    }
    Ok((
        kp,
        KeySource::Generated {
            path: path.display().to_string(),
        },
    ))
}

/// Writes a new seed file, never overwriting an existing one. The seed is written to a
/// private temporary file first and then hard-linked into place, so a concurrent `wash`
/// (two hosts started at once) either wins or finds a complete file: returns `false` when
/// another process created `path` first.
pub(crate) fn store_seed(dir: &Path, path: &Path, kp: &KeyPair) -> anyhow::Result<bool> {
    let tmp = write_private_temp(dir, path, kp)?;
    let linked = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("failed to create key file {}", path.display())),
    };
    let _ = fs::remove_file(&tmp);
    linked
}

/// Replaces the seed file `path` with `kp` in one step (a reader sees the old or the new
/// key, never a partial file).
pub(crate) fn replace_seed(dir: &Path, path: &Path, kp: &KeyPair) -> anyhow::Result<()> {
    let tmp = write_private_temp(dir, path, kp)?;
    fs::rename(&tmp, path).with_context(|| {
        let _ = fs::remove_file(&tmp);
        format!("failed to replace key file {}", path.display())
    })
}

/// Writes `kp`'s seed to a fresh 0600 temporary file next to `path` (synced) and returns it.
fn write_private_temp(dir: &Path, path: &Path, kp: &KeyPair) -> anyhow::Result<PathBuf> {
    create_private_dir(dir)?;
    let seed = kp.seed().context("failed to encode the seed")?;
    write_private_temp_file(path, seed.as_bytes())
}

/// Writes `bytes` to a fresh 0600 temporary file next to `path` (synced, named after it
/// with a unique suffix) and returns its path, for a caller to rename into place: the
/// one way this tool writes secrets (seeds, creds).
pub(crate) fn write_private_temp_file(path: &Path, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let tmp = path.with_extension(format!("{extension}.tmp{}-{unique}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .with_context(|| format!("failed to write {}", tmp.display()));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("failed to create keys directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn concurrent_first_use_of_a_key_agrees_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        load_or_generate(dir.path(), "shared_service", KeyKind::Service)
                            .unwrap()
                            .0
                            .public_key()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "temporary files left behind");
    }
}
