//! SMS text: GSM-7 or UCS-2, and how many segments a text takes.
//!
//! A gateway bills per segment and the handset shows one message only when every segment
//! arrives, so notices keep within a segment budget. The rules follow GSM 03.38 (3GPP TS
//! 23.038) for the alphabet and 3GPP TS 23.040 for concatenation:
//!
//! - A text made only of characters of the GSM 7-bit default alphabet (basic table plus the
//!   extension table) is sent as GSM-7. Every basic character takes one septet; every
//!   extension character (`^ { } \ [ ~ ] | €` and form feed) takes two, an escape then the
//!   character.
//! - Any other character makes the whole text UCS-2, counted in UTF-16 code units: one for
//!   a character of the Basic Multilingual Plane, two (a surrogate pair) above it.
//! - One segment holds 160 septets or 70 UTF-16 units. A longer text is split into parts of
//!   at most 153 septets or 67 units each (the rest of each part carries the concatenation
//!   header). A part never ends between an escape and its character, nor between the two
//!   halves of a surrogate pair, so a part may hold one unit fewer than the maximum.
//! - The empty text takes 0 segments: there is nothing to send.

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The GSM 7-bit default alphabet with its extension table.
    Gsm7,
    /// UTF-16 (strictly UCS-2 in the standard; handsets accept surrogate pairs).
    Ucs2,
}

/// The size of a text as an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets for GSM-7 (an extension character counts 2), UTF-16 code units for UCS-2.
    pub units: u32,
    /// Parts the text is split into; 0 for the empty text.
    pub segments: u32,
}

/// Septets in a single-part GSM-7 message.
pub const GSM7_SINGLE_MAX: u32 = 160;
/// Septets in each part of a concatenated GSM-7 message.
pub const GSM7_PART_MAX: u32 = 153;
/// UTF-16 units in a single-part UCS-2 message.
pub const UCS2_SINGLE_MAX: u32 = 70;
/// UTF-16 units in each part of a concatenated UCS-2 message.
pub const UCS2_PART_MAX: u32 = 67;

/// The GSM 03.38 basic table, in code order (0x00..=0x7F), with the escape (0x1B) left out:
/// it is not a character a text can contain.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The characters of the extension table, each sent as escape + character.
const EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// How many septets `c` takes in GSM-7, or `None` when it has no GSM-7 encoding.
pub fn gsm7_septets(c: char) -> Option<u32> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding, size and number of segments of `text`; see the module docs for the rules.
pub fn segments(text: &str) -> Segments {
    match text.chars().map(gsm7_septets).collect::<Option<Vec<u32>>>() {
        Some(widths) => count(Encoding::Gsm7, &widths, GSM7_SINGLE_MAX, GSM7_PART_MAX),
        None => {
            let widths: Vec<u32> = text.chars().map(|c| c.len_utf16() as u32).collect();
            count(Encoding::Ucs2, &widths, UCS2_SINGLE_MAX, UCS2_PART_MAX)
        }
    }
}

/// Packs characters of the given widths into parts, never splitting one character.
fn count(encoding: Encoding, widths: &[u32], single_max: u32, part_max: u32) -> Segments {
    let units = widths.iter().sum();
    let segments = if units == 0 {
        0
    } else if units <= single_max {
        1
    } else {
        parts(widths, part_max)
    };
    Segments { encoding, units, segments }
}

/// Greedy packing is optimal here: every width (1 or 2) fits in an empty part.
fn parts(widths: &[u32], part_max: u32) -> u32 {
    let (mut parts, mut used) = (1, 0);
    for &width in widths {
        if used + width > part_max {
            parts += 1;
            used = 0;
        }
        used += width;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(text: &str, encoding: Encoding, units: u32, segments_expected: u32) {
        let expected = Segments { encoding, units, segments: segments_expected };
        assert_eq!(segments(text), expected, "{text:?}");
    }

    #[test]
    fn known_examples() {
        use Encoding::*;
        check("", Gsm7, 0, 0);
        check("Service restored.", Gsm7, 17, 1);
        check("Crédit de 12,50 € appliqué", Gsm7, 27, 1); // é, à in basic; € is 2 septets
        check(&"a".repeat(160), Gsm7, 160, 1);
        check(&"a".repeat(161), Gsm7, 161, 2);
        check(&"a".repeat(306), Gsm7, 306, 2);
        check(&"a".repeat(307), Gsm7, 307, 3);
        check(&"€".repeat(80), Gsm7, 160, 1);
        check(&"€".repeat(81), Gsm7, 162, 2);
        check("Zoë", Ucs2, 3, 1); // ë is not in GSM-7 (ä ö ü ñ are)
        check("日本", Ucs2, 2, 1);
        check(&"é".repeat(70), Gsm7, 70, 1);
        check(&"ą".repeat(70), Ucs2, 70, 1);
        check(&"ą".repeat(71), Ucs2, 71, 2);
        check(&"ą".repeat(134), Ucs2, 134, 2);
        check(&"ą".repeat(135), Ucs2, 135, 3);
        check("😀", Ucs2, 2, 1);
        check(&"😀".repeat(35), Ucs2, 70, 1);
    }

    #[test]
    fn every_basic_and_extension_character_is_gsm7() {
        assert_eq!(BASIC.chars().count(), 127);
        for c in BASIC.chars() {
            assert_eq!(gsm7_septets(c), Some(1), "{c:?}");
        }
        for c in EXTENSION.chars() {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
        }
        for c in ['`', 'ë', 'Ê', 'ç', '\t', '\u{1B}', '日', '😀'] {
            assert_eq!(gsm7_septets(c), None, "{c:?}");
        }
    }

    #[test]
    fn an_escape_pair_is_not_split_across_parts() {
        // 152 septets, then "€" (2): the pair cannot share part 1, so part 1 holds 152.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        // Unsplit it would be 306 septets in 2 parts; kept whole it takes 3.
        check(&text, Encoding::Gsm7, 306, 3);
        let text = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        check(&text, Encoding::Gsm7, 306, 2);
    }

    #[test]
    fn a_surrogate_pair_is_not_split_across_parts() {
        let text = format!("{}😀{}", "ą".repeat(66), "ą".repeat(66));
        check(&text, Encoding::Ucs2, 134, 3);
        let text = format!("{}😀{}", "ą".repeat(65), "ą".repeat(67));
        check(&text, Encoding::Ucs2, 134, 2);
    }

    /// Texts mixing basic, extension, non-GSM BMP and astral characters.
    fn sms_text() -> impl Strategy<Value = String> {
        let alphabet = prop::sample::select(vec!['a', 'Z', ' ', '\n', 'é', '€', '{', 'ą', 'ë', '日', '😀']);
        prop::collection::vec(alphabet, 0..400).prop_map(|chars| chars.into_iter().collect())
    }

    fn gsm_text() -> impl Strategy<Value = String> {
        let alphabet = prop::sample::select(BASIC.chars().chain(EXTENSION.chars()).collect::<Vec<_>>());
        prop::collection::vec(alphabet, 0..400).prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn appending_never_reduces_segments(a in sms_text(), b in sms_text()) {
            let joined = format!("{a}{b}");
            prop_assert!(segments(&a).segments <= segments(&joined).segments);
        }

        #[test]
        fn any_non_gsm_character_makes_the_text_ucs2(a in sms_text(), b in sms_text()) {
            let text = format!("{a}ë{b}");
            let counted = segments(&text);
            prop_assert_eq!(counted.encoding, Encoding::Ucs2);
            prop_assert_eq!(counted.units as usize, text.encode_utf16().count());
        }

        #[test]
        fn gsm_only_text_is_gsm7_and_counts_escapes(text in gsm_text()) {
            let counted = segments(&text);
            let escapes = text.chars().filter(|c| EXTENSION.contains(*c)).count();
            prop_assert_eq!(counted.encoding, Encoding::Gsm7);
            prop_assert_eq!(counted.units as usize, text.chars().count() + escapes);
        }

        #[test]
        fn segments_lie_between_the_ideal_and_one_unit_lost_per_part(text in sms_text()) {
            let counted = segments(&text);
            let (single, part) = match counted.encoding {
                Encoding::Gsm7 => (GSM7_SINGLE_MAX, GSM7_PART_MAX),
                Encoding::Ucs2 => (UCS2_SINGLE_MAX, UCS2_PART_MAX),
            };
            if counted.units <= single {
                prop_assert_eq!(counted.segments, u32::from(counted.units > 0));
            } else {
                prop_assert!(counted.segments >= counted.units.div_ceil(part));
                prop_assert!(counted.segments <= counted.units.div_ceil(part - 1));
            }
        }
    }
}
