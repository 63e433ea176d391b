//! The waPC ABI, host side: the functions a guest imports and the per-call state they
//! read and write.
//!
//! Every function is linked under both import module names in use (`wapc` for classic
//! waPC guests, `wasmbus` for the newer generation); a guest resolves only what it
//! imports. Unlike the published host, a bad pointer or bad UTF-8 from the guest is a
//! clean trap or a host-call error, never a host panic.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Caller, Linker, Memory, ResourceLimiter};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::host_calls::{HostCall, HostCalls};

/// The import module names a waPC guest may use.
pub(crate) const WAPC_MODULES: [&str; 2] = ["wapc", "wasmbus"];

/// The WASI import module this host links.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// The waPC imports this host provides.
pub(crate) const WAPC_IMPORTS: [&str; 9] = [
    "__guest_request",
    "__guest_response",
    "__guest_error",
    "__host_call",
    "__host_response_len",
    "__host_response",
    "__host_error_len",
    "__host_error",
    "__console_log",
];

/// The slots of one guest call, cleared at the start of each call.
#[derive(Default)]
pub(crate) struct CallState {
    pub operation: String,
    pub request: Vec<u8>,
    pub response: Option<Vec<u8>>,
    pub error: Option<String>,
    pub host_response: Option<Vec<u8>>,
    pub host_error: Option<String>,
}

impl CallState {
    fn begin(&mut self, operation: &str, request: &[u8]) {
        self.operation.clear();
        self.operation.push_str(operation);
        self.request.clear();
        self.request.extend_from_slice(request);
        self.response = None;
        self.error = None;
        self.host_response = None;
        self.host_error = None;
    }
}

/// Caps memory and table growth of one instance and remembers whether the cap was hit,
/// so a trap that follows can be reported as what it is.
pub(crate) struct Limits {
    pub max_memory: usize,
    pub max_table: usize,
    pub memory_limit_hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.memory_limit_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table)
    }
}

/// Everything an instance's host functions can see.
pub(crate) struct StoreData {
    pub call: CallState,
    pub limits: Limits,
    pub wasi: Option<WasiP1Ctx>,
    pub memory: Option<Memory>,
    pub host: Arc<dyn HostCalls>,
    pub actor_id: Arc<str>,
    /// When the running guest code must stop; checked at every epoch tick.
    pub deadline: Instant,
}

impl StoreData {
    /// Starts a guest call: sets the request and clears every other slot.
    pub fn begin_call(&mut self, operation: &str, request: &[u8]) {
        self.call.begin(operation, request);
        self.limits.memory_limit_hit = false;
    }
}

fn memory(caller: &mut Caller<'_, StoreData>) -> wasmtime::Result<Memory> {
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
    match caller.get_export("memory") {
        Some(wasmtime::Extern::Memory(memory)) => {
            caller.data_mut().memory = Some(memory);
            Ok(memory)
        }
        _ => Err(wasmtime::Error::msg(
            "the guest does not export a memory named `memory`",
        )),
    }
}

fn read_bytes(caller: &mut Caller<'_, StoreData>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let memory = memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let bytes = start
        .checked_add(len)
        .and_then(|end| memory.data(&*caller).get(start..end))
        .ok_or_else(|| {
            wasmtime::Error::msg(format!(
                "guest passed an out-of-bounds buffer (offset {start}, length {len})"
            ))
        })?;
    Ok(bytes.to_vec())
}

fn write_bytes(caller: &mut Caller<'_, StoreData>, ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    let memory = memory(caller)?;
    memory
        .write(&mut *caller, ptr as u32 as usize, bytes)
        .map_err(|_| {
            wasmtime::Error::msg(format!(
                "guest passed an out-of-bounds buffer (offset {}, length {})",
                ptr as u32,
                bytes.len()
            ))
        })
}

fn read_string(caller: &mut Caller<'_, StoreData>, ptr: i32, len: i32) -> wasmtime::Result<String> {
    let bytes = read_bytes(caller, ptr, len)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Adds the waPC functions under every waPC module name.
pub(crate) fn add_wapc_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    for module in WAPC_MODULES {
        linker.func_wrap(
            module,
            "__guest_request",
            |mut caller: Caller<'_, StoreData>, op_ptr: i32, ptr: i32| -> wasmtime::Result<()> {
                let request = std::mem::take(&mut caller.data_mut().call.request);
                let operation = std::mem::take(&mut caller.data_mut().call.operation);
                let written = write_bytes(&mut caller, ptr, &request)
                    .and_then(|()| write_bytes(&mut caller, op_ptr, operation.as_bytes()));
                let call = &mut caller.data_mut().call;
                call.request = request;
                call.operation = operation;
                written
            },
        )?;
        linker.func_wrap(
            module,
            "__guest_response",
            |mut caller: Caller<'_, StoreData>, ptr: i32, len: i32| -> wasmtime::Result<()> {
                let bytes = read_bytes(&mut caller, ptr, len)?;
                caller.data_mut().call.response = Some(bytes);
                Ok(())
            },
        )?;
        linker.func_wrap(
            module,
            "__guest_error",
            |mut caller: Caller<'_, StoreData>, ptr: i32, len: i32| -> wasmtime::Result<()> {
                let text = read_string(&mut caller, ptr, len)?;
                caller.data_mut().call.error = Some(text);
                Ok(())
            },
        )?;
        linker.func_wrap_async(
            module,
            "__host_call",
            |mut caller: Caller<'_, StoreData>,
             (bd_ptr, bd_len, ns_ptr, ns_len, op_ptr, op_len, ptr, len): (
                i32,
                i32,
                i32,
                i32,
                i32,
                i32,
                i32,
                i32,
            )| {
                Box::new(async move {
                    let binding = read_string(&mut caller, bd_ptr, bd_len)?;
                    let namespace = read_string(&mut caller, ns_ptr, ns_len)?;
                    let operation = read_string(&mut caller, op_ptr, op_len)?;
                    let payload = read_bytes(&mut caller, ptr, len)?;
                    let data = caller.data_mut();
                    data.call.host_response = None;
                    data.call.host_error = None;
                    let (host, actor) = (data.host.clone(), data.actor_id.clone());
                    // The guest is suspended on its fiber while the call is out; the
                    // task running it serves other work meanwhile.
                    let result = host
                        .host_call(HostCall {
                            actor: &actor,
                            binding: &binding,
                            namespace: &namespace,
                            operation: &operation,
                            payload: &payload,
                        })
                        .await;
                    let call = &mut caller.data_mut().call;
                    match result {
                        Ok(response) => {
                            call.host_response = Some(response);
                            Ok(1)
                        }
                        Err(error) => {
                            tracing::debug!(%actor, %namespace, %operation, %error, "host call failed");
                            call.host_error = Some(error.to_string());
                            Ok(0)
                        }
                    }
                })
            },
        )?;
        linker.func_wrap(
            module,
            "__host_response_len",
            |caller: Caller<'_, StoreData>| -> i32 {
                caller
                    .data()
                    .call
                    .host_response
                    .as_ref()
                    .map_or(0, |r| len_i32(r.len()))
            },
        )?;
        linker.func_wrap(
            module,
            "__host_response",
            |mut caller: Caller<'_, StoreData>, ptr: i32| -> wasmtime::Result<()> {
                if let Some(response) = caller.data_mut().call.host_response.take() {
                    let written = write_bytes(&mut caller, ptr, &response);
                    caller.data_mut().call.host_response = Some(response);
                    written?;
                }
                Ok(())
            },
        )?;
        linker.func_wrap(
            module,
            "__host_error_len",
            |caller: Caller<'_, StoreData>| -> i32 {
                caller
                    .data()
                    .call
                    .host_error
                    .as_ref()
                    .map_or(0, |e| len_i32(e.len()))
            },
        )?;
        linker.func_wrap(
            module,
            "__host_error",
            |mut caller: Caller<'_, StoreData>, ptr: i32| -> wasmtime::Result<()> {
                if let Some(error) = caller.data_mut().call.host_error.take() {
                    let written = write_bytes(&mut caller, ptr, error.as_bytes());
                    caller.data_mut().call.host_error = Some(error);
                    written?;
                }
                Ok(())
            },
        )?;
        linker.func_wrap(
            module,
            "__console_log",
            |mut caller: Caller<'_, StoreData>, ptr: i32, len: i32| -> wasmtime::Result<()> {
                let text = read_string(&mut caller, ptr, len)?;
                tracing::info!(target: "actor", actor = %caller.data().actor_id, "{text}");
                Ok(())
            },
        )?;
    }
    Ok(())
}
