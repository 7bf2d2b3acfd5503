//! thingward-audit integration tests: one binary, a module per check family.

mod certs;
mod policies;
mod support;
