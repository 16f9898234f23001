//! The VRRP state machine of RFC 5798 §6.4 (same shape as RFC 3768 §6.4),
//! plus keepalived's FAULT state for failed tracking.
//!
//! [`VirtualRouter::step`] is a pure function of (state, event, now): no
//! sockets, no clock, no sleeps. Timers are [`Action`]s; their expiries come
//! back as [`Event`]s. That makes every transition a table test and a whole
//! election a deterministic simulation (`tests/election.rs`).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::packet::Version;
use crate::timers;

mod step;

/// RFC 5798 §6.4 states, plus FAULT (keepalived: a weight-0 check failed).
/// Shown (logs, `/status`, metrics) by keepalived's names: INIT, BACKUP, MASTER, FAULT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum State {
    #[serde(rename = "INIT")]
    Initialize,
    #[serde(rename = "BACKUP")]
    Backup,
    #[serde(rename = "MASTER")]
    Master,
    #[serde(rename = "FAULT")]
    Fault,
}

/// What the router was configured with (RFC 5798 §6.1 parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub version: Version,
    /// Configured priority; tracking lowers the effective one.
    pub priority: u8,
    pub adver_int: Duration,
    pub preempt: bool,
    /// keepalived's `preempt_delay`: after first seeing a lower-priority
    /// master, keep deferring to it this long before preempting.
    pub preempt_delay: Duration,
    /// Our primary address: breaks priority ties (RFC 5798 §6.4.3).
    pub primary: IpAddr,
}

/// Inputs to the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Startup,
    Shutdown,
    /// A validated advertisement for our VRID.
    Advert {
        src: IpAddr,
        priority: u8,
        interval: Duration,
    },
    MasterDownExpired,
    AdverExpired,
    /// Tracking changed: `fault` if a weight-0 check is down, else the
    /// effective priority after weights. `handover`: every such check
    /// reports a planned stop (the proxy's `/healthz` says "draining"):
    /// the service still serves, so a MASTER keeps its VIPs until the peer
    /// has taken over.
    Health {
        fault: bool,
        handover: bool,
        priority: u8,
    },
    /// The VIPs kept after leaving MASTER may go now.
    ReleaseExpired,
    /// SIGHUP: new parameters for the same virtual router.
    Reconfigure(Params),
}

/// Why a transition happened, for logs, `/status` and notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Startup,
    AddressOwner,
    MasterDown,
    Preempted {
        by: IpAddr,
        priority: u8,
    },
    Shutdown,
    Fault,
    /// A planned stop of the tracked service (it reports "draining").
    Handover,
    FaultCleared,
}

/// Outputs the driver executes, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        priority: u8,
    },
    ArmMasterDown(Duration),
    ArmAdver(Duration),
    CancelTimers,
    AddVips,
    DelVips,
    /// Gratuitous ARP / unsolicited NA for the VIPs.
    Announce,
    /// Remove the VIPs kept after leaving MASTER after this long (replaces
    /// an armed release); expiry is `ReleaseExpired`.
    ArmRelease(Duration),
    /// The kept VIPs are ours again (MASTER once more): no release.
    CancelRelease,
    /// Another router advertised as master while we are (both became
    /// master at once, e.g. started together): refresh the neighbours'
    /// caches again once their ARP lock time has passed, since the loser's
    /// gratuitous ARPs may have been the last they heard (keepalived's
    /// `garp_lower_prio_repeat`).
    Reannounce,
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// One virtual router's protocol state.
#[derive(Clone, Debug)]
pub struct VirtualRouter {
    params: Params,
    state: State,
    priority: u8,
    fault: bool,
    master_adver_int: Duration,
    master: Option<IpAddr>,
    preempt_at: Option<Duration>,
    /// The VIPs are still configured though we are not MASTER (a planned
    /// hand-over or a preemption), until `ReleaseExpired`.
    holding: bool,
    /// While holding: the new master has been heard (its release is armed).
    heard: bool,
    /// When we last answered a lower-priority master (rate limit).
    answered_at: Option<Duration>,
}

/// How long the VIPs stay after the new master is heard: connections
/// accepted just before the clients' ARP caches moved still get their
/// answers out (a reply needs its source address on the host).
pub const RELEASE_LINGER: Duration = Duration::from_secs(1);

// === impl State ===

impl State {
    pub const ALL: [State; 4] = [
        State::Initialize,
        State::Backup,
        State::Master,
        State::Fault,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Reason ===

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::AddressOwner => f.write_str("priority 255: address owner"),
            Reason::MasterDown => f.write_str("master down timer expired"),
            Reason::Preempted { by, priority } => {
                write!(f, "advert from {by} with priority {priority}")
            }
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::Fault => f.write_str("tracked check failed"),
            Reason::Handover => f.write_str("tracked service is draining: handing the VIP over"),
            Reason::FaultCleared => f.write_str("tracked checks recovered"),
        }
    }
}

// === impl VirtualRouter ===

impl VirtualRouter {
    pub fn new(params: Params) -> VirtualRouter {
        VirtualRouter {
            priority: params.priority,
            master_adver_int: params.adver_int,
            params,
            state: State::Initialize,
            fault: false,
            master: None,
            preempt_at: None,
            holding: false,
            heard: false,
            answered_at: None,
        }
    }

    /// Whether the VIPs are kept while not MASTER (see [`Event::Health`]).
    pub fn holding(&self) -> bool {
        self.holding
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Effective priority (configured minus tracking weights).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The current master as far as we know (ourselves when MASTER).
    pub fn master(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.params.primary),
            _ => self.master,
        }
    }

    pub fn master_adver_int(&self) -> Duration {
        self.master_adver_int
    }

    fn skew(&self) -> Duration {
        timers::skew(self.params.version, self.priority, self.master_adver_int)
    }

    fn master_down(&self) -> Duration {
        timers::master_down(self.params.version, self.priority, self.master_adver_int)
    }

    fn go(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        out.push(Action::Transition {
            from: self.state,
            to,
            reason,
        });
        self.state = to;
    }

    fn become_master(&mut self, reason: Reason, out: &mut Vec<Action>) {
        // RFC 5798 §6.4.1/§6.4.2: send an ADVERTISEMENT, broadcast gratuitous
        // ARP for each VIP, set the Adver_Timer, transition to Master.
        out.push(Action::SendAdvert {
            priority: self.priority,
        });
        if std::mem::take(&mut self.holding) {
            out.push(Action::CancelRelease);
        }
        out.push(Action::AddVips);
        out.push(Action::Announce);
        out.push(Action::ArmAdver(self.params.adver_int));
        self.master = None;
        self.go(State::Master, reason, out);
    }

    fn become_backup(&mut self, reason: Reason, out: &mut Vec<Action>) {
        // RFC 5798 §6.4.1: Master_Adver_Interval = Advertisement_Interval,
        // Master_Down_Timer = Master_Down_Interval, transition to Backup.
        self.master_adver_int = self.params.adver_int;
        out.push(Action::ArmMasterDown(self.master_down()));
        self.go(State::Backup, reason, out);
    }

    /// Leaves MASTER for `to`: stop adverts, say priority 0, drop the VIPs.
    fn resign(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        out.push(Action::CancelTimers);
        out.push(Action::SendAdvert { priority: 0 });
        out.push(Action::DelVips);
        self.go(to, reason, out);
    }

    /// Leaves MASTER for FAULT on a planned stop: priority 0 as in
    /// [`Self::resign`], but the VIPs stay until the new master is heard
    /// (then [`RELEASE_LINGER`]) or, with no peer, Master_Down_Interval.
    fn hand_over(&mut self, out: &mut Vec<Action>) {
        out.push(Action::CancelTimers);
        out.push(Action::SendAdvert { priority: 0 });
        out.push(Action::ArmRelease(self.master_down()));
        self.holding = true;
        self.heard = false;
        self.go(State::Fault, Reason::Handover, out);
    }

    /// A new master was heard while we keep the VIPs: they go
    /// [`RELEASE_LINGER`] after its first advert.
    fn heard_new_master(&mut self, priority: u8, out: &mut Vec<Action>) {
        if self.holding && priority != 0 && !self.heard {
            self.heard = true;
            out.push(Action::ArmRelease(RELEASE_LINGER));
        }
    }

    /// Startup logic shared by Initialize and a cleared Fault.
    fn start(&mut self, reason: Reason, out: &mut Vec<Action>) {
        if self.fault {
            self.go(State::Fault, Reason::Fault, out);
        } else if self.priority == 255 {
            // RFC 5798 §6.4.1: "If the Priority = 255 ... transition to the Master state".
            self.become_master(Reason::AddressOwner, out);
        } else {
            self.become_backup(reason, out);
        }
    }
}
