//! The HTTP API (being written).
use crate::deliver::Dispatcher;
use crate::recovery::Engine;
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn serve(
    _engine: Arc<Engine>,
    _dispatcher: Dispatcher,
    _listen: &str,
    _poll: std::time::Duration,
    _ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    anyhow::bail!("the HTTP API is being written")
}
