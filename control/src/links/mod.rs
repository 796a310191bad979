//! Links: the row and its JSON ([`model`]), request bodies ([`input`]),
//! transactional writes with their outbox rows ([`store`]), handlers ([`api`]).

pub mod api;
pub mod input;
pub mod model;
pub mod store;
