//! The gateway side of the invalidation stream: per-subscriber sequence
//! numbers, a replay ring, acks that trim it, and live delivery.
//!
//! Guarantees:
//! - each subscriber (`assembly_id`) sees its own sequence, from 1, rising
//!   by one per event, for the life of this hub (a restarted gateway is a
//!   new hub and starts at 1 again, as the Agent Assembly gateway does);
//! - on subscribe, every buffered event with `seq > last_seq_seen` is
//!   replayed before any live event, with no event in between lost or
//!   duplicated (the snapshot and the switch to live happen under one lock);
//! - the ring holds at most `ring_capacity` events per subscriber; acks trim
//!   it (an acked event is never replayed, and no longer counts in
//!   [`SubscriberInfo::ring_len`]; it is dropped from memory at the
//!   subscriber's next publish or subscribe, in one batch, on the publishing
//!   thread that allocated it, not one by one on the thread reading acks);
//!   an event pushed out of a full ring is gone for a subscriber that is
//!   away (it will see an unreplayable gap);
//! - a subscriber that falls behind its live channel has its stream
//!   **closed**, never silently skipped, so it resubscribes and replays;
//! - a newer stream of the same subscriber replaces the older one;
//! - at most `max_subscribers` subscribers are remembered: a new one at the
//!   bound takes the place of the least recently subscribed subscriber that
//!   has no open stream, and is refused ([`SubscribeError::Full`]) when
//!   every one is connected;
//! - a subscriber belongs to the team it first subscribed with: a
//!   subscribe for the same `assembly_id` from another team is refused
//!   ([`SubscribeError::OtherTeam`]), so no team can replay or take over
//!   another team's stream.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::mpsc;

/// The Agent Assembly gateway's replay buffer size per subscriber: 1,024
/// events.
pub const DEFAULT_RING_CAPACITY: usize = 1024;
/// The Agent Assembly gateway's live channel size per subscriber: 1,024
/// events.
pub const DEFAULT_LIVE_CAPACITY: usize = 1024;
/// Subscribers (distinct `assembly_id`s) remembered by default: 32,768, so
/// a fleet of 10,000 agents (one subscriber each) fits three times over,
/// restarts that pick a new `assembly_id` included. An event is stored
/// once and shared; each subscriber's ring holds a sequence number and a
/// pointer per event (16 bytes), so 32,768 subscribers that never ack hold
/// at most 512 MiB of ring entries at the default ring size.
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 32_768;

/// Why a subscribe was refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The hub remembers `max_subscribers` subscribers and every one of
    /// them has an open stream.
    #[error("too many invalidation subscribers ({0}), all connected")]
    Full(usize),
    /// The `assembly_id` is already a subscriber of another team.
    #[error("assembly_id {0:?} belongs to another team")]
    OtherTeam(String),
}

/// One subscriber's view, for `ListSubscribers` and `tether ctl status`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberInfo {
    /// The subscriber's `assembly_id`.
    pub assembly_id: String,
    /// The team (tenant) it belongs to.
    pub team_id: String,
    /// The last sequence number assigned to it.
    pub last_seq: u64,
    /// The highest sequence it acknowledged.
    pub acked_seq: u64,
    /// Ack messages received from it (duplicates and acks past the last
    /// sequence included). An ack is cumulative, so a client may send one
    /// per applied event or one per run of them (tether's client sends one
    /// per 64 applied events or per 20 ms by default).
    pub acks_received: u64,
    /// Events assigned but not yet acknowledged.
    pub lag: u64,
    /// Events held in its replay ring.
    pub ring_len: u64,
    /// Whether a stream is open.
    pub connected: bool,
    /// Streams closed because it fell behind.
    pub lag_closes: u64,
}

struct Subscriber<E> {
    team_id: String,
    next_seq: u64,
    acked: u64,
    acks_received: u64,
    ring: VecDeque<(u64, E)>,
    live: Option<(u64, mpsc::Sender<(u64, E)>)>,
    lag_closes: u64,
    /// Id of its latest stream: orders subscribers for eviction.
    last_stream: u64,
}

impl<E> Subscriber<E> {
    fn connected(&self) -> bool {
        self.live.as_ref().is_some_and(|(_, tx)| !tx.is_closed())
    }

    /// Drop the acked events still held at the front of the ring.
    fn trim(&mut self) {
        while self.ring.front().is_some_and(|(s, _)| *s <= self.acked) {
            self.ring.pop_front();
        }
    }

    /// Events held and not acked: the ring holds consecutive sequence
    /// numbers, so those after `acked` are its tail.
    fn unacked_len(&self) -> usize {
        match (self.ring.front(), self.ring.back()) {
            (Some((first, _)), Some((last, _))) => {
                let from = self.acked.max(first.saturating_sub(1));
                usize::try_from(last.saturating_sub(from)).unwrap_or(usize::MAX)
            }
            _ => 0,
        }
    }
}

struct State<E> {
    subscribers: BTreeMap<String, Subscriber<E>>,
    next_stream: u64,
}

/// Per-subscriber sequencing, replay and live fan-out of invalidation events.
pub struct InvalidationHub<E> {
    state: Mutex<State<E>>,
    ring_capacity: usize,
    live_capacity: usize,
    max_subscribers: usize,
}

/// An open subscription: its id (for acks and disconnect) and its events.
#[derive(Debug)]
pub struct HubStream<E> {
    /// Identifies this stream among the subscriber's successive streams.
    pub stream_id: u64,
    /// Replayed events, then live ones, as `(seq, event)`.
    pub events: mpsc::Receiver<(u64, E)>,
}

impl<E: Clone> InvalidationHub<E> {
    /// A hub with the given ring and live-channel sizes (at least 1 each).
    pub fn new(ring_capacity: usize, live_capacity: usize) -> Self {
        InvalidationHub {
            state: Mutex::new(State {
                subscribers: BTreeMap::new(),
                next_stream: 1,
            }),
            ring_capacity: ring_capacity.max(1),
            live_capacity: live_capacity.max(1),
            max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
        }
    }

    /// The same hub remembering at most `max` subscribers (at least 1).
    pub fn with_max_subscribers(mut self, max: usize) -> Self {
        self.max_subscribers = max.max(1);
        self
    }

    /// Capacity of each subscriber's replay ring.
    pub fn ring_capacity(&self) -> usize {
        self.ring_capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open a stream for `assembly_id` (of `team_id`), replaying every
    /// buffered event after `last_seq_seen`. Fails only when a new
    /// subscriber would exceed the bound and no known one can make room.
    pub fn subscribe(
        &self,
        assembly_id: &str,
        team_id: &str,
        last_seq_seen: u64,
    ) -> Result<HubStream<E>, SubscribeError> {
        let mut st = self.lock();
        if st
            .subscribers
            .get(assembly_id)
            .is_some_and(|s| s.team_id != team_id)
        {
            return Err(SubscribeError::OtherTeam(assembly_id.to_owned()));
        }
        if !st.subscribers.contains_key(assembly_id) && st.subscribers.len() >= self.max_subscribers
        {
            let victim = st
                .subscribers
                .iter()
                .filter(|(_, s)| !s.connected())
                .min_by_key(|(_, s)| s.last_stream)
                .map(|(id, _)| id.clone());
            match victim {
                Some(id) => {
                    st.subscribers.remove(&id);
                }
                None => return Err(SubscribeError::Full(self.max_subscribers)),
            }
        }
        let stream_id = st.next_stream;
        st.next_stream += 1;
        let sub = st
            .subscribers
            .entry(assembly_id.to_owned())
            .or_insert_with(|| Subscriber {
                team_id: team_id.to_owned(),
                next_seq: 1,
                acked: 0,
                acks_received: 0,
                ring: VecDeque::new(),
                live: None,
                lag_closes: 0,
                last_stream: stream_id,
            });
        sub.last_stream = stream_id;
        sub.trim();
        let (tx, rx) = mpsc::channel(self.ring_capacity + self.live_capacity);
        for (seq, ev) in sub.ring.iter().filter(|(s, _)| *s > last_seq_seen) {
            // Capacity covers the whole ring, so this cannot be full.
            let _ = tx.try_send((*seq, ev.clone()));
        }
        sub.live = Some((stream_id, tx));
        Ok(HubStream {
            stream_id,
            events: rx,
        })
    }

    /// The subscriber acknowledged `seq`: trim its ring up to it.
    pub fn ack(&self, assembly_id: &str, seq: u64) {
        self.ack_all(assembly_id, &[seq]);
    }

    /// The subscriber acknowledged each of `seqs`, in order: the same as
    /// [`InvalidationHub::ack`] for each, under one lock. An ack past the
    /// last assigned sequence is ignored.
    pub fn ack_all(&self, assembly_id: &str, seqs: &[u64]) {
        let mut st = self.lock();
        if let Some(sub) = st.subscribers.get_mut(assembly_id) {
            sub.acks_received = sub.acks_received.saturating_add(seqs.len() as u64);
            let next_seq = sub.next_seq;
            let highest = seqs.iter().copied().filter(|&s| s < next_seq).max();
            if let Some(seq) = highest {
                // The ring itself is trimmed at the next publish or
                // subscribe.
                sub.acked = sub.acked.max(seq);
            }
        }
    }

    /// The stream `stream_id` of `assembly_id` ended.
    pub fn disconnect(&self, assembly_id: &str, stream_id: u64) {
        let mut st = self.lock();
        if let Some(sub) = st.subscribers.get_mut(assembly_id) {
            if sub.live.as_ref().is_some_and(|(id, _)| *id == stream_id) {
                sub.live = None;
            }
        }
    }

    /// End the open stream of `assembly_id`, if any, as a lag does (the
    /// stream ends with `UNAVAILABLE` after the events already queued; the
    /// ring is kept, so a resubscribe replays what was not applied).
    /// Returns whether a stream was open.
    pub fn close(&self, assembly_id: &str) -> bool {
        let mut st = self.lock();
        st.subscribers
            .get_mut(assembly_id)
            .and_then(|sub| sub.live.take())
            .is_some()
    }

    /// Publish `event` to every subscriber of `team_id` (all subscribers
    /// when `None`). Returns how many subscribers it was sequenced for.
    pub fn publish(&self, team_id: Option<&str>, event: E) -> usize {
        let mut st = self.lock();
        let mut n = 0;
        for sub in st.subscribers.values_mut() {
            if team_id.is_some_and(|t| t != sub.team_id) {
                continue;
            }
            n += 1;
            let seq = sub.next_seq;
            sub.next_seq += 1;
            sub.trim();
            if sub.ring.len() >= self.ring_capacity {
                sub.ring.pop_front();
            }
            sub.ring.push_back((seq, event.clone()));
            if let Some((_, tx)) = &sub.live {
                match tx.try_send((seq, event.clone())) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        // Lagging: close the stream so the client notices and
                        // resubscribes from what it applied.
                        sub.live = None;
                        sub.lag_closes += 1;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => sub.live = None,
                }
            }
        }
        n
    }

    /// Subscribers remembered (connected or not).
    pub fn len(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Whether no subscriber is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every subscriber.
    pub fn subscribers(&self) -> Vec<SubscriberInfo> {
        let st = self.lock();
        st.subscribers
            .iter()
            .map(|(id, s)| {
                let last_seq = s.next_seq - 1;
                SubscriberInfo {
                    assembly_id: id.clone(),
                    team_id: s.team_id.clone(),
                    last_seq,
                    acked_seq: s.acked,
                    acks_received: s.acks_received,
                    lag: last_seq.saturating_sub(s.acked),
                    ring_len: s.unacked_len() as u64,
                    connected: s.connected(),
                    lag_closes: s.lag_closes,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(rx: &mut mpsc::Receiver<(u64, u32)>) -> Vec<(u64, u32)> {
        let mut v = Vec::new();
        while let Ok(x) = rx.try_recv() {
            v.push(x);
        }
        v
    }

    #[test]
    fn sequences_per_subscriber_and_replays_after_last_seen() {
        let hub = InvalidationHub::new(4, 8);
        let mut a = hub.subscribe("a", "t1", 0).unwrap();
        hub.publish(None, 10);
        hub.publish(None, 11);
        assert_eq!(drain(&mut a.events), vec![(1, 10), (2, 11)]);
        let mut b = hub.subscribe("b", "t2", 0).unwrap();
        hub.publish(Some("t2"), 12);
        assert!(drain(&mut a.events).is_empty(), "other team's event");
        assert_eq!(drain(&mut b.events), vec![(1, 12)]);
        // Reconnect a after applying seq 1: replay 2 only, then live 3.
        let mut a2 = hub.subscribe("a", "t1", 1).unwrap();
        hub.publish(None, 13);
        assert_eq!(drain(&mut a2.events), vec![(2, 11), (3, 13)]);
    }

    #[test]
    fn acks_trim_the_ring_and_a_full_ring_forgets_the_oldest() {
        let hub = InvalidationHub::new(3, 8);
        let _s = hub.subscribe("a", "t", 0).unwrap();
        for i in 0..5 {
            hub.publish(None, i);
        }
        let info = &hub.subscribers()[0];
        assert_eq!((info.last_seq, info.ring_len, info.lag), (5, 3, 5));
        hub.ack("a", 4);
        let info = &hub.subscribers()[0];
        assert_eq!((info.acked_seq, info.ring_len, info.lag), (4, 1, 1));
        hub.ack("a", 99); // an ack past the end is ignored
        assert_eq!(hub.subscribers()[0].acked_seq, 4);
        // Several at once: the same as one by one (99 still ignored).
        hub.ack_all("a", &[99, 3]);
        let info = &hub.subscribers()[0];
        assert_eq!((info.acked_seq, info.ring_len), (4, 1));
        let mut again = hub.subscribe("a", "t", 0).unwrap();
        assert_eq!(drain(&mut again.events), vec![(5, 4)]);
    }

    #[test]
    fn acked_events_are_dropped_lazily_but_never_counted_or_replayed() {
        let hub = InvalidationHub::new(8, 32);
        let _s = hub.subscribe("a", "t", 0).unwrap();
        let held = |hub: &InvalidationHub<u32>| hub.lock().subscribers["a"].ring.len();
        for i in 0..8 {
            hub.publish(None, i);
        }
        hub.ack("a", 6);
        assert_eq!(hub.subscribers()[0].ring_len, 2);
        assert_eq!(held(&hub), 8, "dropped later, not by the ack");
        hub.publish(None, 8);
        assert_eq!((hub.subscribers()[0].ring_len, held(&hub)), (3, 3));
        hub.ack("a", 8);
        assert_eq!((hub.subscribers()[0].ring_len, held(&hub)), (1, 3));
        // A subscribe from before the ack replays only what was not acked.
        let mut again = hub.subscribe("a", "t", 0).unwrap();
        assert_eq!(drain(&mut again.events), vec![(9, 8)]);
        assert_eq!(held(&hub), 1);
    }

    #[test]
    fn a_lagging_subscriber_is_closed_not_skipped() {
        let hub = InvalidationHub::new(1, 1);
        let mut s = hub.subscribe("a", "t", 0).unwrap();
        // Channel capacity is ring + live = 2: the third event overflows.
        for i in 0..3 {
            hub.publish(None, i);
        }
        assert_eq!(drain(&mut s.events), vec![(1, 0), (2, 1)]);
        assert!(s.events.try_recv().is_err());
        assert!(
            s.events.is_closed(),
            "stream closed, so the client resubscribes"
        );
        let info = &hub.subscribers()[0];
        assert_eq!((info.lag_closes, info.connected), (1, false));
    }

    #[test]
    fn subscribers_are_bounded_and_only_disconnected_ones_make_room() {
        let hub = InvalidationHub::<u32>::new(4, 4).with_max_subscribers(2);
        let a = hub.subscribe("a", "t", 0).unwrap();
        let b = hub.subscribe("b", "t", 0).unwrap();
        assert_eq!(
            hub.subscribe("c", "t", 0).unwrap_err(),
            SubscribeError::Full(2)
        );
        // A known subscriber may always come back.
        let a2 = hub.subscribe("a", "t", 0).unwrap();
        drop(a);
        hub.disconnect("b", b.stream_id);
        // b is the only one without a stream: c takes its place.
        let _c = hub.subscribe("c", "t", 0).unwrap();
        let ids: Vec<_> = hub
            .subscribers()
            .into_iter()
            .map(|s| s.assembly_id)
            .collect();
        assert_eq!(ids, vec!["a", "c"]);
        assert_eq!(hub.len(), 2);
        drop(a2);
    }

    #[test]
    fn the_default_bound_keeps_twenty_thousand_connected_subscribers() {
        let hub = InvalidationHub::<u32>::new(DEFAULT_RING_CAPACITY, DEFAULT_LIVE_CAPACITY);
        let streams: Vec<_> = (0..20_000)
            .map(|i| hub.subscribe(&format!("asm-{i}"), "t", 0).unwrap())
            .collect();
        assert_eq!(hub.publish(None, 1), 20_000);
        assert!(hub.subscribers().iter().all(|s| s.connected));
        drop(streams);
    }

    #[test]
    fn a_subscriber_belongs_to_its_team() {
        let hub = InvalidationHub::<u32>::new(4, 4);
        let _a = hub.subscribe("a", "t1", 0).unwrap();
        hub.publish(None, 7);
        assert_eq!(
            hub.subscribe("a", "t2", 0).unwrap_err(),
            SubscribeError::OtherTeam("a".into())
        );
        let mut again = hub.subscribe("a", "t1", 0).unwrap();
        assert_eq!(drain(&mut again.events), vec![(1, 7)]);
    }
}
