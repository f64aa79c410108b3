//! `make bench`: ten real app profiles and a bootstrap node on 127.0.0.1 in one established
//! group (real SQLite files, real keyring, real libp2p), then
//!
//! 0. **the floor**: a group of two (members 0 and 1 of the same run), 200 messages paced like
//!    the live run below, one sender and one receiver: the same path (gossip hop, verify,
//!    decrypt, SQLite commit) with nothing else going on. Machines are noisy; each live figure is
//!    also given as a ratio to this floor, measured minutes apart on the same machine;
//! 1. **live delivery**: 1000 messages from random senders, one after another; for each, the
//!    time from `send` to "decrypted and stored" at every other member (p50/p95/p99/max);
//! 2. **offline catch-up**: one member is closed while the 9 others write 100 messages each;
//!    it starts again; the time from start-up until all 900 are fetched, verified and stored;
//! 3. **memory**: resident set of the whole process (11 nodes) after the run.
//!
//! After the floor and the paced run it prints **where the time went** per delivery: the median
//! of each step the core marks (`stages.rs`: sender seal + commit, hand to gossipsub; receiver
//! verify + decrypt, commit) and the rest of the median latency (the gossip hop and queues).
//!
//! Run it with a release build (`make bench`); figures go to the README.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kiyeovo_core::group::ChatEvent;
use kiyeovo_core::service::App;
use kiyeovo_tests::{
    bootstrap_node, establish_group, form_group, start_group_app, wait_connected, TestProfile,
};
use libp2p::PeerId;
use rand::Rng;

mod stages;
use stages::Stages;

const MEMBERS: usize = 10;
const LIVE_MESSAGES: usize = 1000;
const CATCH_UP_PER_SENDER: usize = 100;
const FLOOR_MESSAGES: usize = 200;
/// 50 messages a second across the group, like a lively chat.
const PACE: Duration = Duration::from_millis(20);

/// p50, p95, p99 and max of sorted latencies.
struct Spread {
    p50: Duration,
    p95: Duration,
    p99: Duration,
    max: Duration,
}

impl Spread {
    fn of(mut latencies: Vec<Duration>) -> Self {
        latencies.sort();
        Self {
            p50: percentile(&latencies, 0.50),
            p95: percentile(&latencies, 0.95),
            p99: percentile(&latencies, 0.99),
            max: *latencies.last().expect("some"),
        }
    }

    fn show(&self) -> String {
        format!(
            "p50 {} · p95 {} · p99 {} · max {}",
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            ms(self.max)
        )
    }

    /// Each percentile as a multiple of the floor's.
    fn ratio(&self, floor: &Spread) -> String {
        let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        format!(
            "p50 ×{:.1} · p95 ×{:.1} · p99 ×{:.1}",
            r(self.p50, floor.p50),
            r(self.p95, floor.p95),
            r(self.p99, floor.p99)
        )
    }
}

/// Every `Received` event of `apps`, timestamped as it happens.
fn watch_receipts(
    apps: &[App],
) -> tokio::sync::mpsc::UnboundedReceiver<(String, PeerId, u64, Instant)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for app in apps {
        let mut events = app.chat().subscribe();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let ChatEvent::Received {
                    group_id,
                    sender,
                    seq,
                    ..
                } = event
                {
                    let _ = tx.send((
                        kiyeovo_core::group::store::hex(group_id),
                        sender,
                        seq,
                        Instant::now(),
                    ));
                }
            }
        });
    }
    rx
}

/// One line: the median of each step of a delivery recorded since the last `take`, and what is
/// left of the median latency `p50` (the gossip hop, the event loop's queues, scheduling).
fn breakdown(stages: &Stages, p50: Duration) -> String {
    let steps = [
        ("stage.send_seal_commit", "sender seal + commit"),
        ("stage.send_publish", "sender hand to gossipsub"),
        ("stage.recv_verify_open", "receiver verify + decrypt"),
        ("stage.recv_commit", "receiver commit"),
    ];
    let mut recorded = stages.take();
    if recorded.is_empty() {
        return "  (no breakdown: BENCH_BREAKDOWN=off)".into();
    }
    let mut sum = Duration::ZERO;
    let mut parts = Vec::new();
    for (name, label) in steps {
        let Some(mut times) = recorded.remove(name) else {
            parts.push(format!("{label} (none recorded)"));
            continue;
        };
        times.sort();
        let median = percentile(&times, 0.5);
        sum += median;
        parts.push(format!("{label} {}", ms(median)));
    }
    parts.push(format!(
        "the rest (gossip hop, queues) {}",
        ms(p50.saturating_sub(sum))
    ));
    format!(
        "  where the median delivery's time goes: {}",
        parts.join(" · ")
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Waits until `app` has `n` messages from others stored.
async fn wait_stored(app: &App, id: &str, n: usize) {
    let mut rx = app.chat().subscribe();
    loop {
        let have = app
            .chat()
            .chat(id)
            .await
            .expect("chat")
            .messages
            .iter()
            .filter(|m| !m.outgoing)
            .count();
        if have >= n {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("progress within a minute");
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `BENCH_BREAKDOWN=off` runs without the timing layer (no subscriber at all, as the app
    // runs), to check that measuring the steps does not change the figures.
    let stages = if std::env::var("BENCH_BREAKDOWN").as_deref() == Ok("off") {
        Stages::default()
    } else {
        Stages::install()
    };
    let (boot, addr) = bootstrap_node().await;
    let profiles: Vec<TestProfile> = (0..MEMBERS)
        .map(|i| TestProfile::new(&format!("bench-{i}")))
        .collect();
    let mut apps = Vec::new();
    for p in &profiles {
        apps.push(start_group_app(p, &addr).await);
    }
    let t = Instant::now();
    let id = form_group(&apps).await;
    println!(
        "group of {MEMBERS} formed and established in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    wait_connected(&apps).await;
    let mut rx = watch_receipts(&apps);

    // 0. The floor: one sender, one receiver, same path, same pace.
    let pair = establish_group(&apps[..2]).await;
    stages.take();
    let floor = {
        let mut sent_at: HashMap<u64, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(PACE);
        for i in 0..FLOOR_MESSAGES {
            tick.tick().await;
            sent_at.insert(i as u64 + 1, Instant::now());
            apps[0]
                .chat()
                .send(&pair, &format!("floor message {i}"))
                .await
                .expect("send");
        }
        let mut latencies = Vec::with_capacity(FLOOR_MESSAGES);
        while latencies.len() < FLOOR_MESSAGES {
            let (group, _, seq, at) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await
                .expect("all floor deliveries within a minute")
                .expect("events");
            if group == pair {
                if let Some(t0) = sent_at.get(&seq) {
                    latencies.push(at.duration_since(*t0));
                }
            }
        }
        Spread::of(latencies)
    };
    println!(
        "floor: one sender, one receiver, {FLOOR_MESSAGES} messages every 20 ms: {}",
        floor.show()
    );
    println!("{}", breakdown(&stages, floor.p50));

    // 1. Live delivery latency.
    let peers: Vec<PeerId> = apps.iter().map(|a| a.peer_id()).collect();
    let mut seqs = [0u64; MEMBERS];
    // Paced like a lively chat (50 messages/s across the group), then as fast as sends return.
    for (label, pace) in [
        ("paced, one message every 20 ms", Some(PACE)),
        ("burst, back to back", None),
    ] {
        let mut sent_at: HashMap<(PeerId, u64), Instant> = HashMap::new();
        stages.take();
        let mut rng = rand::thread_rng();
        let start = Instant::now();
        let mut tick = pace.map(tokio::time::interval);
        for i in 0..LIVE_MESSAGES {
            if let Some(t) = tick.as_mut() {
                t.tick().await;
            }
            let who = rng.gen_range(0..MEMBERS);
            seqs[who] += 1;
            sent_at.insert((peers[who], seqs[who]), Instant::now());
            apps[who]
                .chat()
                .send(&id, &format!("benchmark message {i}"))
                .await
                .expect("send");
        }
        let send_time = start.elapsed();
        let expected = LIVE_MESSAGES * (MEMBERS - 1);
        let mut latencies = Vec::with_capacity(expected);
        while latencies.len() < expected {
            let (group, sender, seq, at) =
                tokio::time::timeout(Duration::from_secs(120), rx.recv())
                    .await
                    .expect("all deliveries within two minutes")
                    .expect("events");
            if group != id {
                continue;
            }
            if let Some(t0) = sent_at.get(&(sender, seq)) {
                latencies.push(at.duration_since(*t0));
            }
        }
        let spread = Spread::of(latencies);
        println!(
            "live delivery ({label}), {LIVE_MESSAGES} messages x {} receivers, sent in {:.1} s: {} — to the floor: {}",
            MEMBERS - 1,
            send_time.as_secs_f64(),
            spread.show(),
            spread.ratio(&floor),
        );
        println!("{}", breakdown(&stages, spread.p50));
    }

    // 2. Offline catch-up: the last member is closed while the others write.
    let away = apps.pop().expect("members");
    let before = away
        .chat()
        .chat(&id)
        .await
        .expect("chat")
        .messages
        .iter()
        .filter(|m| !m.outgoing)
        .count();
    away.shutdown().await;
    for app in &apps {
        for i in 0..CATCH_UP_PER_SENDER {
            app.chat()
                .send(&id, &format!("while you were away {i}"))
                .await
                .expect("send");
        }
    }
    // Every sender's bucket must hold its 100 before the member comes back.
    for app in &apps {
        let mut events = app.chat().subscribe();
        while !app
            .chat()
            .chat(&id)
            .await
            .expect("chat")
            .messages
            .iter()
            .filter(|m| m.outgoing)
            .all(|m| m.stored)
        {
            let _ = tokio::time::timeout(Duration::from_secs(60), events.recv()).await;
        }
    }
    let catch_up = (MEMBERS - 1) * CATCH_UP_PER_SENDER;
    let t = Instant::now();
    let back = start_group_app(profiles.last().expect("profile"), &addr).await;
    let started = t.elapsed();
    wait_stored(&back, &id, before + catch_up).await;
    let caught_up = t.elapsed();
    println!(
        "offline catch-up, {} senders x {CATCH_UP_PER_SENDER} messages: {:.2} s from start-up ({:.2} s of it joining the network, {:.2} s fetching, verifying and storing)",
        MEMBERS - 1,
        caught_up.as_secs_f64(),
        started.as_secs_f64(),
        (caught_up - started).as_secs_f64(),
    );
    println!(
        "memory: {:.0} MiB resident for {} nodes in this process",
        rss_mib(),
        MEMBERS + 1
    );

    back.shutdown().await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}
