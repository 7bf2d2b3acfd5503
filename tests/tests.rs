//! End-to-end tests of the real `thingward` binary on loopback, with a real Mosquitto.

mod support;

mod audit;
mod e2e;
mod eval;
mod feed;
mod fleet_events;
mod mitigation;
mod ml;
mod mqtt_limits;
