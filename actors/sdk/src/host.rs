//! The host as actor code sees it, as a trait: [`HostCall`]. Generated interface senders
//! and actor helpers take any `HostCall`, so the same code runs in a wasm32 actor over the
//! real waPC host ([`WapcHost`]) and in native unit tests over a fake that answers from
//! memory, without the thread-global scripted host of [`crate::testing`].

use crate::HostError;

/// One waPC host: `__host_call` and `__console_log`.
///
/// Implement it for a test double to run actor code natively; in an actor use [`WapcHost`].
pub trait HostCall {
    /// One `__host_call`: `binding` is the link name (empty means `default`), `namespace`
    /// the contract id or an actor's key or call alias. `Err` carries the host's error text.
    fn host_call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, HostError>;

    /// A line for the host's log; by default `__console_log` ([`crate::console_log`]).
    fn console_log(&self, msg: &str) {
        crate::console_log(msg);
    }
}

impl<H: HostCall + ?Sized> HostCall for &H {
    fn host_call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, HostError> {
        (**self).host_call(binding, namespace, operation, payload)
    }

    fn console_log(&self, msg: &str) {
        (**self).console_log(msg);
    }
}

/// The real host of the running actor: the global [`crate::host_call`] and
/// [`crate::console_log`]. Off wasm32 its calls go to the scripted host of
/// `testing::set_host`, or fail when there is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct WapcHost;

impl HostCall for WapcHost {
    fn host_call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, HostError> {
        crate::abi::host_call(
            &crate::abi::platform(),
            binding,
            namespace,
            operation,
            payload,
        )
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Records the calls and logs it sees; answers with the operation name.
    #[derive(Default)]
    struct Fake {
        seen: RefCell<Vec<String>>,
    }

    impl HostCall for Fake {
        fn host_call(&self, b: &str, ns: &str, op: &str, p: &[u8]) -> Result<Vec<u8>, HostError> {
            self.seen
                .borrow_mut()
                .push(format!("{b} {ns} {op} {}", p.len()));
            if op == "Fail" {
                return Err(HostError::new(format!("no link for {ns}")));
            }
            Ok(op.as_bytes().to_vec())
        }

        fn console_log(&self, msg: &str) {
            self.seen.borrow_mut().push(format!("log {msg}"));
        }
    }

    /// Generic code as an interface sender would write it.
    fn through(host: &impl HostCall, op: &str) -> Result<Vec<u8>, HostError> {
        host.console_log("calling");
        host.host_call("default", "x:y", op, b"abc")
    }

    #[test]
    fn a_fake_host_and_a_reference_to_it_see_the_same_calls() {
        let fake = Fake::default();
        assert_eq!(through(&fake, "Get").unwrap(), b"Get");
        assert_eq!(
            through(&&fake, "Fail").unwrap_err().message(),
            "no link for x:y"
        );
        assert_eq!(
            fake.seen.into_inner(),
            [
                "log calling",
                "default x:y Get 3",
                "log calling",
                "default x:y Fail 3"
            ]
        );
    }

    #[test]
    fn wapc_host_is_the_global_host_call() {
        crate::testing::set_host(|b, ns, op, p| {
            Ok([b, ns, op]
                .join("/")
                .into_bytes()
                .into_iter()
                .chain(p.iter().copied())
                .collect())
        });
        assert_eq!(
            WapcHost.host_call("l", "c:d", "Op", b"!").unwrap(),
            b"l/c:d/Op!"
        );
        crate::testing::clear_host();
        let err = WapcHost.host_call("l", "c:d", "Op", b"").unwrap_err();
        assert!(err.message().contains("no waPC host"), "{err}");
    }
}
