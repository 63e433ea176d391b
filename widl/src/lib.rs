//! WIDL: the interface language of waPC-era wasmCloud.
