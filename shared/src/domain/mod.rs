//! Domain types: the invoices and their statuses, the apps of a deployment, the token state,
//! outcomes, origins, the configuration, the clock and the request's deadline. No I/O, no HTTP:
//! every layer above builds on these.

pub mod answers;
pub mod apps;
pub mod budget;
pub mod claims;
pub mod clock;
pub mod component;
pub mod config;
pub mod deadline;
pub mod env;
pub mod errcode;
pub mod idempotency;
pub mod input;
pub mod invoice;
pub mod origin;
pub mod outcome;
pub mod state;
pub mod sweep;
pub mod timing;
