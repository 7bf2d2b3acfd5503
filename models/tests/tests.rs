//! Integration tests of thingward-models.

mod golden;
