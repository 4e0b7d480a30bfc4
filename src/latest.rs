//! A bounded channel in which the newest item wins.
//!
//! A live view wants the freshest frame, never a queue: [`Sender::send`] never blocks; when the
//! channel is full it drops the oldest queued item and counts it. The count is shared by both ends
//! ([`Drops`]) so the stats can show it. Built on crossbeam-channel; the receiver can take part in
//! `crossbeam_channel::select!` through [`Receiver::as_crossbeam`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel as cb;

/// How many items were dropped to make room for newer ones. Cheap to clone; all clones share one
/// count.
#[derive(Debug, Clone, Default)]
pub struct Drops(Arc<AtomicU64>);

impl Drops {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// The item could not be sent because the receiver is gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Disconnected<T>(pub T);

/// A channel holding at most `capacity` (at least 1) items.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = cb::bounded(capacity.max(1));
    let drops = Drops::default();
    let alive = Arc::new(AtomicBool::new(true));
    (
        Sender {
            tx,
            oldest: rx.clone(),
            drops: drops.clone(),
            receiver_alive: alive.clone(),
        },
        Receiver { rx, drops, alive },
    )
}

pub struct Sender<T> {
    tx: cb::Sender<T>,
    /// A second handle on the queue, to pop the oldest item when it is full.
    oldest: cb::Receiver<T>,
    drops: Drops,
    receiver_alive: Arc<AtomicBool>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            oldest: self.oldest.clone(),
            drops: self.drops.clone(),
            receiver_alive: self.receiver_alive.clone(),
        }
    }
}

impl<T> Sender<T> {
    /// Queues `item`, dropping the oldest queued item if the channel is full. Never blocks.
    /// Fails (handing the item back) only when the receiver is gone.
    pub fn send(&self, mut item: T) -> Result<(), Disconnected<T>> {
        loop {
            if !self.receiver_alive.load(Ordering::Acquire) {
                return Err(Disconnected(item));
            }
            match self.tx.try_send(item) {
                Ok(()) => return Ok(()),
                Err(cb::TrySendError::Full(back)) => {
                    item = back;
                    // The receiver may have taken it meanwhile: then there is room and no drop.
                    if self.oldest.try_recv().is_ok() {
                        self.drops.add(1);
                    }
                }
                Err(cb::TrySendError::Disconnected(back)) => return Err(Disconnected(back)),
            }
        }
    }

    pub fn drops(&self) -> Drops {
        self.drops.clone()
    }
}

/// The single receiving end. When it is dropped, sends fail.
pub struct Receiver<T> {
    rx: cb::Receiver<T>,
    drops: Drops,
    alive: Arc<AtomicBool>,
}

impl<T> Receiver<T> {
    /// The oldest queued item, if any (with capacity 1, the only one).
    pub fn try_recv(&self) -> Result<T, cb::TryRecvError> {
        self.rx.try_recv()
    }

    /// Waits up to `timeout` for an item.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, cb::RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// The newest queued item, if any; older ones are dropped and counted.
    pub fn try_latest(&self) -> Option<T> {
        let mut latest = self.rx.try_recv().ok()?;
        while let Ok(newer) = self.rx.try_recv() {
            self.drops.add(1);
            latest = newer;
        }
        Some(latest)
    }

    /// Empties the queue without counting drops (the items were not wanted, e.g. while paused).
    pub fn clear(&self) -> usize {
        self.rx.try_iter().count()
    }

    /// For `crossbeam_channel::select!`.
    pub fn as_crossbeam(&self) -> &cb::Receiver<T> {
        &self.rx
    }

    pub fn drops(&self) -> Drops {
        self.drops.clone()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_wins_and_drops_are_counted() {
        let (tx, rx) = channel(1);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        tx.send(3).unwrap();
        assert_eq!(rx.try_recv().unwrap(), 3);
        assert_eq!((tx.drops().get(), rx.drops().get()), (2, 2));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn try_latest_skips_older_items() {
        let (tx, rx) = channel(3);
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.try_latest(), Some(2));
        assert_eq!(rx.drops().get(), 2);
        assert_eq!(rx.try_latest(), None);
    }

    #[test]
    fn ends_notice_each_other() {
        let (tx, rx) = channel::<u8>(1);
        drop(rx);
        assert_eq!(tx.send(7), Err(Disconnected(7)));
        let (tx, rx) = channel::<u8>(1);
        tx.send(1).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(cb::TryRecvError::Disconnected));
    }
}
