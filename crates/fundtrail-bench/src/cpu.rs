//! CPU time, as the benchmarks report it: of this process, of nats-server, of the
//! calling thread and of the whole machine, read from `/proc` (proc(5)), in seconds
//! and then in µs an event.

/// CPU time of this process and of nats-server, split into user and kernel
/// time, and of the whole machine: in seconds from [`CpuTimes::now`], in µs an
/// event after [`CpuTimes::per_event`]. The split tells the service's own work from
/// the kernel's, whose cost per page written can change during a run on a virtual
/// machine whose memory the host backs lazily (`docs/performance.md`, "Scale").
#[derive(Clone, Copy, Default)]
pub(crate) struct CpuTimes {
    pub(crate) service_user: f64,
    pub(crate) service_kernel: f64,
    pub(crate) nats_user: f64,
    pub(crate) nats_kernel: f64,
    /// The whole machine's CPU time busy (every process, the kernel's own threads
    /// such as writeback included) and idle (I/O wait included), from `/proc/stat`.
    pub(crate) machine_busy: f64,
    pub(crate) machine_idle: f64,
}

/// The unit of the times in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux's
/// mainstream architectures; proc(5)).
const USER_HZ: f64 = 100.0;

impl CpuTimes {
    pub(crate) fn now(service: u32, nats: Option<u32>) -> CpuTimes {
        let (service_user, service_kernel) = cpu_seconds(service);
        let (nats_user, nats_kernel) = nats.map_or((f64::NAN, f64::NAN), cpu_seconds);
        let (machine_busy, machine_idle) = machine_cpu_seconds();
        CpuTimes { service_user, service_kernel, nats_user, nats_kernel, machine_busy, machine_idle }
    }

    /// `f` of each figure and the same figure of `other`.
    fn zip(&self, other: &CpuTimes, f: impl Fn(f64, f64) -> f64) -> CpuTimes {
        CpuTimes {
            service_user: f(self.service_user, other.service_user),
            service_kernel: f(self.service_kernel, other.service_kernel),
            nats_user: f(self.nats_user, other.nats_user),
            nats_kernel: f(self.nats_kernel, other.nats_kernel),
            machine_busy: f(self.machine_busy, other.machine_busy),
            machine_idle: f(self.machine_idle, other.machine_idle),
        }
    }

    /// `f` of each figure.
    fn map(&self, f: impl Fn(f64) -> f64) -> CpuTimes {
        self.zip(self, |figure, _| f(figure))
    }

    pub(crate) fn since(&self, before: &CpuTimes) -> CpuTimes {
        self.zip(before, |now, then| now - then)
    }

    pub(crate) fn per_event(&self, events: usize) -> CpuTimes {
        self.map(|seconds| micros_per_event(seconds, events))
    }

    pub(crate) fn mean(rounds: &[CpuTimes]) -> CpuTimes {
        let n = rounds.len().max(1) as f64;
        let sum = rounds.iter().fold(CpuTimes::default(), |sum, round| sum.zip(round, |a, b| a + b));
        sum.map(|total| total / n)
    }

    /// This process's CPU an event (and of it, `generator` µs the load generator's)
    /// and nats-server's when it was measured, as words (after [`CpuTimes::per_event`]).
    pub(crate) fn process_line(&self, generator: Option<f64>) -> String {
        let mut line = format!(
            "this process {:.0} µs ({:.0} user, {:.0} kernel)",
            self.service_user + self.service_kernel,
            self.service_user,
            self.service_kernel
        );
        if let Some(generator) = generator {
            line += &format!(", of which the load generator {generator:.0} µs");
        }
        if !self.nats_user.is_nan() {
            line += &format!(
                "; nats-server {:.0} µs ({:.0} user, {:.0} kernel)",
                self.nats_user + self.nats_kernel,
                self.nats_user,
                self.nats_kernel
            );
        }
        line
    }

    /// The machine's busy CPU an event and the share of its CPU left idle, as words
    /// (after [`CpuTimes::per_event`]).
    pub(crate) fn machine_line(&self) -> String {
        let idle_share = self.machine_idle / (self.machine_busy + self.machine_idle);
        format!("the machine {:.0} µs busy, {:.0} % idle", self.machine_busy, idle_share * 100.0)
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "service_user": self.service_user, "service_kernel": self.service_kernel,
            "nats_user": self.nats_user, "nats_kernel": self.nats_kernel,
            "machine_busy": self.machine_busy, "machine_idle": self.machine_idle,
        })
    }
}

/// `seconds` of CPU over `events` events, in µs an event.
pub(crate) fn micros_per_event(seconds: f64, events: usize) -> f64 {
    seconds * 1e6 / events.max(1) as f64
}

/// User and kernel CPU seconds of a process so far (NaN if unreadable).
fn cpu_seconds(pid: u32) -> (f64, f64) {
    cpu_seconds_in(&format!("/proc/{pid}/stat"))
}

/// The machine's busy and idle CPU seconds since boot, all cores (NaN if
/// unreadable): the first line of `/proc/stat`, whose fields are user, nice,
/// system, idle, iowait, irq, softirq, steal… in `USER_HZ` (proc(5)). Idle is
/// idle and iowait; steal (another guest's) counts as neither.
fn machine_cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map_or(vec![], |rest| rest.split_whitespace().filter_map(|v| v.parse().ok()).collect());
    if ticks.len() < 8 {
        return (f64::NAN, f64::NAN);
    }
    let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6];
    let idle = ticks[3] + ticks[4];
    (busy / USER_HZ, idle / USER_HZ)
}

/// User and kernel CPU seconds of the calling thread so far (NaN if unreadable).
pub(crate) fn thread_cpu_seconds() -> (f64, f64) {
    cpu_seconds_in("/proc/thread-self/stat")
}

/// User and kernel CPU seconds in a `stat` file of `/proc` (NaN if unreadable).
fn cpu_seconds_in(path: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its ')'):
    // state is field 3, utime field 14 and stime field 15 (proc(5)).
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).map_or(f64::NAN, |t| t / USER_HZ);
    (ticks(11), ticks(12))
}
