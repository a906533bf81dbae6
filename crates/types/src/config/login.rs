//! `[login_behaviour]` (issue 25 part 1): where an account logs in from. Every AUTH success
//! records the client's network (IPv4 /24 and /16, IPv6 /48 and /32) for the account in the
//! signal store; crossing one of these counts raises `suspicious_login_pattern` and, when
//! `restrict` is on, restricts the account with its policy's spam action. The windows are fixed
//! (10 minutes, 1 hour, 24 hours; "first seen" = not seen in the last 30 days); the counts are
//! the operator's. The defaults leave a user with a phone, a home and an office (and a trip
//! through hotels and airports) far below every line, and catch a password-spraying botnet that
//! logs in from 20 networks in an hour or 50 in a day however slowly each address sends.

use serde::{Deserialize, Serialize};

use super::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginBehaviourConfig {
    /// Record and judge login networks at all. Default true.
    pub enabled: bool,
    /// Distinct /24 (IPv6 /48) networks with an AUTH success in 10 minutes. Default 8.
    pub burst_networks: u32,
    /// Distinct /24 (IPv6 /48) networks in 1 hour. Default 20.
    pub networks_per_hour: u32,
    /// Distinct /24 (IPv6 /48) networks in 24 hours. Default 50.
    pub networks_per_day: u32,
    /// Distinct /16 (IPv6 /32) networks in 24 hours. Default 25.
    pub wide_networks_per_day: u32,
    /// /24 (IPv6 /48) networks first seen (not in the last 30 days) within 24 hours. Default 30
    /// (a phone on a carrier's CGNAT pools meets 15 new /24s on an account's first day).
    pub new_networks_per_day: u32,
    /// Restrict the account (with its policy's `action_when_spam_threshold_reached`) besides
    /// the alert. Default true.
    pub restrict: bool,
}

impl Default for LoginBehaviourConfig {
    fn default() -> Self {
        LoginBehaviourConfig {
            enabled: true,
            burst_networks: 8,
            networks_per_hour: 20,
            networks_per_day: 50,
            wide_networks_per_day: 25,
            new_networks_per_day: 30,
            restrict: true,
        }
    }
}

impl LoginBehaviourConfig {
    /// Networks remembered per account and window: a count is exact up to here, so every
    /// threshold must be below it.
    pub const MAX_THRESHOLD: u32 = 500;

    pub(super) fn check(&self, p: &mut Problems) {
        for (key, v) in [
            ("burst_networks", self.burst_networks),
            ("networks_per_hour", self.networks_per_hour),
            ("networks_per_day", self.networks_per_day),
            ("wide_networks_per_day", self.wide_networks_per_day),
            ("new_networks_per_day", self.new_networks_per_day),
        ] {
            if !(2..=Self::MAX_THRESHOLD).contains(&v) {
                p.add(
                    format!("login_behaviour.{key}"),
                    format!("{v} is outside 2–{}", Self::MAX_THRESHOLD),
                );
            }
        }
    }
}
