//! The engine as the handlers see it, with its domain type erased.
//!
//! [`AppState::new`](crate::AppState::new) takes an `Arc<Engine<D>>` for any domain; the
//! handlers work through this object-safe trait instead of being generic over `D`. That
//! keeps one copy of every handler in the binary, and lets `utoipa-axum` collect the
//! handlers' OpenAPI annotations (its `routes!` macro takes plain function paths).

use std::future::Future;
use std::pin::Pin;

use uuid::Uuid;
use writ_domain::{CommandInfo, Domain};
use writ_engine::{
    CommandStatus, Engine, ReadError, RecordedEvent, SubmitError, Submitted, Subscription,
    Unavailable, WaitError, WaitFor,
};

/// A boxed, sendable future borrowing the backend.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the server needs of an engine. See [`Engine`] for each method's contract.
pub(crate) trait Backend: Send + Sync + 'static {
    fn domain(&self) -> &'static str;
    fn commands(&self) -> Vec<CommandInfo>;
    fn submit(
        &self,
        id: Uuid,
        command: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Submitted, SubmitError>;
    fn status(&self, id: Uuid) -> Result<Option<CommandStatus>, ReadError>;
    fn wait(
        &self,
        id: Uuid,
        until: WaitFor,
    ) -> BoxFuture<'_, Result<Option<CommandStatus>, WaitError>>;
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError>;
    fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, ReadError>;
    fn last_position(&self) -> u64;
    fn subscribe(&self, from_position: u64) -> Subscription;
    fn poisoned(&self) -> Option<Unavailable>;
    fn shutdown(&self);
}

impl<D: Domain> Backend for Engine<D> {
    fn domain(&self) -> &'static str {
        D::NAME
    }

    fn commands(&self) -> Vec<CommandInfo> {
        self.catalog().infos().collect()
    }

    fn submit(
        &self,
        id: Uuid,
        command: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Submitted, SubmitError> {
        Engine::submit(self, id, command, version, payload)
    }

    fn status(&self, id: Uuid) -> Result<Option<CommandStatus>, ReadError> {
        Engine::status(self, id)
    }

    fn wait(
        &self,
        id: Uuid,
        until: WaitFor,
    ) -> BoxFuture<'_, Result<Option<CommandStatus>, WaitError>> {
        Box::pin(Engine::wait(self, id, until))
    }

    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        Engine::read_stream(self, stream, from_version, limit)
    }

    fn read_all(&self, from_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, ReadError> {
        Engine::read_all(self, from_position, limit)
    }

    fn last_position(&self) -> u64 {
        Engine::last_position(self)
    }

    fn subscribe(&self, from_position: u64) -> Subscription {
        Engine::subscribe(self, from_position)
    }

    fn poisoned(&self) -> Option<Unavailable> {
        Engine::poisoned(self)
    }

    fn shutdown(&self) {
        Engine::shutdown(self)
    }
}
