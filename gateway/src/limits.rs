//! Rate limits at the edge: token buckets (governor's GCRA) per client IP and per
//! user, with stricter ones on the calls whose contract declares a rate class: signing
//! in (per IP) and starting a job (per user).
//! Over a limit is 429 with `Retry-After`. All of them are off when so configured.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
};

use fabula_runtime::auth::Caller;
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use uuid::Uuid;

use crate::{
    config::RateLimits,
    errors::ApiError,
    routes::{RateClass, Route},
};

/// Every this many checks, buckets that have refilled are forgotten.
const SWEEP_EVERY: u64 = 4096;

/// The limiters; `None` when limits are off.
pub struct Limits(Option<Limiters>);

struct Limiters {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    user: DefaultKeyedRateLimiter<Uuid>,
    auth: DefaultKeyedRateLimiter<IpAddr>,
    jobs: DefaultKeyedRateLimiter<Uuid>,
    clock: DefaultClock,
    checks: AtomicU64,
}

/// `per_minute` with a burst of `burst`; zero is taken as one.
fn quota(per_minute: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one)).allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

impl Limits {
    pub fn new(settings: &RateLimits) -> Self {
        if settings.off {
            return Self(None);
        }
        let strict_burst = settings.burst.min(settings.auth_per_minute.max(1));
        Self(Some(Limiters {
            ip: RateLimiter::keyed(quota(settings.ip_per_minute, settings.burst)),
            user: RateLimiter::keyed(quota(settings.user_per_minute, settings.burst)),
            auth: RateLimiter::keyed(quota(settings.auth_per_minute, strict_burst)),
            jobs: RateLimiter::keyed(quota(
                settings.jobs_per_minute,
                settings.burst.min(settings.jobs_per_minute.max(1)),
            )),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }))
    }

    /// Takes a token from every bucket `route` draws on, or 429.
    pub fn check(&self, route: &Route, ip: IpAddr, caller: &Caller) -> Result<(), ApiError> {
        let Some(limiters) = &self.0 else { return Ok(()) };
        limiters.sweep();
        limiters.take(&limiters.ip, &ip)?;
        if route.rate_class == RateClass::SignIn {
            limiters.take(&limiters.auth, &ip)?;
        }
        if let Some(user) = caller.user_id() {
            limiters.take(&limiters.user, &user)?;
            if route.rate_class == RateClass::JobStart {
                limiters.take(&limiters.jobs, &user)?;
            }
        }
        Ok(())
    }
}

impl Limiters {
    fn take<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), ApiError> {
        limiter.check_key(key).map_err(|not_until| ApiError::rate_limited(not_until.wait_time_from(self.clock.now())))
    }

    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.ip.retain_recent();
            self.user.retain_recent();
            self.auth.retain_recent();
            self.jobs.retain_recent();
        }
    }
}
