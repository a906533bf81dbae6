//! The service layer: each management rule checked once, for every interface (API, UI, CLI on
//! the store, CLI over the API) — SPEC §9 "Trust boundaries".

pub mod policies;
