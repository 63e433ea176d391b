//! The `wasmcloud:keyvalue` payloads as the published interface crates put them on the wire:
//! msgpack maps keyed by the interface's field names.
//!
//! - The top level is the waPC-era `wasmcloud-actor-keyvalue` 0.2 (`keyvalue.widl`): every
//!   operation takes `{Op}Args` with the parameters as fields. Note the mixed field styles
//!   of the published types: `ListResponse.newCount` but `SetOperationResponse.new_count`.
//!   These types are the ones generated from `widl/interfaces/keyvalue.widl` into
//!   `nimbus-interface-keyvalue`, re-exported here.
//! - [`BATCH_OPERATIONS`] (`GetMany`, `SetMany`, `DelMany`) are the nimbus extension of
//!   that interface (role `BatchStore` in the same WIDL): new operations only, so the 0.2
//!   shapes above stay byte for byte the published ones.
//! - [`v0`] holds the request shapes of the 0.x wasmbus interface
//!   (`wasmcloud-interface-keyvalue`, operations `KeyValue.Get`, `KeyValue.Increment`, ...),
//!   whose other requests and responses are bare strings, numbers, booleans and lists.
//!   No WIDL describes that generation, so they are written here.

pub use nimbus_interface_keyvalue::{
    AddArgs, AddResponse, ClearArgs, DelArgs, DelResponse, GetArgs, GetResponse, KeyExistsArgs,
    ListItemDeleteArgs, ListRangeResponse, ListResponse, OP_ADD, OP_CLEAR, OP_DEL, OP_GET,
    OP_KEY_EXISTS, OP_LIST_ITEM_DELETE, OP_PUSH, OP_RANGE, OP_SET, OP_SET_ADD, OP_SET_INTERSECTION,
    OP_SET_QUERY, OP_SET_REMOVE, OP_SET_UNION, PushArgs, RangeArgs, SetAddArgs, SetArgs,
    SetIntersectionArgs, SetOperationResponse, SetQueryArgs, SetQueryResponse, SetRemoveArgs,
    SetResponse, SetUnionArgs,
};
/// The batched operations (nimbus extension) and their shapes.
pub use nimbus_interface_keyvalue::{
    DelManyArgs, DelManyResponse, GetManyArgs, GetManyResponse, OP_DEL_MANY, OP_GET_MANY,
    OP_SET_MANY, SetManyArgs, SetManyItem, SetManyResponse,
};

/// All 0.2 operations, in WIDL order.
pub const OPERATIONS: [&str; 14] = [
    OP_GET,
    OP_ADD,
    OP_SET,
    OP_DEL,
    OP_CLEAR,
    OP_RANGE,
    OP_PUSH,
    OP_LIST_ITEM_DELETE,
    OP_SET_ADD,
    OP_SET_REMOVE,
    OP_SET_UNION,
    OP_SET_INTERSECTION,
    OP_SET_QUERY,
    OP_KEY_EXISTS,
];

/// The batched operations of the nimbus extension, in WIDL order. Only under these names
/// (not `KeyValue.*`): the 0.x interfaces have no such operations.
pub const BATCH_OPERATIONS: [&str; 3] = nimbus_interface_keyvalue::batch::OPERATIONS;

/// The 0.x wasmbus interface (`KeyValue.*` operations).
pub mod v0 {
    use serde::{Deserialize, Serialize};

    /// The operation-name prefix of the 0.x interface.
    pub const PREFIX: &str = "KeyValue.";

    /// A bare key, as 0.x sends it; a 0.2-style `{key}` map is accepted too.
    #[derive(Debug, PartialEq, Deserialize, Serialize, Clone)]
    #[serde(untagged)]
    pub enum KeyArg {
        /// The 0.x form: the key string itself.
        Bare(String),
        /// A map with a `key` field.
        Map {
            /// The key.
            key: String,
        },
    }

    impl KeyArg {
        /// The key.
        pub fn into_key(self) -> String {
            match self {
                KeyArg::Bare(k) | KeyArg::Map { key: k } => k,
            }
        }
    }

    /// Arguments of `KeyValue.Set`.
    #[derive(Debug, PartialEq, Deserialize, Serialize, Default, Clone)]
    pub struct SetRequest {
        /// The key to write.
        pub key: String,
        /// The string to store.
        pub value: String,
        /// Seconds until the key expires; 0 for never.
        pub expires: u32,
    }

    /// Arguments of `KeyValue.Increment`; returns the new value (i32).
    #[derive(Debug, PartialEq, Deserialize, Serialize, Default, Clone)]
    pub struct IncrementRequest {
        /// The counter's key.
        pub key: String,
        /// The amount to add.
        pub value: i32,
    }

    /// Arguments of `KeyValue.ListAdd` (append; returns the new length) and
    /// `KeyValue.ListDel` (remove the first occurrence; returns whether one was found).
    #[derive(Debug, PartialEq, Deserialize, Serialize, Default, Clone)]
    pub struct ListItemRequest {
        /// The list's key.
        #[serde(rename = "listName", alias = "key")]
        pub list_name: String,
        /// The element.
        pub value: String,
    }

    /// Arguments of `KeyValue.ListRange`; returns the elements.
    #[derive(Debug, PartialEq, Deserialize, Serialize, Default, Clone)]
    pub struct ListRangeRequest {
        /// The list's key.
        #[serde(rename = "listName", alias = "key")]
        pub list_name: String,
        /// First index, inclusive.
        pub start: i32,
        /// Last index, inclusive.
        pub stop: i32,
    }

    /// Arguments of `KeyValue.SetAdd` / `KeyValue.SetDel`; return the number of members
    /// added / removed (u32, 0 or 1).
    #[derive(Debug, PartialEq, Deserialize, Serialize, Default, Clone)]
    pub struct SetMemberRequest {
        /// The set's key.
        #[serde(rename = "setName", alias = "key")]
        pub set_name: String,
        /// The member.
        pub value: String,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn keys_of(bytes: &[u8]) -> Vec<String> {
        let value: rmpv::Value = rmp_serde::from_slice(bytes).unwrap();
        value
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn responses_use_the_published_field_names() {
        let enc = |b: Vec<u8>| keys_of(&b);
        assert_eq!(
            enc(rmp_serde::to_vec_named(&ListResponse { new_count: 1 }).unwrap()),
            ["newCount"]
        );
        assert_eq!(
            enc(rmp_serde::to_vec_named(&SetOperationResponse { new_count: 1 }).unwrap()),
            ["new_count"]
        );
        assert_eq!(
            enc(rmp_serde::to_vec_named(&GetResponse::default()).unwrap()),
            ["value", "exists"]
        );
        assert_eq!(
            enc(rmp_serde::to_vec_named(&SetArgs::default()).unwrap()),
            ["key", "value", "expires"]
        );
    }

    #[test]
    fn a_published_set_args_map_decodes() {
        // {"key": "k", "value": "v", "expires": 0} as the 0.2 crate encodes it.
        let bytes = [
            0x83, 0xa3, b'k', b'e', b'y', 0xa1, b'k', 0xa5, b'v', b'a', b'l', b'u', b'e', 0xa1,
            b'v', 0xa7, b'e', b'x', b'p', b'i', b'r', b'e', b's', 0x00,
        ];
        let args: SetArgs = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            args,
            SetArgs {
                key: "k".into(),
                value: "v".into(),
                expires: 0
            }
        );
    }

    #[test]
    fn v0_key_args_accept_a_bare_string_or_a_map() {
        let bare: v0::KeyArg = rmp_serde::from_slice(&rmp_serde::to_vec("k").unwrap()).unwrap();
        assert_eq!(bare.into_key(), "k");
        let map: v0::KeyArg =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&GetArgs { key: "m".into() }).unwrap())
                .unwrap();
        assert_eq!(map.into_key(), "m");
    }
}
