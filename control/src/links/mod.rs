//! Links: the row and its JSON ([`model`]), request bodies ([`input`]),
//! transactional writes with their outbox rows ([`store`]), handlers ([`api`]),
//! bulk writes ([`bulk`]), click totals from ClickHouse, cached ([`clicks`]),
//! UTM parameters merged into the served target ([`utm`]).

pub mod api;
pub mod bulk;
pub mod clicks;
pub mod input;
pub mod model;
pub mod store;
pub mod utm;
