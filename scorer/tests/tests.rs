//! The scorer's one integration-test binary: end-to-end scoring through the public API.

mod fleet;
mod golden;
mod invalidation;
mod ml;
mod observe;
mod properties;
mod util;
