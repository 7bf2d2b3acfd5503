//! Request authentication: AWS SigV4 (service `iot`) and bearer tokens.
