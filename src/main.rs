//! The `thingward` binary: the service (`thingward serve`) and its batch commands.

mod auth;
mod ingest;

fn main() {}
