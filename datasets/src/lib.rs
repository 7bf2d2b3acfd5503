//! Yardsticks for detection quality: seeded synthetic fleets with labelled attacks and benign events, and the NAB corpus.

pub mod nab;
