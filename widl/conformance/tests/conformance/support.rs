//! Shared helpers: the golden vectors of the published crates, hex, a recording host.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;

/// `widl/golden/vectors.json`, written by the published crates (see widl/golden).
#[derive(Debug, Deserialize)]
pub struct Golden {
    pub source: String,
    pub vectors: Vec<Vector>,
    pub keyvalue_operations: Vec<String>,
}

/// One value with the bytes the published crate encodes it to.
#[derive(Debug, Clone, Deserialize)]
pub struct Vector {
    pub interface: String,
    pub r#type: String,
    pub name: String,
    pub value: serde_json::Value,
    pub msgpack: String,
}

pub fn golden() -> Golden {
    serde_json::from_str(include_str!("../../../golden/vectors.json"))
        .expect("widl/golden/vectors.json is valid")
}

/// The golden vector called `name`.
pub fn vector(name: &str) -> Vector {
    golden()
        .vectors
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no golden vector {name}"))
}

/// The golden bytes of vector `name`.
pub fn bytes(name: &str) -> Vec<u8> {
    unhex(&vector(name).msgpack)
}

/// The golden value of vector `name`, as one of our types.
pub fn value<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_value(vector(name).value).unwrap()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// One host call the actor made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub binding: String,
    pub namespace: String,
    pub operation: String,
    pub payload: Vec<u8>,
}

/// Installs a scripted host that records every call and answers with `reply`; returns the
/// record.
pub fn recording_host(
    reply: impl Fn(&Call) -> Result<Vec<u8>, String> + 'static,
) -> Rc<RefCell<Vec<Call>>> {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let record = calls.clone();
    nimbus_actor::testing::set_host(move |binding, namespace, operation, payload| {
        let call = Call {
            binding: binding.to_string(),
            namespace: namespace.to_string(),
            operation: operation.to_string(),
            payload: payload.to_vec(),
        };
        let answer = reply(&call);
        record.borrow_mut().push(call);
        answer
    });
    calls
}
