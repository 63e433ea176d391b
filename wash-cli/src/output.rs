//! How `wash` prints data: human-readable text, or JSON for scripts (`--output json`).

use serde::Serialize;

/// The format of everything `wash` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

impl OutputFormat {
    /// Prints `text` in text mode, or `value` as pretty JSON in JSON mode.
    pub fn print<T: Serialize>(
        self,
        text: impl FnOnce() -> String,
        value: &T,
    ) -> anyhow::Result<()> {
        match self {
            OutputFormat::Text => println!("{}", text()),
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(value)?),
        }
        Ok(())
    }
}
