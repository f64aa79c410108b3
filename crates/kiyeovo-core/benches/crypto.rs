//! Micro-benchmarks of the per-message work: sealing and opening envelopes, checking control
//! messages and DHT records, merging a full bucket. `make bench` runs them.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use kiyeovo_core::delivery::bucket::{self, BucketLimits};
use kiyeovo_core::group::control::{random_id, Body, Control, GroupKey, Member, Welcome};
use kiyeovo_core::group::envelope::{self, Sealing};
use kiyeovo_core::identity::Identity;
use kiyeovo_core::pairwise::envelope as pw;
use kiyeovo_core::pairwise::keys::derive;

fn group_envelopes(c: &mut Criterion) {
    let alice = Identity::generate();
    let key = GroupKey::random();
    let gid = random_id();
    let body = "x".repeat(1024);
    let sealing = |seq| Sealing {
        identity: &alice,
        key: &key,
        group_id: gid,
        epoch: 1,
        seq,
        msg_id: random_id(),
        sent_at: 1,
        roster_hash: [0; 32],
    };
    c.bench_function("group envelope seal (1 KiB)", |b| {
        b.iter(|| envelope::seal(&sealing(1), black_box(&body)).unwrap())
    });
    let sealed = envelope::seal(&sealing(1), &body).unwrap();
    c.bench_function("group envelope open + verify (1 KiB)", |b| {
        b.iter(|| envelope::open(black_box(&sealed), &gid, 1, &key).unwrap())
    });
    let many: Vec<Vec<u8>> = (1..=100)
        .map(|s| envelope::seal(&sealing(s), "hello").unwrap())
        .collect();
    let limits = BucketLimits {
        cap: 100,
        max_bytes: 500 * 1024,
    };
    c.bench_function("group bucket merge (100 + 100)", |b| {
        b.iter(|| {
            bucket::merge(black_box(&many), black_box(&many), limits, |e| {
                envelope::peek(e, &key)
            })
        })
    });
}

fn pairwise_envelopes(c: &mut Criterion) {
    let (a, b) = (Identity::generate(), Identity::generate());
    let ka = derive(&a, &b.public());
    let kb = derive(&b, &a.public());
    let payload = pw::Payload::Chat {
        body: "x".repeat(1024),
    };
    c.bench_function("pairwise envelope seal (1 KiB)", |bn| {
        bn.iter(|| {
            pw::seal(
                &a,
                &b.public().ed25519,
                &ka.outgoing,
                1,
                pw::new_msg_id(),
                1,
                black_box(&payload),
            )
            .unwrap()
        })
    });
    let sealed = pw::seal(
        &a,
        &b.public().ed25519,
        &ka.outgoing,
        1,
        pw::new_msg_id(),
        1,
        &payload,
    )
    .unwrap();
    c.bench_function("pairwise envelope open (1 KiB)", |bn| {
        bn.iter(|| {
            pw::open(
                black_box(&sealed),
                &b.public().ed25519,
                &a.public(),
                &kb.incoming,
            )
            .unwrap()
        })
    });
    c.bench_function("pairwise key derivation (X25519 + HKDF)", |bn| {
        bn.iter(|| derive(black_box(&a), &b.public()))
    });
}

fn control(c: &mut Criterion) {
    let creator = Identity::generate();
    let members: Vec<Member> = (0..10)
        .map(|i| Member {
            id: if i == 0 {
                creator.public().ed25519
            } else {
                Identity::generate().public().ed25519
            },
            name: format!("member {i}"),
            bucket_pub: [1; 32],
            x25519: [2; 32],
            response: if i == 0 { vec![] } else { vec![0; 300] },
        })
        .collect();
    let welcome = Control::new(
        random_id(),
        1,
        Body::Welcome(Welcome {
            epoch: 1,
            key: GroupKey::random(),
            members,
        }),
    )
    .sign(&creator)
    .encode();
    c.bench_function("control decode + verify (Welcome, 10 members)", |b| {
        b.iter(|| kiyeovo_core::group::control::SignedControl::decode(black_box(&welcome)).unwrap())
    });
}

/// The backup file: the passphrase stretching (Argon2id, format 1's parameters) that every
/// backup and every restore attempt pays once, and sealing / opening 10 MiB of contents.
fn backup(c: &mut Criterion) {
    use kiyeovo_core::backup::file;
    let mut g = c.benchmark_group("backup");
    g.sample_size(10);
    g.bench_function("argon2id_64mib_3_passes_4_lanes", |b| {
        b.iter(|| file::derive_key(black_box("otter lantern seventeen"), &[1; 16]).unwrap())
    });
    let contents = vec![7u8; 10 << 20];
    let key = [3u8; 32];
    g.bench_function("seal_10_mib", |b| {
        b.iter(|| file::seal_with_key(&key, &[1; 16], &[2; 24], black_box(&contents)).unwrap())
    });
    let sealed = file::seal_with_key(&key, &[1; 16], &[2; 24], &contents).unwrap();
    g.bench_function("open_10_mib", |b| {
        b.iter(|| {
            file::parse(black_box(&sealed))
                .unwrap()
                .open_with_key(&key)
                .unwrap()
        })
    });
    // A whole backup as "Back up now" writes it: a real encrypted database with one contact and
    // 5 000 messages of 200 characters, copied, sealed, opened again and written.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let me = Identity::new_with_phrase();
    let storage_key = [5u8; 32];
    let db = rt.block_on(async {
        use kiyeovo_core::contacts::{card::ContactCard, store};
        let db =
            kiyeovo_core::storage::Database::open(&dir.path().join("kiyeovo.db"), &storage_key)
                .await
                .unwrap();
        let them = Identity::generate();
        let card = ContactCard::new(&them, "Ben", vec![], 1);
        let peer = them.peer_id();
        store::upsert_card(db.pool(), &card, &peer, 1)
            .await
            .unwrap();
        let body = "x".repeat(200);
        let mut tx = db.pool().begin().await.unwrap();
        for seq in 1..=5_000u64 {
            let id = kiyeovo_core::pairwise::envelope::new_msg_id();
            store::insert_message(
                &mut tx,
                &storage_key,
                &peer,
                &id,
                seq % 2 == 0,
                seq,
                seq,
                &body,
                None,
                kiyeovo_core::api::MessageState::Received,
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        db
    });
    let out = dir.path().join("backups");
    let write = |now| {
        rt.block_on(kiyeovo_core::backup::write(
            &db,
            &me,
            &storage_key,
            "bench",
            &out,
            "otter lantern seventeen",
            now,
        ))
        .unwrap()
    };
    println!("a backup of 5 000 messages: {} bytes", write(0).bytes);
    g.bench_function("whole_backup_5000_messages", |b| b.iter(|| write(1)));
    g.finish();

    // Search keeps no index (bodies are sealed at rest): it opens every body of a conversation.
    // The same 5 000 messages, a word that is in none of them (the worst case: all are read).
    let mut s = c.benchmark_group("search");
    s.sample_size(10);
    let peer = rt.block_on(async {
        kiyeovo_core::contacts::store::contacts(db.pool())
            .await
            .unwrap()[0]
            .peer_id
    });
    // The floor: opening the 5 000 bodies as the chat does to show them.
    s.bench_function("floor_open_5000_messages", |b| {
        b.iter(|| {
            rt.block_on(kiyeovo_core::contacts::store::messages(
                db.pool(),
                &storage_key,
                &peer,
                &peer,
                "them",
            ))
            .unwrap()
        })
    });
    s.bench_function("open_and_look_in_5000_messages", |b| {
        b.iter(|| {
            rt.block_on(kiyeovo_core::contacts::store::search(
                db.pool(),
                &storage_key,
                &peer,
                kiyeovo_core::search::MAX_HITS,
                |body| kiyeovo_core::search::contains(body, "lighthouse"),
            ))
            .unwrap()
        })
    });
    s.finish();
}

criterion_group!(
    benches,
    group_envelopes,
    pairwise_envelopes,
    control,
    backup
);
criterion_main!(benches);
