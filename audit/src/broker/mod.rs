//! thingward's broker checks: a Mosquitto 2.0 configuration audit (anonymous access,
//! plaintext listeners, client certificates, ACLs, password hashing, limits, invalid lines).

pub(crate) mod checks;
pub(crate) mod config;
mod directives;
