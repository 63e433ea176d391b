//! Actor-to-actor calls between the petclinic actors. These are the petclinic's own JSON
//! operations ([`crate::ops`]), not a WIDL contract, so they have no generated sender; this
//! client puts them over the same [`HostCall`] the generated capability senders use
//! ([`nimbus_actor::WapcHost`] in a wasm32 actor, `testing::TestHost` in native tests).

use nimbus_actor::HostCall;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode_json, encode_json};
use crate::error::{ServiceError, ServiceResult};

/// Calls the operations of one other actor, addressed by its call alias. Requests and
/// replies are JSON; a reply is a `Result<T, ServiceError>`, so 400s and 404s survive
/// the hop.
pub struct ActorClient<'h, H: HostCall + ?Sized> {
    host: &'h H,
    alias: &'static str,
}

impl<'h, H: HostCall + ?Sized> ActorClient<'h, H> {
    /// A client for the actor with call alias `alias`.
    pub fn new(host: &'h H, alias: &'static str) -> Self {
        ActorClient { host, alias }
    }

    /// Runs `operation` on the actor. A failed host call (actor not running, no alias, trap)
    /// is [`ServiceError::Unavailable`]; an unreadable reply is
    /// [`ServiceError::Internal`].
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        operation: &str,
        request: &Req,
    ) -> ServiceResult<Resp> {
        let payload = encode_json(request).map_err(ServiceError::internal)?;
        // An empty binding is the default link name; the namespace is the call alias.
        let reply = self
            .host
            .host_call("", self.alias, operation, &payload)
            .map_err(|e| {
                ServiceError::unavailable(format!(
                    "call to {} ({operation}) failed: {e}",
                    self.alias
                ))
            })?;
        let result: ServiceResult<Resp> = decode_json("reply", &reply).map_err(|e| {
            ServiceError::internal(format!(
                "{} answered {operation} with an unreadable reply: {e}",
                self.alias
            ))
        })?;
        result
    }
}

/// Encodes the reply of a service operation (the counterpart of [`ActorClient::call`]).
pub fn reply<T: Serialize>(result: &ServiceResult<T>) -> Result<Vec<u8>, String> {
    encode_json(result)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use nimbus_actor::HostError;

    use super::*;

    /// binding, namespace, operation, payload.
    type Recorded = (String, String, String, Vec<u8>);

    /// A host that answers every call with one canned result and records the calls.
    struct Canned {
        answer: Result<Vec<u8>, String>,
        calls: RefCell<Vec<Recorded>>,
    }

    impl HostCall for Canned {
        fn host_call(&self, b: &str, ns: &str, op: &str, p: &[u8]) -> Result<Vec<u8>, HostError> {
            self.calls
                .borrow_mut()
                .push((b.into(), ns.into(), op.into(), p.to_vec()));
            self.answer.clone().map_err(HostError::new)
        }
        fn console_log(&self, _: &str) {}
    }

    #[test]
    fn actor_calls_use_empty_binding_and_the_alias() {
        let host = Canned {
            answer: reply(&Ok::<u32, ServiceError>(5)),
            calls: RefCell::new(Vec::new()),
        };
        let got: u32 = ActorClient::new(&host, "petclinic/owners")
            .call("Op", &"hi")
            .unwrap();
        assert_eq!(got, 5);
        let calls = host.calls.borrow();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "");
        assert_eq!(calls[0].1, "petclinic/owners");
        assert_eq!(calls[0].2, "Op");
        assert_eq!(calls[0].3, b"\"hi\"");
    }

    #[test]
    fn service_errors_survive_the_hop() {
        let host = Canned {
            answer: reply(&Err::<u32, _>(ServiceError::not_found("owner 9 not found"))),
            calls: RefCell::new(Vec::new()),
        };
        let got: ServiceResult<u32> = ActorClient::new(&host, "a").call("Op", &());
        assert_eq!(got, Err(ServiceError::not_found("owner 9 not found")));
    }

    #[test]
    fn host_failure_is_unavailable_and_garbage_is_internal() {
        let host = Canned {
            answer: Err("no actor with call alias a".into()),
            calls: RefCell::new(Vec::new()),
        };
        let err = ActorClient::new(&host, "a")
            .call::<_, u32>("Op", &())
            .unwrap_err();
        assert_eq!(err.status(), 503);
        assert!(err.message().contains("call to a (Op) failed"), "{err}");
        assert!(
            err.message().contains("no actor with call alias a"),
            "{err}"
        );

        let host = Canned {
            answer: Ok(vec![0xc1]),
            calls: RefCell::new(Vec::new()),
        };
        let err = ActorClient::new(&host, "a")
            .call::<_, u32>("Op", &())
            .unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(err.message().contains("unreadable reply"), "{err}");
    }
}
