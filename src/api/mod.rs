//! The HTTP API: AWS Device Defender operations at AWS's paths and shapes, plus thingward's own.

pub(crate) mod error;
