//! `Host::update_actor`, which `wash dev` swaps every rebuild in with: a call in flight
//! when the update lands finishes on the module it started on, calls after it run the new
//! module, and neither fails. The in-flight call is held inside a provider until the test
//! releases it, so the order is certain without timing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nimbus_core::link::LinkDefinition;
use nimbus_provider_sdk::{CallContext, Provider, ProviderError};
use nimbus_tests::{Signer, actor_wasm};
use tokio::sync::{Notify, Semaphore};

use crate::lattice_support::{TEST_CONTRACT, builder, cluster_seed, provider_key, test_link};

/// A `nimbus:test` provider whose `Echo` says it has the call, then waits for a permit.
struct GatedProvider {
    entered: Notify,
    release: Semaphore,
}

#[async_trait]
impl Provider for GatedProvider {
    fn contract_id(&self) -> &str {
        TEST_CONTRACT
    }

    async fn put_link(&self, _link: &LinkDefinition) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn delete_link(&self, _actor_id: &str) {}

    async fn handle_invocation(
        &self,
        _ctx: &CallContext,
        _operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.entered.notify_one();
        let permit = self.release.acquire().await;
        drop(permit);
        let mut out = b"provider:".to_vec();
        out.extend_from_slice(&payload);
        Ok(out)
    }
}

#[tokio::test]
async fn a_call_in_flight_finishes_on_the_old_module_and_later_calls_run_the_new_one() {
    let host = builder(&cluster_seed()).build().await.unwrap();
    let provider = Arc::new(GatedProvider {
        entered: Notify::new(),
        release: Semaphore::new(0),
    });
    let provider_id = provider_key();
    host.start_provider(provider.clone(), &provider_id, "default")
        .await
        .unwrap();
    // Two builds of one actor (one module key): the old one is the `echo` fixture, which
    // has `Count`; the new one is `wapc-echo`, which has not.
    let signer = Signer::new();
    let old = signer.sign(&actor_wasm("echo"), &[TEST_CONTRACT]);
    let new = signer.sign(&actor_wasm("wapc-echo"), &[TEST_CONTRACT]);
    let actor = host.start_actor(old, 1).await.unwrap();
    host.put_link(test_link(&actor, &provider_id))
        .await
        .unwrap();
    assert_eq!(host.call_actor(&actor, "Count", b"").await.unwrap(), b"1");

    // A call into the old module, held in the provider.
    let in_flight = {
        let host_call = host.call_actor_with_timeout(
            &actor,
            "HostCall",
            b"before".to_vec(),
            Duration::from_secs(30),
        );
        let entered = provider.entered.notified();
        tokio::pin!(host_call);
        tokio::select! {
            () = entered => {}
            result = &mut host_call => panic!("the call finished before the provider held it: {result:?}"),
        }
        // The swap while it is held; it completes without waiting for the call.
        host.update_actor(&actor, new).await.unwrap();
        // New calls run the new module: `Count` is gone, `Echo` answers.
        let err = host.call_actor(&actor, "Count", b"").await.unwrap_err();
        assert!(err.to_string().contains("unknown operation Count"), "{err}");
        assert_eq!(
            host.call_actor(&actor, "Echo", b"new").await.unwrap(),
            b"new"
        );
        provider.release.add_permits(1);
        host_call.await
    };
    // The held call finished, on the old module, without an error.
    assert_eq!(in_flight.unwrap(), b"provider:before");
    // And a later host call runs the new module's `HostCall` (released at once).
    provider.release.add_permits(1);
    assert_eq!(
        host.call_actor(&actor, "HostCall", b"after").await.unwrap(),
        b"provider:after"
    );
    host.stop().await.unwrap();
}
