//! `petclinic-owners`: the owners actor of the petclinic demo. It keeps owners, their pets
//! and the pet types in the `wasmcloud:keyvalue` capability (link name `default`) and asks
//! the visits actor (`petclinic/visits`) for the visits of an owner's pets.
//!
//! Operations: see [`petclinic_model::ops::owners`]. Every reply is a JSON
//! `Result<T, ServiceError>`; a waPC error means the request itself was unreadable.
//!
//! Key-value layout (values are JSON documents, sets hold decimal ids):
//!
//! | key | kind | content |
//! |---|---|---|
//! | `petclinic:owners:seeded` | counter | seed gate: the instance whose `Add` returns 1 seeds |
//! | `petclinic:owners:seq:owner`, `...:seq:pet` | counter | id allocation (`Add` 1) |
//! | `petclinic:owners:ids` | set | every owner id |
//! | `petclinic:owners:owner:{id}` | JSON | `OwnerRecord` (no pets) |
//! | `petclinic:owners:owner:{id}:pets` | set | the owner's pet ids |
//! | `petclinic:owners:pet:{id}` | JSON | `PetRecord` (type and owner by id) |
//! | `petclinic:owners:last-names` | set | every lower-case last name ever stored |
//! | `petclinic:owners:last-name:{lower-case name}` | set | ids of owners with that name |
//! | `petclinic:owners:pettypes` | JSON | `[PetType]` (seeded) |
//!
//! Seeding is checked at the start of every call (hosts cannot be called from
//! `wapc_init`): `KeyExists` on the gate and, if it is missing, `Add(gate, 1)`; only the
//! caller that gets 1 writes the seed data, so any number of instances on any number of
//! hosts seed once. Checking on every call, not once per instance, is what seeds a new
//! store after the key-value link is put again with another backend.

mod seed;
mod service;

use nimbus_actor::HostCall;
use petclinic_model::call::reply;
use petclinic_model::codec::decode_json;
use petclinic_model::ops::{self, owners as op};

pub use service::Owners;

/// Runs owners operation `operation` on `payload`, making sure seed data exists first.
///
/// The seed gate is checked on every call (one `KeyExists`), not once per instance: the
/// store behind the key-value link can change under a running instance (a link put again
/// with another backend reaches the provider, never the actor), and a new store must be
/// seeded too.
pub fn dispatch(host: &impl HostCall, operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    if !op::ALL.contains(&operation) {
        return Err(format!("unknown operation: {operation}"));
    }
    let owners = Owners::new(host);
    if let Err(e) = owners.ensure_seeded() {
        return reply::<()>(&Err(e));
    }
    match operation {
        op::LIST_OWNERS => {
            let r: ops::ListOwnersRequest = decode_json(operation, payload)?;
            reply(&owners.list_owners(r.last_name.as_deref()))
        }
        op::GET_OWNER => {
            let r: ops::OwnerRequest = decode_json(operation, payload)?;
            reply(&owners.get_owner(r.owner_id))
        }
        op::CREATE_OWNER => {
            let r: ops::CreateOwnerRequest = decode_json(operation, payload)?;
            reply(&owners.create_owner(r.owner))
        }
        op::UPDATE_OWNER => {
            let r: ops::UpdateOwnerRequest = decode_json(operation, payload)?;
            reply(&owners.update_owner(r.owner_id, r.owner))
        }
        op::ADD_PET => {
            let r: ops::AddPetRequest = decode_json(operation, payload)?;
            reply(&owners.add_pet(r.owner_id, r.pet))
        }
        op::GET_PET => {
            let r: ops::PetRequest = decode_json(operation, payload)?;
            reply(&owners.get_pet(r.owner_id, r.pet_id))
        }
        op::UPDATE_PET => {
            let r: ops::UpdatePetRequest = decode_json(operation, payload)?;
            reply(&owners.update_pet(r.owner_id, r.pet_id, r.pet))
        }
        op::LIST_PET_TYPES => reply(&owners.pet_types()),
        _ => Err(format!("unknown operation: {operation}")),
    }
}

/// The waPC exports (wasm32 only, so native test binaries can link several actors).
#[cfg(target_arch = "wasm32")]
mod guest {
    use nimbus_actor::WapcHost;
    use nimbus_actor::{HandlerResult, register_function};
    use petclinic_model::ops::owners as op;

    fn run(operation: &str, payload: &[u8]) -> HandlerResult<Vec<u8>> {
        crate::dispatch(&WapcHost, operation, payload).map_err(Into::into)
    }

    fn list_owners(p: &[u8]) -> HandlerResult<Vec<u8>> {
        run(op::LIST_OWNERS, p)
    }
    fn get_owner(p: &[u8]) -> HandlerResult<Vec<u8>> {
        run(op::GET_OWNER, p)
    }
    fn create_owner(p: &[u8]) -> HandlerResult<Vec<u8>> {
        run(op::CREATE_OWNER, p)
    }
    fn update_owner(p: &[u8]) -> HandlerResult<Vec<u8>> {
        run(op::UPDATE_OWNER, p)
    }
    fn add_pet(p: &[u8]) -> HandlerResult<Vec<u8>> {
        run(op::ADD_PET, p)
    }
    fn get_pet(p: &[u8]) -> HandlerResult<Vec<u8>> {
        run(op::GET_PET, p)
    }
    fn update_pet(p: &[u8]) -> HandlerResult<Vec<u8>> {
        run(op::UPDATE_PET, p)
    }
    fn list_pet_types(p: &[u8]) -> HandlerResult<Vec<u8>> {
        run(op::LIST_PET_TYPES, p)
    }

    /// Registers the operations; called once by the host after instantiation.
    #[allow(unsafe_code)]
    // SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        register_function(op::LIST_OWNERS, list_owners);
        register_function(op::GET_OWNER, get_owner);
        register_function(op::CREATE_OWNER, create_owner);
        register_function(op::UPDATE_OWNER, update_owner);
        register_function(op::ADD_PET, add_pet);
        register_function(op::GET_PET, get_pet);
        register_function(op::UPDATE_PET, update_pet);
        register_function(op::LIST_PET_TYPES, list_pet_types);
    }
}

#[cfg(test)]
mod tests;
