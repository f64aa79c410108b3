//! Light in the tray after a window: the app starts itself again, hidden, once its window has
//! been closed for a while.
//!
//! A window leaves the process heavier than it started even after it is destroyed: WebKit's UI
//! side loaded Mesa's GL driver for its first web view (26 MiB of relocated, never-again-touched
//! data that nothing can page out), and WebKit's network process stays for the life of the web
//! context (README, "Footprint": 161 MiB in the tray after a window, 81 for a start at login that
//! never made one). No WebKitGTK call undoes either, so the process is replaced by a fresh one
//! that never made a web view: after [`AFTER_CLOSE`] with no window, the profile is closed the
//! way Quit closes it (the node stopped, the database closed) and the same binary is executed in
//! place with the same arguments plus `--hidden` — the same process id, so the session, the
//! autostart entry and whoever waits on the process see one app. What the window knew comes
//! along: whether the "still running in the tray" notice was given and whether a window was
//! asked for while the restart was under way (in the environment), and the open conversation,
//! so the next window opens on it (through a pipe: the environment a process started with stays
//! readable in `/proc` for its whole life).
//!
//! The price: the node is away for the restart (about a second; messages sent meanwhile come
//! from the offline buckets like any catch-up, and our own unsent ones are in the outbox the
//! channel publishes again at start) and notifications on screen are taken down with the old
//! process (the tray keeps the counts and the pending invitations). Linux only: WebView2 and
//! WKWebView keep a page's memory in processes that end with it.

use std::sync::Mutex;
use std::time::Duration;

use tauri::{AppHandle, Manager, Runtime};

use crate::state::ShellState;
use crate::window::OpenConversation;

/// How long the window stays closed before the restart: a window opened again within it is
/// shown by the running process at once, without a restart in between.
pub const AFTER_CLOSE: Duration = Duration::from_secs(10);

/// The read end of a pipe holding the conversation that was open.
const ENV_OPEN_FD: &str = "KIYEOVO_RESTART_OPEN_FD";
/// Set when the "still running in the tray" notice was already given.
const ENV_NOTICE_GIVEN: &str = "KIYEOVO_RESTART_NOTICE_GIVEN";
/// Set when a window was asked for during the restart: the new process shows it.
const ENV_SHOW: &str = "KIYEOVO_RESTART_SHOW";
/// Set in the restarted process (its log says so).
const ENV_RESTARTED: &str = "KIYEOVO_RESTARTED";

/// The longest conversation key read back ("contact:" + a peer id, "group:" + 32 hex digits).
const MAX_OPEN_KEY: u64 = 256;

/// Windows shown, and whether a restart or an exit is under way. One lock, so that a window
/// shown and a restart claimed cannot both happen.
#[derive(Default)]
pub struct Restarts(Mutex<Plan>);

#[derive(Default)]
struct Plan {
    windows: u64,
    restarting: bool,
    show_wanted: bool,
    exiting: bool,
}

impl Restarts {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A window is about to be shown: `false` while a restart is under way — the profile is
    /// closing, so the restarted process shows the window instead.
    pub fn window_shown(&self) -> bool {
        let mut plan = self.plan();
        if plan.restarting {
            plan.show_wanted = true;
            return false;
        }
        plan.windows += 1;
        true
    }

    /// Quit, a signal or a logout: no restart from now on.
    pub fn exiting(&self) {
        self.plan().exiting = true;
    }

    /// Takes the restart planned when `planned` windows had been shown, unless one was shown
    /// since or the app is exiting.
    fn claim(&self, planned: u64) -> bool {
        let mut plan = self.plan();
        if plan.windows != planned || plan.restarting || plan.exiting {
            return false;
        }
        plan.restarting = true;
        true
    }

    /// Just before the exec: `None` if the app is exiting after all, else whether a window
    /// was asked for meanwhile — with the lock, held until the exec, so that a window asked for
    /// later waits for it (and is gone with the old image) instead of being forgotten unseen.
    fn last_word(&self) -> Option<(std::sync::MutexGuard<'_, Plan>, bool)> {
        let plan = self.plan();
        let show = plan.show_wanted;
        (!plan.exiting).then_some((plan, show))
    }
}

/// What a restarted process takes over from the one it replaced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub restarted: bool,
    pub open: Option<String>,
    pub notice_given: bool,
    pub show_window: bool,
}

/// Reads what the previous process handed over and removes it from the environment (so
/// WebKit's processes do not inherit it). Called first thing in `main`, before any other thread
/// exists.
pub fn take_carried() -> Carried {
    let restarted = std::env::var_os(ENV_RESTARTED).is_some();
    let carried = Carried {
        restarted,
        // Only a process started by the restart below takes a descriptor over.
        open: std::env::var(ENV_OPEN_FD)
            .ok()
            .filter(|_| restarted)
            .and_then(|fd| fd.parse().ok())
            .and_then(platform::read_open_key),
        notice_given: std::env::var_os(ENV_NOTICE_GIVEN).is_some(),
        show_window: std::env::var_os(ENV_SHOW).is_some(),
    };
    for name in [ENV_OPEN_FD, ENV_NOTICE_GIVEN, ENV_SHOW, ENV_RESTARTED] {
        std::env::remove_var(name);
    }
    carried
}

/// The arguments for the restarted process: the same, with `--hidden` once.
pub fn restart_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    if !args.iter().any(|a| a == "--hidden") {
        args.push("--hidden".into());
    }
    args
}

/// Plans the restart, [`AFTER_CLOSE`] from now, unless a window is shown meanwhile.
pub fn schedule<R: Runtime>(handle: &AppHandle<R>) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let planned = handle.state::<Restarts>().plan().windows;
    let handle = handle.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(AFTER_CLOSE).await;
        // Only a running profile restarts: not one on its first-run screen or one that failed
        // (nothing of it would be the same after the restart), nor one still starting.
        if handle.get_webview_window(crate::window::MAIN).is_some()
            || handle.state::<ShellState>().app().is_none()
            || !handle.state::<Restarts>().claim(planned)
        {
            return;
        }
        restart(handle).await;
    });
}

async fn restart<R: Runtime>(handle: AppHandle<R>) {
    tracing::info!("window closed for a while: starting again hidden, to give its memory back");
    let state = handle.state::<ShellState>();
    let notice_given = state
        .hidden_notice_given
        .load(std::sync::atomic::Ordering::Relaxed);
    state.close().await;
    // The last steps on the main thread, where windows are shown and Quit is handled: neither
    // can come between the last look at them and the exec.
    let h = handle.clone();
    let ran = handle.run_on_main_thread(move || {
        let open = h.state::<OpenConversation>().get();
        let error = platform::exec(h.state::<Restarts>(), open, notice_given);
        let Some(error) = error else {
            return; // Quit came during the close: the exit goes on.
        };
        // Only reached when the exec failed; the profile is closed, so the app cannot go on.
        tracing::error!(%error, "cannot start again; quitting");
        tauri::async_runtime::block_on(async {
            let notice = kiyeovo_core::desktop::os::notice(
                "Kiyeovo stopped",
                "It could not start itself again after its window closed. Open Kiyeovo to go on.",
            );
            // Without a notification service the call could wait for D-Bus's own timeout.
            let _ = tokio::time::timeout(Duration::from_secs(2), notice).await;
        });
        h.exit(1);
    });
    if let Err(e) = ran {
        tracing::error!(error = %e, "cannot start again; quitting");
        handle.exit(1);
    }
}

#[cfg(target_os = "linux")]
pub use platform::{record_inherited_fds, wait_for_name_released};

#[cfg(target_os = "linux")]
mod platform {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, RawFd};
    use std::os::unix::process::CommandExt;
    use std::sync::OnceLock;

    use super::*;

    /// Descriptors the process was started with (a launcher's, e.g. the AppImage runtime's
    /// keep-alive pipe, whose closing would unmount the image we run from): left as they are.
    static INHERITED: OnceLock<Vec<RawFd>> = OnceLock::new();

    fn open_fds() -> Vec<RawFd> {
        std::fs::read_dir("/proc/self/fd")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect()
    }

    /// Notes the descriptors the process was started with; call at the start of `main`, after
    /// [`take_carried`]. Only those without close-on-exec: what this process opened itself (the
    /// directory listing `/proc/self/fd` while it is read) has the flag.
    pub fn record_inherited_fds() {
        let inherited = open_fds()
            .into_iter()
            // SAFETY: F_GETFD only reads the descriptor's flags; a closed one fails (-1).
            .filter(|fd| matches!(unsafe { libc::fcntl(*fd, libc::F_GETFD) }, f if f >= 0 && f & libc::FD_CLOEXEC == 0))
            .collect();
        let _ = INHERITED.set(inherited);
    }

    /// The restarted process must not ask for the single-instance name before the bus has
    /// seen the old connection go (it would find the name taken and call a process that is no
    /// more): at most two seconds. `dbus_id` is what main.rs gives the plugin, which owns
    /// `<dbus_id>.SingleInstance` (tauri-plugin-single-instance 2, Linux).
    pub fn wait_for_name_released(dbus_id: &str) {
        let name = format!("{dbus_id}.SingleInstance");
        let Ok(connection) = zbus::blocking::Connection::session() else {
            return;
        };
        let Ok(bus) = zbus::blocking::fdo::DBusProxy::new(&connection) else {
            return;
        };
        let Ok(name) = zbus::names::BusName::try_from(name.as_str()) else {
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while let Ok(true) = bus.name_has_owner(name.clone()) {
            if std::time::Instant::now() > deadline {
                tracing::warn!(%name, "the previous process still holds the single-instance name");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn read_open_key(fd: RawFd) -> Option<String> {
        // Only a pipe this process was handed at start: not stdio, open, a FIFO.
        if fd <= 2 {
            return None;
        }
        // SAFETY: fstat writes into the struct it is given; a descriptor that is not open
        // makes it fail.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut stat) } != 0
            || stat.st_mode & libc::S_IFMT != libc::S_IFIFO
        {
            return None;
        }
        // The writer wrote and closed before the exec: never wait for more.
        // SAFETY: F_GETFL/F_SETFL only read and set the descriptor's status flags.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) != 0 {
                return None;
            }
        }
        // SAFETY: the previous process opened `fd` as a pipe's read end for us (ENV_OPEN_FD),
        // it is open (fstat above) and nothing else in this process knows of it: the File takes
        // it over and closes it.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut key = String::new();
        file.take(MAX_OPEN_KEY).read_to_string(&mut key).ok()?;
        (!key.is_empty()).then_some(key)
    }

    /// A pipe holding `key`, its read end left open across the exec; the write end is closed.
    pub(super) fn carry(key: &str) -> Option<RawFd> {
        let mut fds = [0 as RawFd; 2];
        // Close-on-exec on both ends, so that nothing another thread starts meanwhile holds the
        // write end (the reader would wait for it); the read end's flag is cleared last
        // (close_on_exec).
        // SAFETY: pipe2 writes two new descriptors into the array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return None;
        }
        // SAFETY: both descriptors are new and ours; the File owns (and closes) the write end.
        let mut writer = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        // Far below the pipe's buffer: the write completes at once.
        if writer.write_all(key.as_bytes()).is_err() {
            // SAFETY: the read end is ours and not used elsewhere.
            unsafe { libc::close(fds[0]) };
            return None;
        }
        Some(fds[0])
    }

    /// Replaces this process by a new run of the same binary. Returns `None` if Quit came
    /// first (nothing done), else only on failure.
    pub fn exec(
        restarts: tauri::State<'_, Restarts>,
        open: Option<String>,
        notice_given: bool,
    ) -> Option<std::io::Error> {
        let mut vars = vec![(ENV_RESTARTED, "1".to_string())];
        if notice_given {
            vars.push((ENV_NOTICE_GIVEN, "1".into()));
        }
        let mut argv = std::env::args_os();
        let arg0 = argv.next().unwrap_or_else(|| "kiyeovo-desktop".into());
        let args = restart_args(argv.collect());
        end_children();
        let carried = open.as_deref().and_then(carry);
        if let Some(fd) = carried {
            vars.push((ENV_OPEN_FD, fd.to_string()));
        }
        close_on_exec(carried);
        // The last look, held to the exec: a window asked for from here on waits for the lock.
        let (_plan, show_window) = restarts.last_word()?;
        if show_window {
            vars.push((ENV_SHOW, "1".into()));
        }
        let run = |program: &std::path::Path| {
            std::process::Command::new(program)
                .arg0(&arg0)
                .args(&args)
                .envs(vars.iter().map(|(k, v)| (k, v)))
                .exec()
        };
        // The binary the process was started from; after an upgrade replaced it while it ran,
        // the kernel names it "<path> (deleted)" and the path holds the new version.
        if let Ok(exe) = std::env::current_exe() {
            let exe = match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
                Some(path) => std::path::PathBuf::from(path),
                None => exe,
            };
            let error = run(&exe);
            tracing::warn!(%error, exe = %exe.display(), "cannot start the binary again; trying the running image");
        }
        // Removed without a replacement: the kernel still has the image this process runs.
        Some(run(std::path::Path::new("/proc/self/exe")))
    }

    /// Ends and reaps this process's children — WebKit's network process, which outlives the
    /// last web view — so that none is left behind as a zombie the new image knows nothing of.
    fn end_children() {
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        let children: Vec<i32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| parent_of(*pid) == Some(me))
            .collect();
        for child in children {
            // SAFETY: kill and waitpid on a child of ours; one already reaped elsewhere (GLib's
            // child watch) makes waitpid fail with ECHILD, which ends the wait.
            unsafe {
                libc::kill(child, libc::SIGTERM);
                let deadline = std::time::Instant::now() + Duration::from_secs(2);
                loop {
                    if libc::waitpid(child, std::ptr::null_mut(), libc::WNOHANG) != 0 {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        libc::kill(child, libc::SIGKILL);
                        libc::waitpid(child, std::ptr::null_mut(), 0);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// The parent of `pid`, from `/proc/<pid>/stat` (the field after the command's `)`).
    fn parent_of(pid: i32) -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// Marks every descriptor this process opened close-on-exec, except `keep` and those it was
    /// started with: the X server connection, D-Bus and sockets that libraries opened without the
    /// flag must not outlive this image (an X connection kept open would keep the old tray icon).
    fn close_on_exec(keep: Option<RawFd>) {
        let inherited = INHERITED.get().map(Vec::as_slice).unwrap_or(&[]);
        if let Some(fd) = keep {
            // SAFETY: as below; this clears the flag on the pipe's read end we made.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                }
            }
        }
        for fd in open_fds() {
            if Some(fd) == keep || inherited.contains(&fd) {
                continue;
            }
            // SAFETY: F_GETFD/F_SETFD only read and set the descriptor's close-on-exec flag; a
            // descriptor closed since the directory was read makes them fail harmlessly.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    pub fn read_open_key(_fd: i32) -> Option<String> {
        None
    }

    pub fn exec(
        _restarts: tauri::State<'_, super::Restarts>,
        _open: Option<String>,
        _notice_given: bool,
    ) -> Option<std::io::Error> {
        Some(std::io::Error::other("restarting is only done on Linux"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restarted_process_starts_hidden_with_the_same_arguments() {
        let args = |v: &[&str]| {
            v.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        assert_eq!(
            restart_args(args(&["--profile", "ana", "--bootstrap", "/ip4/1.2.3.4"])),
            args(&[
                "--profile",
                "ana",
                "--bootstrap",
                "/ip4/1.2.3.4",
                "--hidden"
            ])
        );
        assert_eq!(
            restart_args(args(&["--hidden", "--profile", "ana"])),
            args(&["--hidden", "--profile", "ana"])
        );
    }

    /// The open conversation goes through a pipe and comes back whole, at most MAX_OPEN_KEY
    /// bytes of it; stdio is not read.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_open_conversation_crosses_in_a_pipe() {
        let key = "group:00112233445566778899aabbccddeeff";
        let fd = platform::carry(key).expect("a pipe");
        assert_eq!(platform::read_open_key(fd).as_deref(), Some(key));
        assert_eq!(platform::read_open_key(0), None);
        let long = "x".repeat(1000);
        let fd = platform::carry(&long).expect("a pipe");
        assert_eq!(
            platform::read_open_key(fd).map(|k| k.len()),
            Some(MAX_OPEN_KEY as usize)
        );
    }

    /// A window shown after the restart was planned calls it off; one asked for while it is
    /// under way is not made here but handed to the restarted process; Quit wins over both.
    #[test]
    fn windows_and_quit_decide_whether_the_restart_goes_ahead() {
        let r = Restarts::default();
        assert!(r.window_shown());
        let planned = r.plan().windows;
        assert!(r.window_shown());
        assert!(!r.claim(planned), "a window shown since calls it off");

        let planned = r.plan().windows;
        assert!(r.claim(planned));
        assert!(!r.claim(planned), "claimed once");
        assert_eq!(r.last_word().map(|(_, show)| show), Some(false));
        assert!(!r.window_shown(), "no window while the profile is closing");
        assert_eq!(
            r.last_word().map(|(_, show)| show),
            Some(true),
            "the restarted process shows it"
        );
        r.exiting();
        assert!(
            r.last_word().is_none(),
            "Quit during the restart ends the app"
        );

        let r = Restarts::default();
        r.exiting();
        assert!(!r.claim(0), "no restart once exiting");
    }
}
