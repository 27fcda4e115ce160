//! Serving the HTTP API the daemon is given, supervised, until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::{ApiRouter, DaemonError, DaemonState};
use crate::supervision::{RestartPolicy, supervise};

pub(super) fn start_api(
    state: &Arc<DaemonState>,
    router: ApiRouter,
    tasks: &TaskTracker,
) -> Result<SocketAddr, DaemonError> {
    let config = state.config();
    let requested = SocketAddr::new(config.api.bind, config.api.port);
    let bind_error = |source| DaemonError::Bind {
        address: requested,
        source,
    };
    let listener = std::net::TcpListener::bind(requested).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?;
    let router = router(state.clone());
    let shutdown = state.shutdown.clone();
    supervise(
        tasks,
        "api",
        state.shutdown.clone(),
        RestartPolicy::from(Duration::from_secs(1)),
        move || {
            let router = router.clone();
            let shutdown = shutdown.clone();
            let listener = listener.try_clone();
            async move {
                let listener = tokio::net::TcpListener::from_std(listener?)?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await?;
                Ok(())
            }
        },
    );
    Ok(address)
}
