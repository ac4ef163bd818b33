//! Cases in flight, adapted to the targets (issue 27): a fuzz run against a registry 60 ms
//! away is latency-bound (every op waits for its answers), one on this machine is CPU-bound.
//! The limit follows the time an op takes (Little's law, as latency-based limiters such as
//! TCP Vegas or Netflix's concurrency-limits do): while more cases in flight leave it near the
//! least seen, the targets are not the bottleneck and the limit doubles; when ops take
//! twice as long, cases queue somewhere (cores, a slow registry) and it steps back; when a
//! target throttles it halves, then climbs one case per window (additive increase,
//! multiplicative decrease). Findings do not depend on it: cases are independent and judged
//! in case order.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The most cases in flight an adaptive run reaches.
pub const MAX_ADAPTIVE_JOBS: usize = 64;

/// Ops within this factor of the least time per op seen: not queued, climb.
const NOT_QUEUED: f64 = 1.25;

/// Ops over this factor of the least time per op: queued, step back.
const QUEUED: f64 = 2.0;

/// A window lasts at least this long, and at least a quarter of the limit in cases.
const WINDOW: Duration = Duration::from_millis(700);

struct State {
    limit: usize,
    in_flight: usize,
    window_start: Instant,
    window_ops: u64,
    window_cases: usize,
    /// The time the window's cases took, summed (seconds).
    window_busy: f64,
    /// The least time per op of a window so far (seconds).
    least_per_op: f64,
    throttled_at_start: u64,
    /// A target has throttled: from then on the limit climbs by one case per window, so it
    /// hovers under the rate the target allows instead of overshooting it again.
    careful: bool,
    /// The highest limit so far (for the summary and the benchmark).
    peak: usize,
}

/// The limit on cases in flight, and the cases in flight.
pub struct Adaptive {
    min: usize,
    max: usize,
    state: Mutex<State>,
    room: tokio::sync::Notify,
}

/// A case's place in flight; dropping it makes room.
pub struct Slot<'a>(&'a Adaptive);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.state.lock() {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.0.room.notify_waiters();
    }
}

impl Adaptive {
    /// Starts at `start` cases in flight, within `min..=max`.
    pub fn new(start: usize, min: usize, max: usize) -> Adaptive {
        let min = min.max(1);
        let max = max.max(min);
        Adaptive {
            min,
            max,
            state: Mutex::new(State {
                limit: start.clamp(min, max),
                in_flight: 0,
                window_start: Instant::now(),
                window_ops: 0,
                window_cases: 0,
                window_busy: 0.0,
                least_per_op: f64::INFINITY,
                throttled_at_start: 0,
                careful: false,
                peak: start.clamp(min, max),
            }),
            room: tokio::sync::Notify::new(),
        }
    }

    /// Waits for room under the limit.
    pub async fn slot(&self) -> Slot<'_> {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Ok(mut s) = self.state.lock() {
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return Slot(self);
                }
            }
            notified.await;
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.state.lock().map_or(self.min, |s| s.limit)
    }

    /// The highest limit so far.
    pub fn peak(&self) -> usize {
        self.state.lock().map_or(self.min, |s| s.peak)
    }

    /// A case finished: `ops` ops in `took`; `throttled` is the run's throttled answers so
    /// far.
    pub fn done(&self, ops: u64, took: Duration, throttled: u64) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        s.window_ops += ops;
        s.window_cases += 1;
        s.window_busy += took.as_secs_f64();
        if s.window_start.elapsed() < WINDOW || s.window_cases < (s.limit / 4).max(2) {
            return;
        }
        let old = s.limit;
        let per_op = s.window_busy / s.window_ops.max(1) as f64;
        s.least_per_op = s.least_per_op.min(per_op);
        let least = s.least_per_op;
        s.limit = if throttled > s.throttled_at_start {
            // A target asks to slow down: halve.
            s.careful = true;
            (s.limit / 2).max(self.min)
        } else if per_op > least * QUEUED {
            // Ops wait in a queue: fewer in flight.
            (s.limit - (s.limit / 5).max(1)).max(self.min)
        } else if per_op <= least * NOT_QUEUED {
            // Doubling until ops queue or a target throttles (slow start), then one by one.
            let step = if s.careful { 1 } else { s.limit };
            (s.limit + step).min(self.max)
        } else {
            s.limit
        };
        s.peak = s.peak.max(s.limit);
        s.window_start = Instant::now();
        s.window_ops = 0;
        s.window_cases = 0;
        s.window_busy = 0.0;
        s.throttled_at_start = throttled;
        drop(s);
        if self.limit() > old {
            self.room.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulated cases: each op takes `latency` and, when the cores are busy, waits for
    /// them (`cpu_slots` ops at once at most).
    async fn run(adaptive: &Adaptive, latency: Duration, cpu_slots: usize, cases: usize) -> f64 {
        use futures::StreamExt as _;
        let cpu = tokio::sync::Semaphore::new(cpu_slots);
        let started = Instant::now();
        let cpu = &cpu;
        futures::stream::iter(0..cases)
            .map(|_| async move {
                let _slot = adaptive.slot().await;
                let started = Instant::now();
                for _ in 0..4 {
                    let _core = cpu.acquire().await.unwrap();
                    tokio::time::sleep(latency).await;
                }
                adaptive.done(4, started.elapsed(), 0);
            })
            .buffer_unordered(MAX_ADAPTIVE_JOBS)
            .collect::<Vec<()>>()
            .await;
        (cases * 4) as f64 / started.elapsed().as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn climbs_when_latency_bound_and_holds_when_bound_elsewhere() {
        // Latency-bound: more cases in flight, more ops per second, up to the maximum.
        let a = Adaptive::new(8, 2, MAX_ADAPTIVE_JOBS);
        run(&a, Duration::from_millis(60), usize::MAX >> 4, 3000).await;
        assert_eq!(a.peak(), MAX_ADAPTIVE_JOBS);
        // Bound by 8 slots: climbing gains nothing, the limit does not run away.
        let b = Adaptive::new(8, 2, MAX_ADAPTIVE_JOBS);
        run(&b, Duration::from_millis(60), 8, 3000).await;
        assert!(b.limit() < MAX_ADAPTIVE_JOBS, "limit {}", b.limit());
    }

    /// One window of cases of 4 ops taking `took` each (exactly the cases that close it).
    fn window(a: &Adaptive, took: Duration, throttled: u64) {
        std::thread::sleep(WINDOW);
        for _ in 0..(a.limit() / 4).max(2) {
            a.done(4, took, throttled);
        }
    }

    #[test]
    fn halves_on_throttling() {
        let a = Adaptive::new(16, 2, 64);
        let op = Duration::from_millis(10);
        window(&a, op * 4, 5);
        assert_eq!(a.limit(), 8);
        // After throttling, one more case per window while nothing throttles.
        for want in [9, 10] {
            window(&a, op * 4, 5);
            assert_eq!(a.limit(), want);
        }
        // Ops three times as slow as the least seen: a step back.
        window(&a, op * 12, 5);
        assert_eq!(a.limit(), 8);
    }
}
