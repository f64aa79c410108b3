//! Start at login, as an opt-in setting.
//!
//! On Linux this is an XDG autostart entry written here (the freedesktop spec: a `.desktop` file
//! in `$XDG_CONFIG_HOME/autostart`), because the `auto-launch` crate ignores `XDG_CONFIG_HOME`
//! and does not quote `Exec`. On Windows and macOS the `auto-launch` crate does it (registry
//! Run key, launch agent). Either way the app starts with `--hidden`, straight into the tray.

use std::path::{Path, PathBuf};

use crate::profile::DEFAULT_PROFILE;

#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("cannot find where to put the login item: {0}")]
    NoPlace(String),
    #[error("cannot change the login item: {0}")]
    Io(String),
}

/// The command line a login starts: the program, the profile if not the default, `--hidden`.
pub fn launch_args(profile: &str) -> Vec<String> {
    let mut args = Vec::new();
    if profile != DEFAULT_PROFILE {
        args.push("--profile".to_string());
        args.push(profile.to_string());
    }
    args.push("--hidden".to_string());
    args
}

/// The program to start: inside an AppImage the running binary lives in a temporary mount, so
/// the AppImage file itself (`$APPIMAGE`) is what must be started.
pub fn program() -> Result<PathBuf, AutostartError> {
    if let Some(appimage) = std::env::var_os("APPIMAGE") {
        return Ok(PathBuf::from(appimage));
    }
    std::env::current_exe().map_err(|e| AutostartError::NoPlace(e.to_string()))
}

/// Turns start-at-login on or off for `profile`.
pub fn set(enabled: bool, profile: &str) -> Result<(), AutostartError> {
    let program = program()?;
    platform::set(enabled, profile, &program)
}

/// Quotes one `Exec` argument as the desktop entry spec asks (double quotes; `"`, `` ` ``, `$`
/// and `\` escaped; `%` doubled since it starts field codes).
fn quote_exec_arg(arg: &str) -> String {
    let plain = arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-_.,:+=@".contains(c));
    if plain {
        return arg.to_string();
    }
    let mut out = String::from("\"");
    for c in arg.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The XDG autostart entry's file name for a profile.
pub fn xdg_entry_name(profile: &str) -> String {
    if profile == DEFAULT_PROFILE {
        "org.kiyeovo.desktop.desktop".to_string()
    } else {
        format!("org.kiyeovo.desktop-{profile}.desktop")
    }
}

/// The XDG autostart entry's text.
pub fn xdg_entry(profile: &str, program: &Path) -> String {
    let mut exec = vec![quote_exec_arg(&program.to_string_lossy())];
    exec.extend(launch_args(profile).iter().map(|a| quote_exec_arg(a)));
    let name = if profile == DEFAULT_PROFILE {
        "Kiyeovo".to_string()
    } else {
        format!("Kiyeovo ({profile})")
    };
    format!(
        "[Desktop Entry]\nType=Application\nName={name}\nComment=Private peer-to-peer group chats\nExec={}\nIcon=kiyeovo-desktop\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
        exec.join(" ")
    )
}

/// `$XDG_CONFIG_HOME/autostart`, else `~/.config/autostart`.
pub fn xdg_autostart_dir() -> Result<PathBuf, AutostartError> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("autostart"));
    }
    directories::BaseDirs::new()
        .map(|b| b.home_dir().join(".config").join("autostart"))
        .ok_or_else(|| AutostartError::NoPlace("no home folder".into()))
}

/// Writes or removes the entry in `dir`.
pub fn set_xdg(
    enabled: bool,
    profile: &str,
    program: &Path,
    dir: &Path,
) -> Result<(), AutostartError> {
    let path = dir.join(xdg_entry_name(profile));
    let io = |e: std::io::Error| AutostartError::Io(format!("{}: {e}", path.display()));
    if enabled {
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::write(&path, xdg_entry(profile, program)).map_err(io)
    } else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(not(any(target_os = "windows", target_os = "macos")))]
mod platform {
    use super::*;

    pub fn set(enabled: bool, profile: &str, program: &Path) -> Result<(), AutostartError> {
        set_xdg(enabled, profile, program, &xdg_autostart_dir()?)
    }
}

#[cfg(any(target_os = "windows", target_os = "macos"))]
mod platform {
    use super::*;

    pub fn set(enabled: bool, profile: &str, program: &Path) -> Result<(), AutostartError> {
        let name = if profile == DEFAULT_PROFILE {
            "Kiyeovo".to_string()
        } else {
            format!("Kiyeovo ({profile})")
        };
        let launcher = auto_launch::AutoLaunchBuilder::new()
            .set_app_name(&name)
            .set_app_path(&program.to_string_lossy())
            .set_args(&launch_args(profile))
            .build()
            .map_err(|e| AutostartError::Io(e.to_string()))?;
        let result = if enabled {
            launcher.enable()
        } else {
            launcher.disable()
        };
        result.map_err(|e| AutostartError::Io(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_starts_the_profile_hidden_with_a_quoted_path() {
        let text = xdg_entry("alice", Path::new("/opt/My Apps/kiyeovo-desktop"));
        assert!(text.starts_with("[Desktop Entry]\nType=Application\n"));
        assert!(text.contains("\nName=Kiyeovo (alice)\n"));
        assert!(text.contains("\nExec=\"/opt/My Apps/kiyeovo-desktop\" --profile alice --hidden\n"));
        let default = xdg_entry(DEFAULT_PROFILE, Path::new("/usr/bin/kiyeovo-desktop"));
        assert!(default.contains("\nExec=/usr/bin/kiyeovo-desktop --hidden\n"));
        assert_eq!(quote_exec_arg("a$b\"%"), "\"a\\$b\\\"%%\"");
    }

    #[test]
    fn turning_it_on_and_off_writes_and_removes_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let autostart = dir.path().join("autostart");
        let program = Path::new("/usr/bin/kiyeovo-desktop");
        set_xdg(true, "bob", program, &autostart).unwrap();
        let path = autostart.join("org.kiyeovo.desktop-bob.desktop");
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("--profile bob --hidden"));
        set_xdg(false, "bob", program, &autostart).unwrap();
        assert!(!path.exists());
        // Turning off what is already off is fine.
        set_xdg(false, "bob", program, &autostart).unwrap();
    }
}
