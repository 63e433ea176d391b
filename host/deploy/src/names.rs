//! Names shared by every part of a deployment: the JetStream buckets of a lattice, their
//! keys, and the annotations that mark what a deployment started.
//!
//! Keys are built from app names and versions, so both are restricted to characters a
//! JetStream KV key allows and that cannot collide with the key layout (`.` separates
//! key tokens, so app names carry none).

use crate::error::DeployError;

/// Annotation naming the app an actor instance or provider was started for.
pub const ANNOTATION_APP: &str = "nimbus.deploy/app";
/// Annotation naming the manifest entry (actor or provider name) it was started for.
pub const ANNOTATION_COMPONENT: &str = "nimbus.deploy/component";
/// Annotation naming the app version that started it.
pub const ANNOTATION_VERSION: &str = "nimbus.deploy/version";

/// The bucket holding app records, versions and statuses of `lattice`.
pub fn apps_bucket(lattice: &str) -> String {
    format!("NIMBUS_APPS_{}", bucket_token(lattice))
}

/// The bucket holding the reconciler lease of `lattice` (its entries expire after the
/// lease TTL).
pub fn lease_bucket(lattice: &str) -> String {
    format!("NIMBUS_LEASE_{}", bucket_token(lattice))
}

/// The object store holding the actor modules deployments upload for `lattice`.
pub fn modules_bucket(lattice: &str) -> String {
    format!("NIMBUS_MODULES_{}", bucket_token(lattice))
}

/// The key of the lease entry.
pub const LEASE_KEY: &str = "reconciler";

/// Key of the record (desired state and history) of `app`.
pub fn record_key(app: &str) -> String {
    format!("app.{app}")
}

/// Key of the stored manifest of `app` at `version`.
pub fn version_key(app: &str, version: &str) -> String {
    format!("version.{app}.{version}")
}

/// Key of the status the reconciler last wrote for `app`.
pub fn status_key(app: &str) -> String {
    format!("status.{app}")
}

/// The app name of a record key (`app.NAME`), if it is one.
pub fn app_of_record_key(key: &str) -> Option<&str> {
    key.strip_prefix("app.").filter(|rest| !rest.contains('.'))
}

/// Checks that `name` can be an app name in keys: letters, digits, `-` and `_`.
pub fn check_app_name(name: &str) -> Result<(), DeployError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DeployError::InvalidName {
            what: "app name",
            value: name.to_string(),
            rule: "use 1 to 64 letters, digits, `-` or `_`",
        })
    }
}

/// Checks that `version` can be a version in keys: letters, digits, `.`, `-` and `_`,
/// not starting or ending with `.`.
pub fn check_version(version: &str) -> Result<(), DeployError> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && !version.starts_with('.')
        && !version.ends_with('.')
        && !version.contains("..")
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(DeployError::InvalidName {
            what: "version",
            value: version.to_string(),
            rule: "use 1 to 64 letters, digits, `.`, `-` or `_` (no leading, trailing or double `.`)",
        })
    }
}

/// A lattice name as it may appear in a stream name (no `.`, `*`, `>` or spaces).
fn bucket_token(lattice: &str) -> String {
    lattice
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names_follow_the_layout() {
        assert_eq!(apps_bucket("default"), "NIMBUS_APPS_default");
        assert_eq!(lease_bucket("a.b c"), "NIMBUS_LEASE_a_b_c");
        assert_eq!(version_key("pet", "1.2.0"), "version.pet.1.2.0");
        assert_eq!(app_of_record_key(&record_key("pet")), Some("pet"));
        assert_eq!(app_of_record_key("version.pet.1"), None);
        assert_eq!(app_of_record_key("app.a.b"), None);
    }

    #[test]
    fn names_that_break_keys_are_refused() {
        assert!(check_app_name("petclinic_2-a").is_ok());
        for bad in ["", "a.b", "a b", "a*", "ü"] {
            assert!(check_app_name(bad).is_err(), "{bad}");
        }
        assert!(check_version("1.2.0-rc_1").is_ok());
        for bad in ["", ".1", "1.", "1..2", "1 2", "v>"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
