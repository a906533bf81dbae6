//! TEMPORARY compile stub (lead only).
pub mod queue {
    use outguard_store::{Store, spool::Spool};
    use outguard_types::config::Config;
    use crate::trace::Tracer;
    use crate::server::Shutdown;
    pub struct QueueHandle;
    impl QueueHandle {
        pub async fn enqueue(&self, _id: &str) {}
        pub async fn stop(&self) {}
    }
    pub async fn start(_c: &Config, _s: Spool, _st: Store, _t: Tracer, _sh: Shutdown) -> anyhow::Result<QueueHandle> { Ok(QueueHandle) }
}
