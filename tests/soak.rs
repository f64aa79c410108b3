//! Churn soak (`make soak`; not part of `make test`): ten real app profiles on 127.0.0.1, 30 %
//! of them offline at any time (shut down and started again, each time a different set), while
//! 500 messages are written and the membership changes between them — a new key, a member
//! removed while away, a member who leaves, both added back — over and over.
//!
//! At the end everyone is started and must hold exactly the messages of the epochs it was in,
//! each once, and no key of an epoch it was not in. Sizes come from `SOAK_MEMBERS`,
//! `SOAK_MESSAGES`, `SOAK_OFFLINE_PERCENT`; `SOAK_SEED` repeats a run. Figures go to stdout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kiyeovo_core::api::GroupStatus;
use kiyeovo_core::group::changes::AdminAction;
use kiyeovo_core::service::App;
use kiyeovo_tests::{bootstrap_node, group_of, start_group_app, wait_group, TestProfile};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The members (by index) of each epoch, as the admin wrote them.
type Rosters = BTreeMap<u32, BTreeSet<usize>>;

struct Soak {
    profiles: Vec<TestProfile>,
    apps: Vec<Option<App>>,
    peers: Vec<String>,
    addr: String,
    id: String,
    admin: usize,
    rosters: Rosters,
    restarts: u32,
}

impl Soak {
    fn app(&self, i: usize) -> &App {
        self.apps[i].as_ref().expect("online")
    }

    fn online(&self, i: usize) -> bool {
        self.apps[i].is_some()
    }

    fn epoch(&self) -> u32 {
        *self.rosters.keys().last().expect("epoch 1")
    }

    async fn start(&mut self, i: usize) {
        if self.apps[i].is_none() {
            self.apps[i] = Some(start_group_app(&self.profiles[i], &self.addr).await);
            self.restarts += 1;
        }
    }

    async fn stop(&mut self, i: usize) {
        if let Some(app) = self.apps[i].take() {
            app.shutdown().await;
        }
    }

    /// A new offline set: `count` members other than the admin and those in `keep`.
    async fn churn(&mut self, rng: &mut StdRng, count: usize, keep: &[usize]) {
        let mut pool: Vec<usize> = (0..self.apps.len())
            .filter(|i| *i != self.admin && !keep.contains(i))
            .collect();
        pool.shuffle(rng);
        let away: BTreeSet<usize> = pool.into_iter().take(count).collect();
        for i in 0..self.apps.len() {
            if away.contains(&i) {
                self.stop(i).await;
            } else {
                self.start(i).await;
            }
        }
    }

    /// After a change the admin made: records the new epoch's roster and waits until every
    /// online member of it is there.
    async fn changed(&mut self, what: &str) {
        let want = self.epoch() + 1;
        let v = wait_group(self.app(self.admin), &self.id, what, |v| v.epoch == want).await;
        let members: BTreeSet<usize> = v
            .roster
            .iter()
            .map(|m| self.peers.iter().position(|p| *p == m.peer_id).unwrap())
            .collect();
        self.rosters.insert(want, members.clone());
        for i in members {
            if self.online(i) {
                wait_group(self.app(i), &self.id, what, |v| {
                    v.epoch == want && v.status == GroupStatus::Active
                })
                .await;
            }
        }
    }

    /// The admin adds `j` (online, out of the group) back; `j` accepts.
    async fn add_back(&mut self, j: usize) {
        self.start(j).await;
        let id = self.id.clone();
        wait_group(self.app(j), &id, "out of the group", |v| {
            matches!(v.status, GroupStatus::Removed | GroupStatus::Left)
        })
        .await;
        let peer = self.app(j).peer_id();
        self.app(self.admin)
            .groups()
            .add_members(&id, &[peer], "Admin")
            .await
            .unwrap();
        wait_group(self.app(j), &id, "invited back", |v| v.can_respond).await;
        self.app(j).groups().respond(&id, true).await.unwrap();
        self.changed("added back").await;
    }

    /// Whether member `i` is current (may write in the newest epoch).
    async fn current(&self, i: usize) -> bool {
        let Some(app) = &self.apps[i] else {
            return false;
        };
        let v = app.groups().get(&self.id).await.unwrap();
        v.status == GroupStatus::Active && v.epoch == self.epoch()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with `make soak`"]
async fn members_hold_exactly_the_messages_of_their_epochs_through_churn() {
    let n = env("SOAK_MEMBERS", 10) as usize;
    let total = env("SOAK_MESSAGES", 500) as usize;
    let away = (n as u64 * env("SOAK_OFFLINE_PERCENT", 30) / 100) as usize;
    let seed = env("SOAK_SEED", rand::thread_rng().gen());
    let mut rng = StdRng::seed_from_u64(seed);
    println!("soak: {n} members, {total} messages, {away} offline at a time, seed {seed}");
    let started = Instant::now();
    let (boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("soak", n, &addr).await;
    let formed = started.elapsed();
    let peers = apps.iter().map(|a| a.peer_id().to_string()).collect();
    let mut s = Soak {
        profiles,
        apps: apps.into_iter().map(Some).collect(),
        peers,
        addr,
        id: id.clone(),
        admin: 0,
        rosters: BTreeMap::from([(1, (0..n).collect())]),
        restarts: 0,
    };
    let churn_every = 25;
    let change_every = total / 11;
    let mut sent: Vec<(String, u32)> = Vec::new();
    let (mut removed, mut left): (Option<usize>, Option<usize>) = (None, None);
    let mut changes = 0;
    let loop_started = Instant::now();
    for i in 0..total {
        if i % churn_every == 0 {
            s.churn(&mut rng, away, &[]).await;
        }
        if i > 0 && i % change_every == 0 {
            let roster: Vec<usize> = s.rosters[&s.epoch()]
                .iter()
                .copied()
                .filter(|m| *m != s.admin)
                .collect();
            match changes % 5 {
                0 => {
                    s.app(s.admin)
                        .groups()
                        .admin_action(&id, AdminAction::Rotate)
                        .await
                        .unwrap();
                    s.changed("rotated").await;
                }
                1 => {
                    // Someone away, if anyone is: it learns when it is back.
                    let away: Vec<usize> =
                        roster.iter().copied().filter(|m| !s.online(*m)).collect();
                    let who = *away.choose(&mut rng).unwrap_or(&roster[0]);
                    let peer = s.peers[who].parse().unwrap();
                    s.app(s.admin)
                        .groups()
                        .admin_action(&id, AdminAction::Remove(peer))
                        .await
                        .unwrap();
                    s.changed("removed").await;
                    removed = Some(who);
                }
                2 => {
                    let mut here = Vec::new();
                    for m in &roster {
                        if s.current(*m).await {
                            here.push(*m);
                        }
                    }
                    let who = match here.choose(&mut rng) {
                        Some(who) => *who,
                        None => {
                            s.start(roster[0]).await;
                            roster[0]
                        }
                    };
                    s.app(who).groups().leave(&id).await.unwrap();
                    s.changed("left").await;
                    left = Some(who);
                }
                3 => {
                    if let Some(who) = left.take() {
                        s.add_back(who).await;
                    }
                }
                _ => {
                    if let Some(who) = removed.take() {
                        s.add_back(who).await;
                    }
                }
            }
            changes += 1;
        }
        // A member who is online and current writes (one that is not current yet is still
        // catching up after being away).
        let mut writers: Vec<usize> = Vec::new();
        for m in s.rosters[&s.epoch()].clone() {
            if s.current(m).await {
                writers.push(m);
            }
        }
        let w = *writers
            .choose(&mut rng)
            .expect("the admin is always current");
        let body = format!("m{i}-from-{w}");
        let m = s.app(w).chat().send(&id, &body).await.unwrap();
        sent.push((body, m.epoch));
    }
    let writing = loop_started.elapsed();

    // Everyone back; each must come to hold exactly its epochs' messages.
    let back = Instant::now();
    for i in 0..n {
        s.start(i).await;
    }
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let epochs: BTreeSet<u32> = s
            .rosters
            .iter()
            .filter(|(_, m)| m.contains(&i))
            .map(|(e, _)| *e)
            .collect();
        let mut want: Vec<String> = sent
            .iter()
            .filter(|(_, e)| epochs.contains(e))
            .map(|(b, _)| b.clone())
            .collect();
        want.sort();
        let app = s.app(i);
        let mut rx = app.chat().subscribe();
        let t = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(300), async {
            loop {
                let mut have: Vec<String> = app
                    .chat()
                    .chat(&id)
                    .await
                    .unwrap()
                    .messages
                    .iter()
                    .map(|m| m.body.clone())
                    .collect();
                have.sort();
                let extra: Vec<&String> = have.iter().filter(|b| !want.contains(b)).collect();
                assert!(
                    extra.is_empty(),
                    "member {i} holds messages of epochs it was not in: {extra:?}"
                );
                let mut once = have.clone();
                once.dedup();
                assert_eq!(once.len(), have.len(), "member {i} holds a message twice");
                if have == want {
                    return;
                }
                let _ = rx.recv().await;
            }
        })
        .await;
        if outcome.is_err() {
            let have: BTreeSet<String> = app
                .chat()
                .chat(&id)
                .await
                .unwrap()
                .messages
                .iter()
                .map(|m| m.body.clone())
                .collect();
            let missing: Vec<&String> = want.iter().filter(|b| !have.contains(*b)).collect();
            panic!(
                "member {i} (epochs {epochs:?}) misses {} of {}: {missing:?}",
                missing.len(),
                want.len()
            );
        }
        slowest = slowest.max(t.elapsed());
        // No key of an epoch it was not in.
        let held: BTreeSet<u32> = app
            .groups()
            .keys_held(&id)
            .await
            .unwrap()
            .iter()
            .map(|(e, _)| *e)
            .filter(|e| *e > 0)
            .collect();
        assert!(
            held.is_subset(&epochs),
            "member {i} holds keys {held:?}, was in {epochs:?}"
        );
        println!(
            "soak: member {i}: epochs {epochs:?}, {} messages, each once",
            want.len()
        );
    }
    let caught_up = back.elapsed();
    println!(
        "soak: formed in {:.1} s; {total} messages and {changes} membership changes in {:.1} s \
         ({} restarts); everyone exact {:.1} s after all were back (slowest member {:.1} s); \
         {} epochs; total {:.1} s",
        formed.as_secs_f64(),
        writing.as_secs_f64(),
        s.restarts,
        caught_up.as_secs_f64(),
        slowest.as_secs_f64(),
        s.rosters.len(),
        started.elapsed().as_secs_f64()
    );
    for app in s.apps.into_iter().flatten() {
        app.shutdown().await;
    }
    boot.shutdown().await;
}
