//! Notices delivered to Notifiers: what each one owes ([`ledger`]), what a request to each
//! kind of destination says ([`payload`]), one delivery attempt of it ([`send`]), and the
//! controller that delivers ([`deliver`]). docs/notifications.md tells the rules.

pub mod deliver;
pub mod ledger;
pub mod payload;
pub mod send;
