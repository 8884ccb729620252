//! A subscriber's feed: the bounded queue its connection writes from. Topic actors
//! put frames straight into it; the session actor only adds control events.

use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::model::message::{Envelope, Message, Transport};
use crate::model::since::Filter;

pub const REASON_TOO_SLOW: &str = "Subscriber too slow";

/// What a connection's writer gets: a stored message shared by every subscriber, or
/// a control event of this session (see [`Envelope::control`]). One pointer, so a
/// queue slot is 8 bytes (the queue's storage is allocated in blocks of 32 slots); the
/// writer takes the frame its transport needs from the envelope.
pub type Outbound = Arc<Envelope>;

/// Why a feed cannot take any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The connection is gone.
    Gone,
    /// The queue is full: the subscriber gets a final `close` event with this reason.
    Close(&'static str),
}

/// The sending side of one subscriber's queue, with what decides which messages it
/// wants. Cheap to clone.
#[derive(Clone)]
pub struct Feed {
    out: mpsc::Sender<Outbound>,
    transport: Transport,
    /// `None` when the subscriber takes everything (no pointer to chase per message).
    filter: Option<Arc<Filter>>,
}

impl Feed {
    pub fn new(out: mpsc::Sender<Outbound>, transport: Transport, filter: Filter) -> Self {
        Self {
            out,
            transport,
            filter: (!filter.is_empty()).then(|| Arc::new(filter)),
        }
    }

    /// How many frames the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.out.max_capacity()
    }

    /// Queues a message unless the subscriber already has it (`seq <= after`, sent by
    /// its replay) or filters it out. Returns whether it was queued. The queue's last
    /// slot is held by the session (see [`Feed::reserve_last`]), so a subscriber that
    /// lets its queue fill up is still told why it is dropped.
    pub fn offer(&self, envelope: &Arc<Envelope>, after: i64) -> Result<bool, Stop> {
        if envelope.seq() <= after || !self.wants(&envelope.message) {
            return Ok(false);
        }
        self.push(envelope.clone())?;
        Ok(true)
    }

    /// Queues a frame if there is room.
    pub fn push(&self, frame: Outbound) -> Result<(), Stop> {
        self.out.try_send(frame).map_err(|e| match e {
            TrySendError::Full(_) => Stop::Close(REASON_TOO_SLOW),
            TrySendError::Closed(_) => Stop::Gone,
        })
    }

    /// Takes the queue's last slot for the final event, before anything else is queued.
    /// Holding it costs nothing per frame: pushes simply find the queue full one slot
    /// earlier.
    pub fn reserve_last(&self) -> Option<mpsc::OwnedPermit<Outbound>> {
        self.out.clone().try_reserve_owned().ok()
    }

    /// Waits until a frame fits (replay: the client sets the pace).
    pub async fn send(&self, frame: Outbound) -> Result<(), Stop> {
        self.out.send(frame).await.map_err(|_| Stop::Gone)
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether the subscriber's filters let this message through.
    pub fn wants(&self, message: &Message) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(message))
    }
}
