//! Administration: the service layer (`ops`: one function per management action, its authority
//! checks and its audit entry), and the HTTP adapters over it: the admin API (`api`), the web UI
//! (`ui`), `/metrics` and `/healthz` on one listener (`http`).

pub mod api;
pub mod http;
mod http_listener;
pub mod ops;
pub mod ui;
