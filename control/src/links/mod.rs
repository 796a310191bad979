//! Links: the row and its JSON ([`model`]), request bodies ([`input`]),
//! transactional writes with their outbox rows ([`store`]), handlers ([`api`]),
//! bulk writes ([`bulk`]), click totals from ClickHouse, cached ([`clicks`]).

pub mod api;
pub mod bulk;
pub mod clicks;
pub mod input;
pub mod model;
pub mod store;
