//! thingward-audit integration tests: one binary, a module per check family.

mod broker;
mod certs;
mod connections;
mod input;
mod live;
mod policies;
mod properties;
mod support;
