//! Links: the row and its JSON ([`model`]), request bodies ([`input`]),
//! transactional writes with their outbox rows ([`store`]), handlers ([`api`]),
//! bulk writes ([`bulk`]), click totals from ClickHouse, cached ([`clicks`]),
//! UTM parameters merged into the served target ([`utm`]), redirect rules
//! and A/B splits ([`rules`]).

pub mod api;
pub mod bulk;
pub mod clicks;
pub mod input;
pub mod model;
pub mod password;
pub mod rules;
pub mod store;
pub mod times;
pub mod utm;
