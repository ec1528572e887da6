//! A byte-budget LRU cache of decoded frames, shared by threads. Two readers that miss on the same frame
//! wait for one decode ("single flight"). Frames can be decoded ahead in parallel batches.

use crate::archive::{Archive, FrameSource};
use crate::error::{Error, Result};
use crate::format::index::FrameId;
use parking_lot::{Condvar, Mutex};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

type Slot = Arc<(
    Mutex<Option<std::result::Result<Arc<Vec<u8>>, String>>>,
    Condvar,
)>;

pub struct FrameCache<'a> {
    archive: &'a Archive,
    budget: u64,
    inner: Mutex<Inner>,
    inflight: Mutex<HashMap<u32, Slot>>,
}

struct Inner {
    lru: lru::LruCache<u32, Arc<Vec<u8>>>,
    bytes: u64,
}

impl<'a> FrameCache<'a> {
    pub fn new(archive: &'a Archive, budget: u64) -> Self {
        FrameCache {
            archive,
            budget,
            inner: Mutex::new(Inner {
                lru: lru::LruCache::unbounded(),
                bytes: 0,
            }),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    fn lookup(&self, id: FrameId) -> Option<Arc<Vec<u8>>> {
        self.inner.lock().lru.get(&id.0).cloned()
    }

    fn insert(&self, id: FrameId, data: Arc<Vec<u8>>) {
        let mut g = self.inner.lock();
        let len = data.len() as u64;
        if let Some(old) = g.lru.put(id.0, data) {
            g.bytes -= old.len() as u64;
        }
        g.bytes += len;
        while g.bytes > self.budget && g.lru.len() > 1 {
            match g.lru.pop_lru() {
                Some((_, old)) => g.bytes -= old.len() as u64,
                None => break,
            }
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    /// Decodes every frame of `ids` that is not cached, in parallel.
    pub fn prefetch(&self, ids: &[FrameId]) {
        ids.par_iter().for_each(|&id| {
            let _ = self.frame(id);
        });
    }
}

impl FrameSource for FrameCache<'_> {
    fn frame(&self, id: FrameId) -> Result<Arc<Vec<u8>>> {
        if let Some(d) = self.lookup(id) {
            return Ok(d);
        }
        let (slot, leader) = {
            let mut m = self.inflight.lock();
            match m.get(&id.0) {
                Some(s) => (s.clone(), false),
                None => {
                    let s: Slot = Arc::new((Mutex::new(None), Condvar::new()));
                    m.insert(id.0, s.clone());
                    (s, true)
                }
            }
        };
        if leader {
            // Another leader may have finished between our lookup and taking the slot.
            let res = match self.lookup(id) {
                Some(d) => Ok(d),
                None => self.archive.read_frame(id).map(Arc::new),
            };
            if let Ok(d) = &res {
                self.insert(id, d.clone());
            }
            let shared = res.as_ref().map(Arc::clone).map_err(|e| e.to_string());
            *slot.0.lock() = Some(shared);
            slot.1.notify_all();
            self.inflight.lock().remove(&id.0);
            return res;
        }
        let mut g = slot.0.lock();
        while g.is_none() {
            slot.1.wait(&mut g);
        }
        g.as_ref()
            .expect("set by the leader")
            .clone()
            .map_err(Error::Other)
    }
}
