//! The request log and its sequence numbers.

use super::{Shared, State};
use crate::LoggedRequest;

/// Handled REST requests, in the order they finished, and the next sequence number to hand out.
pub(super) struct RequestLog {
    entries: Vec<LoggedRequest>,
    next_seq: u64,
}

impl RequestLog {
    pub(super) fn new() -> RequestLog {
        RequestLog {
            entries: vec![],
            next_seq: 1,
        }
    }
}

impl State {
    pub(crate) fn next_seq(&mut self) -> u64 {
        let s = self.log.next_seq;
        self.log.next_seq += 1;
        s
    }

    pub(crate) fn push_log(&mut self, r: LoggedRequest) {
        self.log.entries.push(r);
    }
}

impl Shared {
    /// The log, by sequence number (the order requests arrived).
    pub(crate) fn requests(&self) -> Vec<LoggedRequest> {
        let st = self.lock();
        let mut v = st.log.entries.clone();
        v.sort_by_key(|r| r.seq);
        v
    }
}
