//! The contact card as a QR code, so it can be scanned from another screen or printed.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// An SVG image of `card` (upper-cased: the card is base32, so upper case fits QR's denser
/// alphanumeric mode, and cards are read case-insensitively).
pub fn card_svg(card: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(card.to_ascii_uppercase(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_card_fits_in_a_qr_code() {
        let identity = crate::identity::Identity::generate();
        let card = crate::contacts::card::ContactCard::new(
            &identity,
            "Ana",
            vec!["/ip4/192.168.1.20/tcp/4001/p2p/12D3KooWJrFPJRLSi8ugiCUa5vge24vY2RCAhmvcfQ67S3oV2hkZ".into()],
            1,
        )
        .to_text(&identity);
        let svg = super::card_svg(&card).expect("fits");
        // What a scanner reads back (upper case) is the same card.
        let other = crate::identity::Identity::generate().peer_id();
        let read =
            crate::contacts::card::ContactCard::from_text(&card.to_ascii_uppercase(), Some(&other));
        assert_eq!(read.unwrap().peer_id().unwrap(), identity.peer_id());
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
    }
}
