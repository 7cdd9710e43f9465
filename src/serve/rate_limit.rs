//! `rate_limit` of the web configuration: one token bucket over the whole server.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket over the whole server (`rate_limit`): one request per `interval`, bursts
/// of up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: u32,
    /// Tokens available and when they were counted.
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(super) fn new(interval: Duration, burst: u32) -> Self {
        RateLimiter {
            interval,
            burst,
            bucket: Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    /// Takes a token if one is available.
    pub fn allow(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.1).as_secs_f64() / self.interval.as_secs_f64();
        bucket.0 = (bucket.0 + refill).min(f64::from(self.burst));
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            false
        }
    }
}
