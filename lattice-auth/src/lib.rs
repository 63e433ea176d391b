//! NATS decentralized auth for a lattice, as data: who may publish and subscribe to what
//! ([`Role::permissions`]), and the operator, account and user JWTs that carry it, signed
//! with nkeys (the [`nats_jwt_rs`] crate).
//!
//! The crate writes no files and keeps no keys: `wash lattice init` stores the keys and
//! writes the creds files and the server configuration; the test harness makes a whole
//! authenticated lattice in memory with the same code, so the suite runs with the
//! permissions users get.
//!
//! One operator signs three accounts: the server's system account (JetStream in operator
//! mode needs one), the lattice's account (hosts, providers, `wash`, observers) and a data
//! account for the key-value provider's `backend=nats` data, which the lattice's members
//! cannot read.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use nats_jwt_rs::Claims;
use nats_jwt_rs::account::{Account, JetStreamLimits, OperatorLimits};
use nats_jwt_rs::operator::Operator;
use nats_jwt_rs::types::{Permission, Permissions, ResponsePermission};
use nats_jwt_rs::user::User;
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::subjects::{
    CFG_PREFIX, DEFAULT_CTL_PREFIX, EVT_PREFIX, RPC_PREFIX, RPCEVT_PREFIX,
};
use serde::Serialize;

/// What went wrong making a lattice's JWTs.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A key could not be encoded as a seed (the nkeys crate refused it).
    #[error("failed to encode the seed of key {key}: {reason}")]
    Seed {
        /// The key's public key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A JWT could not be signed.
    #[error("failed to sign the JWT of {what}: {reason}")]
    Sign {
        /// Whose JWT (`operator`, `account NAME`, `user NAME`).
        what: String,
        /// Why.
        reason: String,
    },
}

/// Who a user of the lattice is, and so what it may publish and subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A host (`wash up`): RPC, control interface, events and JetStream of the lattice.
    Host,
    /// A capability provider: its own RPC, link, health and shutdown subjects, calls to
    /// actors, replies.
    Provider,
    /// A `wash` user who runs the lattice: control interface, events, JetStream, calls to
    /// actors.
    Wash,
    /// A read-only observer: lists hosts, inventories, claims, links and apps, reads
    /// events; cannot start, stop, scale, link or deploy.
    Observer,
    /// The key-value provider's `backend=nats` connection, in the lattice's data account:
    /// JetStream there and nothing of the lattice.
    Keyvalue,
}

impl Role {
    /// Every role `wash lattice init` issues credentials for.
    pub const ALL: [Role; 5] = [
        Role::Host,
        Role::Provider,
        Role::Wash,
        Role::Observer,
        Role::Keyvalue,
    ];

    /// The role's name (and the stem of its `.creds` file).
    pub fn name(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Provider => "provider",
            Role::Wash => "wash",
            Role::Observer => "observer",
            Role::Keyvalue => "keyvalue",
        }
    }

    /// The subject permissions of the role on `lattice` (one subject token; `*` gives the
    /// role on every lattice of the account, which is what the test harness issues).
    /// `provider_key` narrows a provider's subjects to its own
    /// (`wasmbus.rpc.{lattice}.{key}.>`); without it, a provider may serve any provider
    /// subject of the lattice (never an actor's).
    pub fn permissions(self, lattice: &str, provider_key: Option<&str>) -> RolePermissions {
        let rpc = format!("{RPC_PREFIX}.{lattice}");
        let ctl = format!("{DEFAULT_CTL_PREFIX}.{lattice}");
        let evt = format!("{EVT_PREFIX}.{lattice}");
        let rpcevt = format!("{RPCEVT_PREFIX}.{lattice}");
        let events = [evt.clone(), format!("{evt}.>"), rpcevt.clone()];
        let inbox = "_INBOX.>".to_string();
        // The lattice's JetStream (its account holds nothing else): API, KV and object
        // store writes, acknowledgements and flow control of consumers.
        let jetstream = ["$JS.API.>", "$KV.>", "$O.>", "$JS.ACK.>", "$JS.FC.>"].map(String::from);
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Role::Host => RolePermissions {
                publish: [
                    vec![
                        format!("{rpc}.>"),
                        format!("{ctl}.>"),
                        format!("{CFG_PREFIX}.{lattice}.>"),
                        inbox.clone(),
                    ],
                    events.to_vec(),
                    jetstream.to_vec(),
                ]
                .concat(),
                subscribe: [
                    vec![format!("{rpc}.>"), format!("{ctl}.>"), inbox],
                    events.to_vec(),
                ]
                .concat(),
                respond: false,
            },
            Role::Provider => {
                let own = provider_key.map_or_else(
                    || {
                        // A provider's subjects have five tokens or more; an actor's four.
                        vec![format!("{rpc}.*.*"), format!("{rpc}.*.*.>")]
                    },
                    |key| vec![format!("{rpc}.{key}.>")],
                );
                RolePermissions {
                    // Calls to actors (`wasmbus.rpc.{lattice}.{actor}`) only; answers to
                    // the requests it got through the response permission.
                    publish: vec![format!("{rpc}.*")],
                    subscribe: [own, vec![inbox]].concat(),
                    respond: true,
                }
            }
            Role::Wash => RolePermissions {
                publish: [
                    vec![format!("{ctl}.>"), format!("{rpc}.*")],
                    jetstream.to_vec(),
                ]
                .concat(),
                subscribe: [vec![inbox], events.to_vec()].concat(),
                respond: false,
            },
            Role::Observer => RolePermissions {
                publish: [
                    vec![format!("{ctl}.ping.hosts"), format!("{ctl}.get.>")],
                    strings(&[
                        "$JS.API.INFO",
                        "$JS.API.STREAM.INFO.*",
                        "$JS.API.STREAM.NAMES",
                        "$JS.API.STREAM.LIST",
                        "$JS.API.STREAM.MSG.GET.*",
                        "$JS.API.DIRECT.GET.>",
                        "$JS.API.CONSUMER.CREATE.>",
                        "$JS.API.CONSUMER.INFO.>",
                        "$JS.API.CONSUMER.DELETE.>",
                        "$JS.API.CONSUMER.MSG.NEXT.>",
                        "$JS.API.CONSUMER.NAMES.>",
                        "$JS.API.CONSUMER.LIST.>",
                        "$JS.ACK.>",
                        "$JS.FC.>",
                    ]),
                ]
                .concat(),
                subscribe: [vec![inbox], events.to_vec()].concat(),
                respond: false,
            },
            Role::Keyvalue => RolePermissions {
                publish: [vec![inbox.clone()], jetstream.to_vec()].concat(),
                subscribe: vec![inbox],
                respond: false,
            },
        }
    }

    /// Whether the role's user belongs to the data account rather than the lattice's.
    pub fn in_data_account(self) -> bool {
        self == Role::Keyvalue
    }
}

/// What a user may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolePermissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
    /// May answer the requests it receives (one reply each), whatever their reply subject.
    pub respond: bool,
}

/// Users the lattice's accounts no longer admit: user public key (`U...`) → unix time in
/// seconds; the server refuses a user JWT of that key issued at or before it (and closes
/// its connections when it learns of it).
pub type Revocations = BTreeMap<String, u64>;

/// The operator and account keys of one lattice: whoever holds them can issue users.
pub struct Signers {
    /// Signs the accounts; the server trusts its JWT.
    pub operator: KeyPair,
    /// The server's own account (`$SYS`-like; JetStream needs one in operator mode).
    pub system_account: KeyPair,
    /// The lattice's members.
    pub account: KeyPair,
    /// The key-value provider's `backend=nats` data.
    pub data_account: KeyPair,
}

/// A user issued by [`Signers::issue_user`].
pub struct IssuedUser {
    /// The `.creds` text (JWT and seed).
    pub creds: String,
    /// The user JWT alone (what 0.x host data hands a provider).
    pub jwt: String,
    /// The user's nkey seed alone (`SU...`).
    pub seed: String,
    /// The user's public key (`U...`).
    pub public_key: String,
}

impl Signers {
    /// Fresh keys, for a lattice that lives as long as the process (tests) or whose keys
    /// the caller stores.
    pub fn generate() -> Self {
        Self {
            operator: KeyPair::generate(KeyKind::Operator),
            system_account: KeyPair::generate(KeyKind::Account),
            account: KeyPair::generate(KeyKind::Account),
            data_account: KeyPair::generate(KeyKind::Account),
        }
    }

    /// The operator's self-signed JWT (naming the system account).
    pub fn operator_jwt(&self, lattice: &str) -> Result<String, AuthError> {
        operator_jwt(&self.operator, &self.system_account, lattice)
    }

    /// The name of the data account of `lattice`.
    pub fn data_account_name(lattice: &str) -> String {
        format!("{lattice}_data")
    }

    /// Issues a new user of `role` on `lattice` (a fresh user key): its creds and key.
    pub fn issue_user(
        &self,
        lattice: &str,
        role: Role,
        provider_key: Option<&str>,
    ) -> Result<IssuedUser, AuthError> {
        let user = KeyPair::generate(KeyKind::User);
        let account = if role.in_data_account() {
            &self.data_account
        } else {
            &self.account
        };
        let name = match provider_key {
            Some(key) => format!("{lattice}-{}-{key}", role.name()),
            None => format!("{lattice}-{}", role.name()),
        };
        let jwt = user_jwt(
            account,
            &user,
            &name,
            &role.permissions(lattice, provider_key),
        )?;
        let seed = seed_of(&user)?;
        Ok(IssuedUser {
            creds: creds_text(&jwt, &seed),
            jwt,
            seed,
            public_key: user.public_key(),
        })
    }

    /// The server side of the lattice, for a nats-server configuration: the operator,
    /// `resolver: MEMORY` with the three accounts preloaded (the lattice's two refusing
    /// the `revoked` users) and, with `tls` (certificate and key files), TLS required of
    /// every client.
    ///
    /// `operator_jwt` reuses the operator JWT of an earlier `auth.conf`: nats-server
    /// refuses a configuration reload that changes the trusted operators, and a JWT signed
    /// anew differs (its issue time), so rewrites for a running server must keep it.
    pub fn auth_conf(
        &self,
        lattice: &str,
        tls: Option<(&Path, &Path)>,
        revoked: &Revocations,
        operator_jwt: Option<&str>,
    ) -> Result<String, AuthError> {
        let operator = match operator_jwt {
            Some(jwt) => jwt.to_string(),
            None => self.operator_jwt(lattice)?,
        };
        let none = Revocations::new();
        let system = account_jwt(&self.operator, &self.system_account, "SYS", false, &none)?;
        let account = account_jwt(&self.operator, &self.account, lattice, true, revoked)?;
        let data_name = Self::data_account_name(lattice);
        let data_account = account_jwt(
            &self.operator,
            &self.data_account,
            &data_name,
            true,
            revoked,
        )?;
        let mut auth = String::new();
        let _ = writeln!(
            auth,
            "# NATS decentralized auth of lattice `{lattice}`.\n\
             # Operator {}; account {} (`{lattice}`: hosts, providers, wash, observers);\n\
             # account {} (`{data_name}`: key-value data of backend=nats).",
            self.operator.public_key(),
            self.account.public_key(),
            self.data_account.public_key(),
        );
        let _ = writeln!(auth, "operator: {operator:?}");
        let _ = writeln!(auth, "system_account: {}", self.system_account.public_key());
        let _ = writeln!(auth, "resolver: MEMORY");
        let _ = writeln!(auth, "resolver_preload: {{");
        let _ = writeln!(auth, "  {}: {system:?}", self.system_account.public_key());
        let _ = writeln!(auth, "  {}: {account:?}", self.account.public_key());
        let _ = writeln!(
            auth,
            "  {}: {data_account:?}",
            self.data_account.public_key()
        );
        let _ = writeln!(auth, "}}");
        if let Some((cert, key)) = tls {
            let _ = writeln!(
                auth,
                "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  timeout: 5\n}}",
                cert.display().to_string(),
                key.display().to_string()
            );
        }
        Ok(auth)
    }
}

/// A `.creds` file's text (the layout `nsc` writes and NATS clients read).
pub fn creds_text(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

fn seed_of(key: &KeyPair) -> Result<String, AuthError> {
    key.seed().map_err(|e| AuthError::Seed {
        key: key.public_key(),
        reason: e.to_string(),
    })
}

/// The `nkeys` key pair of one of ours, for the JWT crate.
fn nkeys_pair(key: &KeyPair) -> Result<nkeys::KeyPair, AuthError> {
    nkeys::KeyPair::from_seed(&seed_of(key)?).map_err(|e| AuthError::Seed {
        key: key.public_key(),
        reason: e.to_string(),
    })
}

fn sign<T>(
    claims: &Claims<T>,
    key: &KeyPair,
    what: impl FnOnce() -> String,
) -> Result<String, AuthError>
where
    T: nats_jwt_rs::Claim + Serialize + serde::de::DeserializeOwned + Clone,
{
    claims
        .encode(&nkeys_pair(key)?)
        .map_err(|e| AuthError::Sign {
            what: what(),
            reason: e.to_string(),
        })
}

/// The operator's self-signed JWT, naming the system account.
fn operator_jwt(operator: &KeyPair, system: &KeyPair, lattice: &str) -> Result<String, AuthError> {
    let mut claims = Operator::new_claims(format!("nimbus-{lattice}"), operator.public_key());
    claims.nats.system_account = Some(system.public_key());
    sign(&claims, operator, || "the operator".into())
}

/// An account JWT signed by the operator; with `jetstream`, JetStream on without limits.
fn account_jwt(
    operator: &KeyPair,
    account: &KeyPair,
    name: &str,
    jetstream: bool,
    revoked: &Revocations,
) -> Result<String, AuthError> {
    let mut claims: Claims<Account> = Account::new_claims(name.to_string(), account.public_key());
    if !revoked.is_empty() {
        claims.nats.revocations = Some(revoked.clone());
    }
    if jetstream {
        let limits = claims
            .nats
            .limits
            .get_or_insert_with(OperatorLimits::default);
        limits.jetstream = Some(JetStreamLimits {
            memory_storage: Some(-1),
            disk_storage: Some(-1),
            streams: Some(-1),
            consumer: Some(-1),
            ..JetStreamLimits::default()
        });
    }
    sign(&claims, operator, || format!("account `{name}`"))
}

/// A user JWT signed by `account` with `permissions`.
fn user_jwt(
    account: &KeyPair,
    user: &KeyPair,
    name: &str,
    permissions: &RolePermissions,
) -> Result<String, AuthError> {
    let mut claims: Claims<User> = User::new_claims(name.to_string(), user.public_key());
    claims.nats.permissions.permissions = Permissions {
        publish: Permission {
            allow: permissions.publish.clone(),
            deny: Vec::new(),
        },
        subscribe: Permission {
            allow: permissions.subscribe.clone(),
            deny: Vec::new(),
        },
        resp: permissions.respond.then_some(ResponsePermission {
            max_messages: 1,
            ttl: Duration::ZERO,
        }),
    };
    sign(&claims, account, || format!("user `{name}`"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn payload(jwt: &str) -> serde_json::Value {
        use base64::Engine as _;
        let part = jwt.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn roles_see_only_their_subjects() {
        let l = "petclinic";
        let provider = Role::Provider.permissions(l, Some("VKEY"));
        assert_eq!(
            provider.subscribe,
            ["wasmbus.rpc.petclinic.VKEY.>", "_INBOX.>"]
        );
        assert_eq!(provider.publish, ["wasmbus.rpc.petclinic.*"]);
        assert!(provider.respond);
        let shared = Role::Provider.permissions(l, None);
        assert!(
            shared
                .subscribe
                .contains(&"wasmbus.rpc.petclinic.*.*".to_string())
        );
        assert!(!shared.publish.iter().any(|s| s.contains("ctl")));
        let observer = Role::Observer.permissions(l, None);
        assert!(
            observer
                .publish
                .contains(&"wasmbus.ctl.petclinic.get.>".to_string())
        );
        assert!(!observer.publish.iter().any(|s| s.contains(".cmd.")
            || s.contains("auction")
            || s.contains("linkdefs")
            || s.starts_with("$KV")
            || s == "$JS.API.>"));
        let wash = Role::Wash.permissions(l, None);
        assert!(
            wash.publish
                .contains(&"wasmbus.ctl.petclinic.>".to_string())
        );
        assert!(!wash.subscribe.iter().any(|s| s.starts_with("wasmbus.rpc.")));
        let host = Role::Host.permissions(l, None);
        assert!(
            host.subscribe
                .contains(&"wasmbus.rpc.petclinic.>".to_string())
        );
    }

    #[test]
    fn every_lattice_is_one_wildcard_token() {
        let host = Role::Host.permissions("*", None);
        assert!(host.subscribe.contains(&"wasmbus.rpc.*.>".to_string()));
        assert!(host.publish.contains(&"wasmbus.ctl.*.>".to_string()));
        let provider = Role::Provider.permissions("*", None);
        assert_eq!(provider.publish, ["wasmbus.rpc.*.*"]);
    }

    #[test]
    fn users_are_signed_by_their_account_and_accounts_by_the_operator() {
        let signers = Signers::generate();
        for role in Role::ALL {
            let user = signers.issue_user("demo", role, None).unwrap();
            let jwt = user.creds.lines().nth(1).unwrap();
            let claims = payload(jwt);
            assert_eq!(claims["sub"], user.public_key.as_str());
            let issuer = if role.in_data_account() {
                signers.data_account.public_key()
            } else {
                signers.account.public_key()
            };
            assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
            assert_eq!(claims["nats"]["type"], "user");
            assert!(user.creds.contains("-----BEGIN USER NKEY SEED-----\nSU"));
        }
        let auth = signers
            .auth_conf("demo", None, &Revocations::new(), None)
            .unwrap();
        assert!(auth.contains("resolver: MEMORY"), "{auth}");
        assert!(!auth.contains("tls {"), "{auth}");
        let account = signers.account.public_key();
        let account_jwt = auth
            .lines()
            .find(|l| l.trim_start().starts_with(&account))
            .and_then(|l| l.split('"').nth(1))
            .unwrap();
        let claims = payload(account_jwt);
        assert_eq!(claims["nats"]["limits"]["disk_storage"], -1, "{claims}");
        assert_eq!(claims["iss"], signers.operator.public_key().as_str());
        assert!(claims["nats"].get("revocations").is_none(), "{claims}");
        let with_tls = signers
            .auth_conf(
                "demo",
                Some((Path::new("/c.pem"), Path::new("/k.pem"))),
                &Revocations::new(),
                None,
            )
            .unwrap();
        assert!(with_tls.contains("cert_file: \"/c.pem\""), "{with_tls}");

        // A revoked user is named in both accounts of the lattice.
        let revoked = Revocations::from([("UREVOKED".to_string(), 1_700_000_000)]);
        let operator = signers.operator_jwt("demo").unwrap();
        let auth = signers
            .auth_conf("demo", None, &revoked, Some(&operator))
            .unwrap();
        assert!(auth.contains(&format!("operator: {operator:?}")), "{auth}");
        for key in [
            signers.account.public_key(),
            signers.data_account.public_key(),
        ] {
            let jwt = auth
                .lines()
                .find(|l| l.trim_start().starts_with(&key))
                .and_then(|l| l.split('"').nth(1))
                .unwrap();
            assert_eq!(
                payload(jwt)["nats"]["revocations"]["UREVOKED"],
                1_700_000_000
            );
        }
    }
}
