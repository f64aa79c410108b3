//! Desktop notifications against a real notification server: dunst on an Xvfb display, on the
//! private D-Bus session bus `scripts/with-keyring.sh` starts (`dbus-run-session`).
//!
//! dunst reports every notification it displays by running a script (configured below) that
//! writes one line into a FIFO the test reads, so the test waits on notifications as events.
//! Its context menu is an external "dmenu" command: ours picks the Accept entry, which makes
//! dunst send the freedesktop `ActionInvoked` signal exactly as a click on the button would.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiyeovo_core::api::{GroupStatus, MemberStatus};
use kiyeovo_core::conversations::ConversationId;
use kiyeovo_core::pairwise::channel::ChannelEvent;
use kiyeovo_core::service::App;
use kiyeovo_tests::{
    befriend, bootstrap_node, group_config, start_online, wait_group, TestProfile, WAIT,
};

/// One notification as dunst displayed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    app: String,
    summary: String,
    body: String,
}

/// Xvfb + dunst, stopped on drop.
struct NotificationServer {
    xvfb: Child,
    dunst: Child,
    shown: tokio::sync::mpsc::UnboundedReceiver<Shown>,
    _dir: tempfile::TempDir,
}

impl Drop for NotificationServer {
    fn drop(&mut self) {
        let _ = self.dunst.kill();
        let _ = self.dunst.wait();
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl NotificationServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Xvfb picks a free display and writes its number to the given fd (our pipe).
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (apt install xvfb)");
        let mut line = String::new();
        BufReader::new(xvfb.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let display = format!(":{}", line.trim());

        let fifo = dir.path().join("shown.fifo");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let report = dir.path().join("report.sh");
        write_script(
            &report,
            &format!(
                "#!/bin/sh\n# dunst passes: appname summary body icon urgency\nprintf '%s\\037%s\\037%s\\036' \"$1\" \"$2\" \"$3\" > '{}'\n",
                fifo.display()
            ),
        );
        let pick = dir.path().join("pick-accept.sh");
        write_script(
            &pick,
            "#!/bin/sh\n# dunst's context menu: choose the Accept action.\ngrep -m1 '^#Accept '\n",
        );
        let config = dir.path().join("dunstrc");
        std::fs::write(
            &config,
            format!(
                // No timeout: a notification stays until closed, so the test sees ours withdraw
                // it (a timed-out one would look withdrawn).
                "[global]\n    dmenu = \"{}\"\n    notification_limit = 0\n\n[urgency_low]\n    timeout = 0\n\n[urgency_normal]\n    timeout = 0\n\n[urgency_critical]\n    timeout = 0\n\n[report]\n    summary = \"*\"\n    script = \"{}\"\n",
                pick.display(),
                report.display()
            ),
        )
        .unwrap();

        let (tx, shown) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || loop {
            // Each script run opens, writes and closes the FIFO: one open per notification.
            let Ok(mut f) = std::fs::File::open(&fifo) else {
                return;
            };
            let mut text = String::new();
            if f.read_to_string(&mut text).is_err() {
                return;
            }
            for record in text.split('\u{1e}').filter(|r| !r.is_empty()) {
                let mut parts = record.split('\u{1f}');
                let mut next = || parts.next().unwrap_or_default().to_string();
                let shown = Shown {
                    app: next(),
                    summary: next(),
                    body: next(),
                };
                if tx.send(shown).is_err() {
                    return;
                }
            }
        });

        let dunst = Command::new("dunst")
            .args(["-config"])
            .arg(&config)
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dunst (apt install dunst)");
        let mut server = NotificationServer {
            xvfb,
            dunst,
            shown,
            _dir: dir,
        };
        server.wait_until_serving();
        server
    }

    /// dunst has no readiness signal: ask the bus who serves notifications until it is dunst
    /// (polled, with a deadline), and make sure it is *our* dunst.
    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            // NameHasOwner, unlike a call to the service, never D-Bus-activates another one.
            let owned = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ])
                .output()
                .expect("dbus-send");
            if String::from_utf8_lossy(&owned.stdout).contains("boolean true") {
                let info = notify_rust::get_server_information().expect("server information");
                assert_eq!(
                    info.name, "dunst",
                    "another notification server owns the bus"
                );
                break;
            }
            if let Ok(Some(status)) = self.dunst.try_wait() {
                panic!("dunst exited: {status}");
            }
            assert!(Instant::now() < deadline, "dunst did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(self.dunst.try_wait().unwrap().is_none(), "dunst exited");
    }

    /// The next notification displayed, or a panic after `WAIT`.
    async fn next(&mut self, what: &str) -> Shown {
        match tokio::time::timeout(WAIT, self.shown.recv()).await {
            Ok(Some(shown)) => shown,
            _ => panic!("no notification for {what}"),
        }
    }

    /// Waits until dunst shows exactly `n` notifications (polled, with a deadline: dunst
    /// reports nothing when one is closed).
    async fn wait_displayed(&self, n: usize, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.output("count", &["displayed"]).await == n.to_string() {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: not {n} on screen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses Accept on the notification on screen, through dunst's context menu.
    async fn press_accept(&self) {
        self.run("context", &[]).await;
    }

    /// What `dunstctl <command> <args>` prints.
    async fn output(&self, command: &str, args: &[&str]) -> String {
        let out = tokio::process::Command::new("dunstctl")
            .arg(command)
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "dunstctl {command}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `dunstctl <command> <args>`: what dunst's keyboard shortcuts and mouse clicks call.
    async fn run(&self, command: &str, args: &[&str]) {
        self.output(command, args).await;
    }
}

/// One notification server per D-Bus session: the tests that start one take turns.
static ONE_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start_app(profile: &TestProfile, boot: &str, notifications: bool) -> App {
    let mut c = profile.config(&[boot.to_string()]);
    c.group = group_config();
    c.notifications = notifications;
    start_online(c).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_shows_one_notification_whose_accept_button_accepts() {
    let _turn = ONE_SERVER.lock().await;
    let mut server = tokio::task::spawn_blocking(NotificationServer::start)
        .await
        .unwrap();
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb) = (TestProfile::new("n-ana"), TestProfile::new("n-ben"));
    // Ana's app has notifications off: every notification seen is Ben's.
    let ana = start_app(&pa, &addr, false).await;
    let ben = start_app(&pb, &addr, true).await;
    // Ben knows Ana by the name on her card (his own name for her): the notification uses it.
    ana.set_display_name("Ana").await.unwrap();
    befriend(&ana, &ben).await;

    let id = ana
        .groups()
        .create("Book club", &[ben.peer_id()], "Ana")
        .await
        .unwrap()
        .group_id;
    let invite = server.next("the invitation").await;
    assert_eq!(invite.app, "Kiyeovo");
    assert_eq!(invite.summary, "Invitation to “Book club”");
    assert!(
        invite.body.starts_with("Ana invited you to a group. ")
            && invite.body.ends_with(" left to answer.")
            && invite.body.contains(" h "),
        "{invite:?}"
    );
    let view = ben.groups().get(&id).await.unwrap();
    assert_eq!(view.status, GroupStatus::Invited);

    // Accept on the notification: Ben's app accepts, and Ana hears it.
    server.press_accept().await;
    wait_group(&ben, &id, "Ben accepted", |v| {
        v.status == GroupStatus::Accepted
    })
    .await;
    let ben_id = ben.peer_id().to_string();
    wait_group(&ana, &id, "Ana sees Ben's acceptance", |v| {
        v.members
            .iter()
            .any(|m| m.peer_id == ben_id && m.status == MemberStatus::Accepted)
    })
    .await;

    // Establishment is announced, and nothing was shown in between: the invitation gave
    // exactly one notification.
    ana.groups().establish(&id).await.unwrap();
    let ready = server.next("the establishment").await;
    assert_eq!(ready.summary, "“Book club” is ready", "{ready:?}");
    assert_eq!(
        ready.body,
        "Ana established the group with 2 members. You can write now."
    );

    // A message while Ben's window is not focused: a notification without the text.
    wait_group(&ben, &id, "active", |v| v.status == GroupStatus::Active).await;
    ana.chat().send(&id, "secret plans").await.unwrap();
    let message = server.next("the message").await;
    assert_eq!(
        (message.summary.as_str(), message.body.as_str()),
        ("Book club", "1 new message")
    );
    assert!(server.shown.try_recv().is_err(), "no further notification");

    // Clicking a notification (its default action) asks the window to show that group.
    let mut open = ben.open_requests();
    server.run("action", &["0"]).await;
    let asked = kiyeovo_tests::wait_event(&mut open, "the open request", |_| true).await;
    assert_eq!(asked, ConversationId::group(&id));
    // Closing the app takes its notifications off the screen: no button outlives the app.
    assert_ne!(server.output("count", &["displayed"]).await, "0");
    ana.shutdown().await;
    ben.shutdown().await;
    assert_eq!(server.output("count", &["displayed"]).await, "0");
    drop(boot);
}

/// Our turn at the notification server, a bootstrap node and three apps named Ana, Ben and
/// Cai, of which only Ben's shows notifications (so every one seen is his).
struct Three {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    server: NotificationServer,
    boot: kiyeovo_node::Headless,
    ana: App,
    ben: App,
    cai: App,
    _profiles: [TestProfile; 3],
}

async fn three(prefix: &str) -> Three {
    let turn = ONE_SERVER.lock().await;
    let server = tokio::task::spawn_blocking(NotificationServer::start)
        .await
        .unwrap();
    let (boot, addr) = bootstrap_node().await;
    let profiles = ["ana", "ben", "cai"].map(|n| TestProfile::new(&format!("{prefix}-{n}")));
    let ana = start_app(&profiles[0], &addr, false).await;
    let cai = start_app(&profiles[2], &addr, false).await;
    let ben = start_app(&profiles[1], &addr, true).await;
    ana.set_display_name("Ana").await.unwrap();
    cai.set_display_name("Cai").await.unwrap();
    Three {
        _turn: turn,
        server,
        boot,
        ana,
        ben,
        cai,
        _profiles: profiles,
    }
}

/// An invitation into a running group (Add members) is announced like a new group's, and its
/// Accept button accepts; the admin's app then adds Ben.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_invitation_shows_a_notification_whose_accept_button_accepts() {
    let Three {
        mut server,
        boot,
        ana,
        ben,
        cai,
        _turn,
        _profiles,
    } = three("na").await;
    befriend(&ana, &cai).await;
    befriend(&ana, &ben).await;
    let id = ana
        .groups()
        .create("Book club", &[cai.peer_id()], "Ana")
        .await
        .unwrap()
        .group_id;
    wait_group(&cai, &id, "the invitation", |v| v.can_respond).await;
    cai.groups().respond(&id, true).await.unwrap();
    wait_group(&ana, &id, "Cai accepted", |v| v.can_establish).await;
    ana.groups().establish(&id).await.unwrap();
    wait_group(&cai, &id, "active", |v| v.status == GroupStatus::Active).await;

    ana.groups()
        .add_members(&id, &[ben.peer_id()], "Ana")
        .await
        .unwrap();
    let invite = server.next("the add invitation").await;
    assert_eq!(invite.summary, "Invitation to “Book club”", "{invite:?}");
    assert!(invite.body.starts_with("Ana invited you"), "{invite:?}");
    assert!(ben.groups().get(&id).await.unwrap().joining);
    server.press_accept().await;
    wait_group(&ben, &id, "Ben added", |v| {
        v.status == GroupStatus::Active && v.epoch == 2
    })
    .await;
    ana.shutdown().await;
    cai.shutdown().await;
    ben.shutdown().await;
    drop(boot);
}

/// A 1:1 message while the window is not focused: one notification under the contact's name,
/// counted up in place as more arrive, taken away once the conversation is read; clicking it
/// asks the window for that conversation; a muted contact raises none (the next one shown is
/// another contact's); blocking a contact takes theirs away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_notifies_until_read_and_a_muted_contact_stays_silent() {
    let Three {
        mut server,
        boot,
        ana,
        ben,
        cai,
        _turn,
        _profiles,
    } = three("nd").await;
    befriend(&ana, &ben).await;
    befriend(&cai, &ben).await;
    let (ana_id, ben_id) = (ana.peer_id(), ben.peer_id());
    let ana_chat = ConversationId::contact(&ana_id);

    // Under Ben's name for her, without the text; a second message updates it in place.
    ana.channel()
        .send_chat(&ben_id, "secret plans")
        .await
        .unwrap();
    let first = server.next("the first message").await;
    assert_eq!(
        (
            first.app.as_str(),
            first.summary.as_str(),
            first.body.as_str()
        ),
        ("Kiyeovo", "Ana", "1 new message")
    );
    ana.channel()
        .send_chat(&ben_id, "more plans")
        .await
        .unwrap();
    let second = server.next("the second message").await;
    assert_eq!(
        (second.summary.as_str(), second.body.as_str()),
        ("Ana", "2 new messages")
    );
    server
        .wait_displayed(1, "one notification per conversation")
        .await;

    // Read in the window: the notification goes.
    ben.channel().mark_read(&ana_id).await.unwrap();
    server.wait_displayed(0, "withdrawn once read").await;

    // The count starts again; a click asks the window for Ana's conversation.
    ana.channel()
        .send_chat(&ben_id, "are you there?")
        .await
        .unwrap();
    let third = server.next("the third message").await;
    assert_eq!(third.body, "1 new message");
    let mut open = ben.open_requests();
    server.run("action", &["0"]).await;
    let asked = kiyeovo_tests::wait_event(&mut open, "the open request", |_| true).await;
    assert_eq!(asked, ana_chat);

    // Muted: Ana's message arrives (unread 2) and nothing is shown — the next notification is
    // Cai's, who wrote after her (the notifier takes 1:1 events in order: had hers been shown,
    // it would come first). Unmuted, her next one is announced as her third unread.
    assert!(
        ben.set_contact_muted(&libp2p::PeerId::random(), true)
            .await
            .is_err(),
        "only a contact can be muted"
    );
    let settings = ben.set_contact_muted(&ana_id, true).await.unwrap();
    assert_eq!(settings.muted_contacts, [ana_id.to_string()]);
    let mut heard = ben.channel().subscribe();
    ana.channel().send_chat(&ben_id, "quietly").await.unwrap();
    kiyeovo_tests::wait_event(
        &mut heard,
        "the muted message",
        |e| matches!(e, ChannelEvent::MessageReceived { peer, .. } if *peer == ana_id),
    )
    .await;
    cai.channel().send_chat(&ben_id, "hi Ben").await.unwrap();
    let from_cai = server.next("Cai's message").await;
    assert_eq!(
        (from_cai.summary.as_str(), from_cai.body.as_str()),
        ("Cai", "1 new message")
    );
    ben.set_contact_muted(&ana_id, false).await.unwrap();
    ana.channel().send_chat(&ben_id, "loudly").await.unwrap();
    let fourth = server.next("the message after unmuting").await;
    assert_eq!(
        (fourth.summary.as_str(), fourth.body.as_str()),
        ("Ana", "3 new messages")
    );
    assert!(server.shown.try_recv().is_err(), "no further notification");
    // Cai's is still up (unread); blocking Ana takes hers away, not his.
    server.wait_displayed(2, "Ana's and Cai's").await;
    ben.channel().set_blocked(&ana_id, true).await.unwrap();
    server
        .wait_displayed(1, "Ana's withdrawn once she is blocked")
        .await;

    ana.shutdown().await;
    cai.shutdown().await;
    ben.shutdown().await;
    drop(boot);
}
