//! With no keyring service reachable, start-up fails with words that say what to install, and
//! creates no identity. (Its own test binary: it points D-Bus at nowhere for the whole process.)

use kiyeovo_core::api::ErrorCode;
use kiyeovo_core::error::StartupError;
use kiyeovo_core::keystore::KeyringError;
use kiyeovo_core::service::App;
use kiyeovo_tests::TestProfile;

#[tokio::test]
async fn no_keyring_service_gives_a_clear_error() {
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/kiyeovo-test-bus",
    );
    let profile = TestProfile::new("nokeyring");
    let err = match App::start(profile.config(&[])).await {
        Ok(_) => panic!("started without a keyring"),
        Err(e) => e,
    };
    assert!(
        matches!(err, StartupError::Keyring(KeyringError::Unavailable(_))),
        "{err}"
    );
    let ui = err.to_ui();
    assert_eq!(ui.code, ErrorCode::KeyringUnavailable);
    assert!(ui.hint.contains("Secret Service"), "{}", ui.hint);
}
