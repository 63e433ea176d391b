//! Loading files for `import`: a [`Loader`] maps an import path (relative to the importing
//! file) to a canonical file name and its text. The checker uses the canonical name to load
//! each file once and to detect import cycles.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No file exists under the resolved name.
    #[error("file `{0}` not found")]
    NotFound(String),
    /// The file exists but could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The resolved path.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("`{0}` is not valid UTF-8")]
    NotUtf8(String),
}

/// A loaded file: its canonical name (used in diagnostics and for de-duplication) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// Canonical name: two imports of the same file must yield the same name.
    pub name: String,
    /// The file's text.
    pub text: String,
}

/// Resolves and reads WIDL files, so the checker can follow imports without knowing
/// whether files live on disk, in memory or elsewhere.
pub trait Loader {
    /// Loads `path` as written in an import of `importer` (`None` for the root file).
    fn load(&self, importer: Option<&str>, path: &str) -> Result<LoadedFile, LoadError>;
}

/// Joins an import path to the directory of the importing file and removes `.`/`..`
/// lexically, giving the same name for the same file however it was reached.
pub fn resolve_relative(importer: Option<&str>, path: &str) -> String {
    let joined: PathBuf = match importer {
        Some(from) if !Path::new(path).is_absolute() => Path::new(from)
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(path),
        _ => PathBuf::from(path),
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                // `..` cancels a preceding normal component only; leading `..`s (and `..`
                // after the root, which stays at the root) are kept or dropped as the OS would.
                match out.components().next_back() {
                    Some(Component::Normal(_)) => {
                        out.pop();
                    }
                    Some(Component::RootDir | Component::Prefix(_)) => {}
                    _ => out.push(".."),
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out.to_string_lossy().replace('\\', "/")
}

/// An in-memory file set, for tests and for tools that already hold the sources.
#[derive(Debug, Clone, Default)]
pub struct MemoryLoader {
    files: BTreeMap<String, String>,
}

impl MemoryLoader {
    /// An empty file set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file under `name` (normalised like import paths).
    pub fn with_file(mut self, name: &str, text: impl Into<String>) -> Self {
        self.insert(name, text);
        self
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, name: &str, text: impl Into<String>) {
        self.files.insert(resolve_relative(None, name), text.into());
    }
}

impl Loader for MemoryLoader {
    fn load(&self, importer: Option<&str>, path: &str) -> Result<LoadedFile, LoadError> {
        let name = resolve_relative(importer, path);
        match self.files.get(&name) {
            Some(text) => Ok(LoadedFile {
                name,
                text: text.clone(),
            }),
            None => Err(LoadError::NotFound(name)),
        }
    }
}

/// Loads files from the file system, resolving imports relative to the importing file.
#[derive(Debug, Clone, Default)]
pub struct FsLoader;

impl Loader for FsLoader {
    fn load(&self, importer: Option<&str>, path: &str) -> Result<LoadedFile, LoadError> {
        let name = resolve_relative(importer, path);
        match std::fs::read(&name) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Ok(LoadedFile { name, text }),
                Err(_) => Err(LoadError::NotUtf8(name)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LoadError::NotFound(name)),
            Err(source) => Err(LoadError::Io { path: name, source }),
        }
    }
}
