//! `wash claims`: sign actor modules with capability claims and inspect (and validate)
//! the claims of a module.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use nimbus_core::claims::{self, Actor, ActorClaimsParams, ClaimsError, TimeSpec, Token};
use nimbus_core::keys::{KeyKind, KeyPair, SEED_LEN};
use serde::Serialize;

use crate::keys::{self, KeySource};
use crate::output::OutputFormat;

/// Subcommands of `wash claims`.
#[derive(Debug, clap::Subcommand)]
pub enum ClaimsCommand {
    /// Sign an actor module: embed a JWT naming the actor, its capabilities and version,
    /// issued by an account key for the module's own key.
    Sign(Box<SignArgs>),
    /// Show the claims of a module and check them (signature, module hash, dates).
    Inspect(InspectArgs),
}

/// Arguments of `wash claims sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The actor module (`.wasm`) to sign.
    pub(crate) source: PathBuf,
    /// Where to write the signed module (default: `<source stem>_s.wasm` next to the
    /// source).
    #[arg(
        short = 'o',
        short_alias = 'd',
        long,
        visible_alias = "out",
        value_name = "FILE"
    )]
    pub(crate) destination: Option<PathBuf>,
    /// A human-readable name for the actor.
    #[arg(short = 'n', long)]
    pub(crate) name: String,
    /// A version string, e.g. `0.1.0`.
    #[arg(short = 'v', long)]
    pub(crate) ver: Option<String>,
    /// A revision number (increase it with every release).
    #[arg(short = 'r', long)]
    pub(crate) rev: Option<i32>,
    /// A capability contract id the actor may use, e.g. `wasmcloud:httpserver`
    /// (repeatable).
    #[arg(short = 'c', long = "cap", value_name = "CONTRACT_ID")]
    pub(crate) caps: Vec<String>,
    /// A free-form tag (repeatable).
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
    /// An alias callers may use instead of the module's public key.
    #[arg(short = 'a', long)]
    pub(crate) call_alias: Option<String>,
    /// The account key that signs (issuer): a seed `SA...` or a file holding one. Default:
    /// `<user>_account.nk` in the keys directory, generated if missing.
    #[arg(
        short = 'i',
        long,
        env = "WASH_ISSUER_KEY",
        hide_env_values = true,
        value_name = "SEED_OR_FILE"
    )]
    pub(crate) issuer: Option<String>,
    /// The module key (subject): a seed `SM...` or a file holding one. Default:
    /// `<source stem>_module.nk` in the keys directory, generated if missing.
    #[arg(
        short = 'u',
        long,
        env = "WASH_SUBJECT_KEY",
        hide_env_values = true,
        value_name = "SEED_OR_FILE"
    )]
    pub(crate) subject: Option<String>,
    /// The claims expire this many days after signing (default: never).
    #[arg(short = 'x', long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) expires_in: Option<u64>,
    /// The claims become valid this many days after signing (default: immediately).
    #[arg(short = 'b', long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) not_before: Option<u64>,
    /// The keys directory to read and store generated keys.
    #[arg(long, env = "WASH_KEYS", value_name = "DIR")]
    pub(crate) directory: Option<PathBuf>,
    /// Never generate keys: fail unless both --issuer and --subject are given.
    #[arg(long)]
    pub(crate) disable_keygen: bool,
    /// The name of the module key in the keys directory when --subject is not given
    /// (`wash build` takes it from the project file; default `<source stem>_module`).
    #[arg(skip)]
    pub(crate) module_key_name: Option<String>,
    /// The name of the account key in the keys directory when --issuer is not given
    /// (default `<user>_account`).
    #[arg(skip)]
    pub(crate) account_key_name: Option<String>,
}

/// Arguments of `wash claims inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The module to inspect.
    file: PathBuf,
    /// Print only the raw JWT.
    #[arg(long)]
    jwt_only: bool,
}

/// Runs `wash claims ...`.
pub fn run(cmd: ClaimsCommand, output: OutputFormat) -> anyhow::Result<()> {
    match cmd {
        ClaimsCommand::Sign(args) => sign(*args, output),
        ClaimsCommand::Inspect(args) => inspect(args, output),
    }
}

/// A key used for signing, with where it came from.
#[derive(Serialize)]
struct UsedKey {
    public_key: String,
    #[serde(flatten)]
    source: KeySource,
}

/// What signing a module did, as `wash claims sign` and `wash build` print it.
#[derive(Serialize)]
pub(crate) struct SignOutput {
    source: String,
    pub(crate) destination: String,
    pub(crate) module: String,
    account: String,
    hash: String,
    capabilities: Vec<String>,
    module_key: UsedKey,
    account_key: UsedKey,
}

fn sign(args: SignArgs, output: OutputFormat) -> anyhow::Result<()> {
    let out = sign_module(&args)?;
    output.print(|| sign_text(&out), &out)
}

/// Signs `args.source` into its destination (keys generated as `wash claims sign` does).
pub(crate) fn sign_module(args: &SignArgs) -> anyhow::Result<SignOutput> {
    let module = std::fs::read(&args.source)
        .with_context(|| format!("failed to read module {}", args.source.display()))?;
    let stem = args
        .source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let keys_dir = keys::keys_dir(args.directory.clone())?;

    let (subject, subject_source) = match &args.subject {
        Some(value) => (
            key_from_arg(value, KeyKind::Module, "--subject")?,
            KeySource::Given,
        ),
        None if args.disable_keygen => {
            bail!("no module key: pass --subject SEED_OR_FILE (or drop --disable-keygen)")
        }
        None => keys::load_or_generate(
            &keys_dir,
            &args
                .module_key_name
                .clone()
                .unwrap_or_else(|| format!("{}_module", keys::sanitize_key_name(&stem))),
            KeyKind::Module,
        )?,
    };
    let (issuer, issuer_source) = match &args.issuer {
        Some(value) => (
            key_from_arg(value, KeyKind::Account, "--issuer")?,
            KeySource::Given,
        ),
        None if args.disable_keygen => {
            bail!("no account key: pass --issuer SEED_OR_FILE (or drop --disable-keygen)")
        }
        None => keys::load_or_generate(
            &keys_dir,
            &args
                .account_key_name
                .clone()
                .unwrap_or_else(|| format!("{}_account", keys::sanitize_key_name(&user_name()))),
            KeyKind::Account,
        )?,
    };

    if let Some(cap) = args.caps.iter().find(|c| c.trim().is_empty()) {
        bail!("invalid --cap `{cap}`: give a contract id such as `wasmcloud:httpserver`");
    }
    let params = ActorClaimsParams {
        name: Some(args.name.clone()),
        caps: Some(args.caps.clone()),
        tags: args.tags.clone(),
        ver: args.ver.clone(),
        rev: args.rev,
        call_alias: args.call_alias.clone(),
        issued_at: None,
        expires: args.expires_in.map(TimeSpec::days),
        not_before: args.not_before.map(TimeSpec::days),
    };
    let signed = claims::sign_actor(&module, &params, &issuer, &subject)
        .with_context(|| format!("failed to sign {}", args.source.display()))?;
    let hash = nimbus_core::wasm::module_hash(&signed)
        .with_context(|| format!("failed to hash the signed {}", args.source.display()))?;

    let destination = args.destination.clone().unwrap_or_else(|| {
        args.source.with_file_name(format!(
            "{}_s.wasm",
            if stem.is_empty() { "module" } else { &stem }
        ))
    });
    std::fs::write(&destination, &signed)
        .with_context(|| format!("failed to write signed module {}", destination.display()))?;

    let out = SignOutput {
        source: args.source.display().to_string(),
        destination: destination.display().to_string(),
        module: subject.public_key(),
        account: issuer.public_key(),
        hash,
        capabilities: args.caps.clone(),
        module_key: UsedKey {
            public_key: subject.public_key(),
            source: subject_source,
        },
        account_key: UsedKey {
            public_key: issuer.public_key(),
            source: issuer_source,
        },
    };
    Ok(out)
}

/// The text `wash claims sign` prints about a signed module.
pub(crate) fn sign_text(out: &SignOutput) -> String {
    let caps = if out.capabilities.is_empty() {
        "none (the actor may call no provider; add --cap CONTRACT_ID)".to_string()
    } else {
        out.capabilities.join(", ")
    };
    format!(
        "Signed {} as {}\n  Module key:    {} ({})\n  Account key:   {} ({})\n  Hash:          {}\n  Capabilities:  {caps}",
        out.source,
        out.destination,
        out.module,
        out.module_key.source.describe(),
        out.account,
        out.account_key.source.describe(),
        out.hash,
    )
}

/// The user name used to name the default account key.
fn user_name() -> String {
    ["USER", "USERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// Reads a key given as a seed or as a file holding one, requiring `kind`. The value is
/// never echoed, since it may be a (mistyped) seed.
fn key_from_arg(value: &str, kind: KeyKind, flag: &str) -> anyhow::Result<KeyPair> {
    let trimmed = value.trim();
    if trimmed.len() == SEED_LEN && trimmed.starts_with('S') {
        return KeyPair::from_seed_of_kind(trimmed, kind)
            .with_context(|| format!("failed to use the key given with {flag}"));
    }
    let path = Path::new(value);
    if path.is_file() {
        let kp = keys::read_seed_file(path)?;
        if kp.kind() != kind {
            bail!(
                "{flag} file {} holds a {} key, but a {kind} key is needed",
                path.display(),
                kp.kind()
            );
        }
        return Ok(kp);
    }
    bail!(
        "{flag} must be the seed of a key of type {kind} (58 characters starting with `S{}`) or a file that holds one; the value given is neither",
        kind.prefix()
    )
}

#[derive(Serialize)]
struct InspectOutput {
    module: String,
    account: String,
    name: Option<String>,
    hash: String,
    /// `null` when the token has no `caps` claim (links alone grant access).
    capabilities: Option<Vec<String>>,
    version: Option<String>,
    revision: Option<i32>,
    tags: Vec<String>,
    call_alias: Option<String>,
    issued: String,
    expires: Option<String>,
    not_before: Option<String>,
    issued_at: u64,
    expires_at: Option<u64>,
    not_before_at: Option<u64>,
    wascap_revision: Option<u32>,
    valid: bool,
    error: Option<String>,
}

fn inspect(args: InspectArgs, output: OutputFormat) -> anyhow::Result<()> {
    let module = std::fs::read(&args.file)
        .with_context(|| format!("failed to read module {}", args.file.display()))?;
    let token = claims::extract_token(&module)
        .with_context(|| format!("failed to read the claims of {}", args.file.display()))?
        .ok_or(ClaimsError::NoClaims)
        .with_context(|| format!("{} has no claims", args.file.display()))?;
    let now = claims::unix_now();
    let verdict = claims::verify_actor(&module, now);

    if args.jwt_only {
        println!("{}", token.jwt);
    } else {
        let out = inspect_output(&token, verdict.as_ref().err());
        output.print(|| inspect_text(&args.file, &out, now), &out)?;
    }
    verdict
        .map(|_| ())
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("the claims of {} are invalid", args.file.display()))
}

fn inspect_output(token: &Token<Actor>, error: Option<&ClaimsError>) -> InspectOutput {
    let c = &token.claims;
    let meta = &c.wascap;
    InspectOutput {
        module: c.sub.clone(),
        account: c.iss.clone(),
        name: meta.name.clone(),
        hash: meta.hash.clone(),
        capabilities: meta.caps.clone(),
        version: meta.ver.clone(),
        revision: meta.rev,
        tags: meta.tags.clone().unwrap_or_default(),
        call_alias: meta.call_alias.clone(),
        issued: claims::format_unix_time(c.iat),
        expires: c.exp.map(claims::format_unix_time),
        not_before: c.nbf.map(claims::format_unix_time),
        issued_at: c.iat,
        expires_at: c.exp,
        not_before_at: c.nbf,
        wascap_revision: c.wascap_revision,
        valid: error.is_none(),
        error: error.map(ToString::to_string),
    }
}

fn inspect_text(file: &Path, out: &InspectOutput, now: u64) -> String {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_string());
    let caps = match &out.capabilities {
        None => "not restricted (no caps claim: links grant access)".to_string(),
        Some(c) if c.is_empty() => "none".to_string(),
        Some(c) => c.join(", "),
    };
    let tags = if out.tags.is_empty() {
        "none".to_string()
    } else {
        out.tags.join(", ")
    };
    let dated = |at: Option<u64>, absent: &str| match at {
        Some(t) => format!("{} ({})", claims::format_unix_time(t), relative(t, now)),
        None => absent.to_string(),
    };
    let status = if out.valid {
        "valid".to_string()
    } else {
        "INVALID (see the error below)".to_string()
    };
    let rows = [
        ("Name", or_none(&out.name)),
        ("Module", out.module.clone()),
        ("Account", out.account.clone()),
        ("Hash", out.hash.clone()),
        ("Capabilities", caps),
        ("Version", or_none(&out.version)),
        (
            "Revision",
            out.revision
                .map_or_else(|| "none".to_string(), |r| r.to_string()),
        ),
        ("Tags", tags),
        ("Call alias", or_none(&out.call_alias)),
        ("Issued", dated(Some(out.issued_at), "")),
        ("Expires", dated(out.expires_at, "never")),
        ("Not before", dated(out.not_before_at, "immediately")),
        ("Status", status),
    ];
    let mut text = format!("Claims of {}", file.display());
    for (label, value) in rows {
        text.push_str(&format!("\n  {:<14}{value}", format!("{label}:")));
    }
    text
}

/// "in 3 days" / "5 hours ago", to the largest whole unit.
fn relative(at: u64, now: u64) -> String {
    let (diff, future) = if at >= now {
        (at - now, true)
    } else {
        (now - at, false)
    };
    if diff < 60 {
        return if future { "now" } else { "just now" }.to_string();
    }
    let (n, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(secs, _)| diff >= *secs)
        .map_or((diff, "second"), |(secs, unit)| (diff / secs, unit));
    let plural = if n == 1 { "" } else { "s" };
    if future {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}
