//! Notices to the notifiers of a policy: what a request to each kind of destination says
//! (`payload`) and one delivery attempt of it (`send`).

pub mod payload;
pub mod send;
