//! The SMTP listeners: accept loops with connection limits and TLS (`listener`), the per-session
//! I/O loop around the sans-IO session (`conn`), who the client is and what it may do
//! (`identity`, `checks`), AUTH brute-force lockout (`auth_limit`) and refusals in the mail log
//! (`refusal_log`).

pub mod auth_limit;
pub mod checks;
pub mod conn;
pub mod identity;
pub mod listener;
pub mod refusal_log;
pub mod stream;
