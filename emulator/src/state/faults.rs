//! Injected faults and their match counters.

use super::{Shared, State};
use crate::{Fault, FaultAction};

/// An injected fault and how many requests have matched it so far.
pub(super) struct ArmedFault {
    fault: Fault,
    seen: u32,
}

impl ArmedFault {
    /// Does the request match the fault's method and path filters?
    fn matches(&self, method: &str, target: &str) -> bool {
        self.fault
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .fault
                .path_contains
                .as_deref()
                .is_none_or(|p| target.contains(p))
    }
}

impl State {
    /// Count this request against every matching fault; return the first that applies.
    pub(crate) fn match_fault(&mut self, method: &str, target: &str) -> Option<FaultAction> {
        let mut hit = None;
        for f in &mut self.faults {
            if !f.matches(method, target) {
                continue;
            }
            f.seen += 1;
            let nth = f.fault.nth.max(1);
            if hit.is_none() && f.seen >= nth && f.seen < nth.saturating_add(f.fault.times) {
                hit = Some(f.fault.action.clone());
            }
        }
        hit
    }
}

impl Shared {
    pub(crate) fn inject_fault(&self, fault: Fault) {
        self.lock().faults.push(ArmedFault { fault, seen: 0 });
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }
}
