//! The `wasi-echo` test actor (wasm32-wasip1), built on the `nimbus-actor` SDK and std I/O.
//!
//! Operations:
//! - `Echo`: returns the payload unchanged.
//! - `Print`: prints the payload (lossy UTF-8) as a line to stdout and `stderr: <payload>` to
//!   stderr; returns nothing.
//! - `WriteFile`: writes the payload to `/data.txt` (the host preopens the actor's directory
//!   as `/`); returns nothing.
//! - `ReadFile`: returns the contents of `/data.txt`, or an error.
//! - `Time`: returns the wall-clock time (`SystemTime::now()`) in whole seconds since the
//!   Unix epoch, as decimal ASCII.

use std::time::{SystemTime, UNIX_EPOCH};

use nimbus_actor::{HandlerResult, register_function};

/// The file `WriteFile` and `ReadFile` use, inside the preopened directory.
const DATA_FILE: &str = "/data.txt";

/// Registers the operations; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("Echo", echo);
    register_function("Print", print);
    register_function("WriteFile", write_file);
    register_function("ReadFile", read_file);
    register_function("Time", time);
}

fn echo(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    Ok(payload.to_vec())
}

fn print(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    let text = String::from_utf8_lossy(payload);
    println!("{text}");
    eprintln!("stderr: {text}");
    Ok(Vec::new())
}

fn write_file(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    std::fs::write(DATA_FILE, payload).map_err(|e| format!("cannot write {DATA_FILE}: {e}"))?;
    Ok(Vec::new())
}

fn read_file(_: &[u8]) -> HandlerResult<Vec<u8>> {
    Ok(std::fs::read(DATA_FILE).map_err(|e| format!("cannot read {DATA_FILE}: {e}"))?)
}

fn time(_: &[u8]) -> HandlerResult<Vec<u8>> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    Ok(secs.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_and_time() {
        assert_eq!(echo(b"hi").unwrap(), b"hi");
        let secs: u64 = String::from_utf8(time(b"").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(secs > 1_600_000_000);
    }
}
