//! The `thingward` binary: the service (`thingward serve`) and its batch commands.

mod api;
mod auth;
mod store;
mod ingest;

fn main() {}
