//! SMS text: GSM-7, GSM-7 with a national language single shift table, or UCS-2, and how
//! many segments a text takes.
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
//!
//! That is [`segments`], what any gateway does. A gateway that also supports the national
//! language single shift tables of 3GPP TS 23.038 Annex A.2 (see [`Language`]) can keep
//! accented text in GSM-7, which [`segments_with`] counts:
//!
//! - A text that fits the default alphabet is counted as above: it needs no extra header.
//! - Otherwise the message may name one single shift table in its user data header (the
//!   information element 0x24 of TS 23.040 §9.2.3.24.15). The escape then selects that table
//!   instead of the default extension table; the default basic table stays the locking
//!   table. A character of the basic table takes one septet, one of the shift table two (an
//!   escape then its code). Every table repeats the default extension characters, so only
//!   the accented letters are new.
//! - The header costs septets: [`GSM7_SHIFT_SINGLE_MAX`] (155) in a single part,
//!   [`GSM7_SHIFT_PART_MAX`] (149) in each part of a concatenated message. Parts split as
//!   above, never between an escape and its character.
//! - A text no allowed table covers whole (one table per message: a text that needs two is
//!   not covered) is UCS-2.

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The GSM 7-bit default alphabet with its extension table.
    Gsm7,
    /// The GSM 7-bit default alphabet as the locking table, with the national language
    /// single shift table of the language in place of the extension table; every part
    /// carries the single shift information element in its header.
    Gsm7Shift(Language),
    /// UTF-16 (strictly UCS-2 in the standard; handsets accept surrogate pairs).
    Ucs2,
}

/// The size of a text as an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets for GSM-7 (an extension or shift table character counts 2; the header is
    /// not counted), UTF-16 code units for UCS-2.
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

/// Octets of the user data header of a single-part message with a single shift table:
/// the header length UDHL (1) and the national language single shift information element,
/// IEI 0x24 (1), its length IEDL (1) and the language identifier (1).
pub const SHIFT_HEADER_OCTETS: u32 = 1 + 3;
/// Octets of the user data header of each part of a concatenated message with a single
/// shift table: [`SHIFT_HEADER_OCTETS`] plus the concatenation information element, IEI
/// 0x00 (1), IEDL (1), reference number (1), number of parts (1), sequence number (1).
pub const SHIFT_CONCAT_HEADER_OCTETS: u32 = SHIFT_HEADER_OCTETS + 5;
/// Septets in a single-part GSM-7 message with a single shift table: 160 - ceil(4 × 8 / 7)
/// = 160 - 5 = 155. The 32 header bits are padded with fill bits to a septet boundary.
pub const GSM7_SHIFT_SINGLE_MAX: u32 = septets_after_header(SHIFT_HEADER_OCTETS);
/// Septets in each part of a concatenated GSM-7 message with a single shift table:
/// 160 - ceil(9 × 8 / 7) = 160 - 11 = 149.
pub const GSM7_SHIFT_PART_MAX: u32 = septets_after_header(SHIFT_CONCAT_HEADER_OCTETS);

/// The septets left for text once a user data header of `octets` octets (including UDHL)
/// is in the 140-octet user data: the header is rounded up to whole septets, as the fill
/// bits after it require. The concatenation-only header (6 octets, 48 bits, 7 septets)
/// gives [`GSM7_PART_MAX`], 153.
const fn septets_after_header(octets: u32) -> u32 {
    GSM7_SINGLE_MAX - (octets * 8).div_ceil(7)
}

/// The GSM 03.38 basic table, in code order (0x00..=0x7F), with the escape (0x1B) left out:
/// it is not a character a text can contain.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The characters of the extension table, each sent as escape + character.
const EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// A national language with a single shift table in 3GPP TS 23.038 Annex A.2, which a
/// gateway may support (see [`segments_with`]). Named in settings in lower case
/// (`spanish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Language identifier 1, table A.2.1.
    Turkish,
    /// Language identifier 2, table A.2.2.
    Spanish,
    /// Language identifier 3, table A.2.3.
    Portuguese,
}

impl Language {
    /// Every language with a table here, in identifier order.
    pub const ALL: [Language; 3] = [Language::Turkish, Language::Spanish, Language::Portuguese];

    /// The national language identifier of 3GPP TS 23.038 §6.2.1.2.4, sent in the single
    /// shift information element.
    pub const fn id(self) -> u8 {
        match self {
            Language::Turkish => 1,
            Language::Spanish => 2,
            Language::Portuguese => 3,
        }
    }

    /// The language of an identifier, if it has a table here.
    pub fn from_id(id: u8) -> Option<Language> {
        Language::ALL.into_iter().find(|language| language.id() == id)
    }

    /// The single shift table: (code, character) in code order. Each character is sent as
    /// the escape (0x1B) then its code.
    pub fn single_shift_table(self) -> &'static [(u8, char)] {
        match self {
            Language::Turkish => TURKISH_SHIFT,
            Language::Spanish => SPANISH_SHIFT,
            Language::Portuguese => PORTUGUESE_SHIFT,
        }
    }
}

// The single shift tables of 3GPP TS 23.038 Annex A.2, code order. Every table repeats the
// default extension table (6.2.1.1) at the same codes: form feed 0x0A, ^ 0x14, { 0x28,
// } 0x29, \ 0x2F, [ 0x3C, ~ 0x3D, ] 0x3E, | 0x40, € 0x65. Left out, as in the default
// extension table: 0x0D (CR2, a control) and 0x1B (SS2, reserved for a further table); the
// codes not listed are empty in the standard (a receiver shows them as a space). Every
// entry was checked against two independent transcriptions of the standard; none was left
// out for doubt.

/// A.2.1 Turkish National Language Single Shift Table.
const TURKISH_SHIFT: &[(u8, char)] = &[
    (0x0A, '\u{000C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x47, 'Ğ'),
    (0x49, 'İ'),
    (0x53, 'Ş'),
    (0x63, 'ç'),
    (0x65, '€'),
    (0x67, 'ğ'),
    (0x69, 'ı'),
    (0x73, 'ş'),
];

/// A.2.2 Spanish National Language Single Shift Table.
const SPANISH_SHIFT: &[(u8, char)] = &[
    (0x09, 'ç'),
    (0x0A, '\u{000C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x41, 'Á'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x61, 'á'),
    (0x65, '€'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
];

/// A.2.3 Portuguese National Language Single Shift Table. Its Greek capitals are also in
/// the basic table, which sends them in one septet. It has no `à`: the basic table does.
const PORTUGUESE_SHIFT: &[(u8, char)] = &[
    (0x05, 'ê'),
    (0x09, 'ç'),
    (0x0A, '\u{000C}'),
    (0x0B, 'Ô'),
    (0x0C, 'ô'),
    (0x0E, 'Á'),
    (0x0F, 'á'),
    (0x12, 'Φ'),
    (0x13, 'Γ'),
    (0x14, '^'),
    (0x15, 'Ω'),
    (0x16, 'Π'),
    (0x17, 'Ψ'),
    (0x18, 'Σ'),
    (0x19, 'Θ'),
    (0x1F, 'Ê'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x41, 'À'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x5B, 'Ã'),
    (0x5C, 'Õ'),
    (0x61, 'Â'),
    (0x65, '€'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
    (0x7B, 'ã'),
    (0x7C, 'õ'),
    (0x7F, 'â'),
];

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

/// How many septets `c` takes in GSM-7 with the single shift table of `language` (one from
/// the basic table, two from the shift table), or `None` when neither has it.
pub fn gsm7_shift_septets(c: char, language: Language) -> Option<u32> {
    if BASIC.contains(c) {
        Some(1)
    } else if language.single_shift_table().iter().any(|&(_, t)| t == c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding, size and number of segments of `text` for a gateway without national
/// language tables; see the module docs for the rules. Same as `segments_with(text, &[])`.
pub fn segments(text: &str) -> Segments {
    match text.chars().map(gsm7_septets).collect::<Option<Vec<u32>>>() {
        Some(widths) => count(Encoding::Gsm7, &widths, GSM7_SINGLE_MAX, GSM7_PART_MAX),
        None => {
            let widths: Vec<u32> = text.chars().map(|c| c.len_utf16() as u32).collect();
            count(Encoding::Ucs2, &widths, UCS2_SINGLE_MAX, UCS2_PART_MAX)
        }
    }
}

/// The encoding, size and number of segments of `text` for a gateway that supports the
/// single shift tables of `shifts`: plain GSM-7 if the default alphabet covers the text,
/// else GSM-7 with the first language of `shifts` whose table covers it, else UCS-2.
///
/// Taking the first covering language is as cheap as any: every covering table gives each
/// character the same width (1 from the basic table, 2 from the shift table). And a shift
/// table is never dearer than UCS-2: every character it covers is in the Basic
/// Multilingual Plane (one UTF-16 unit) and takes at most 2 septets, so a single part
/// holds 77 of them (155 septets) against 70, and a concatenated part 74 (149) against 67.
pub fn segments_with(text: &str, shifts: &[Language]) -> Segments {
    let plain = segments(text);
    if plain.encoding == Encoding::Gsm7 {
        return plain;
    }
    shifts
        .iter()
        .find_map(|&language| {
            let widths =
                text.chars().map(|c| gsm7_shift_septets(c, language)).collect::<Option<Vec<u32>>>()?;
            Some(count(Encoding::Gsm7Shift(language), &widths, GSM7_SHIFT_SINGLE_MAX, GSM7_SHIFT_PART_MAX))
        })
        .unwrap_or(plain)
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
                Encoding::Gsm7Shift(_) => (GSM7_SHIFT_SINGLE_MAX, GSM7_SHIFT_PART_MAX),
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

    fn check_with(text: &str, shifts: &[Language], encoding: Encoding, units: u32, segments_expected: u32) {
        let expected = Segments { encoding, units, segments: segments_expected };
        assert_eq!(segments_with(text, shifts), expected, "{text:?} with {shifts:?}");
    }

    const SPANISH: &str = "Su servicio está cortado; volverá hacia las 16:00.";
    const PORTUGUESE: &str = "Não há serviço; voltará às 16h.";
    const TURKISH: &str = "Hizmetiniz kesildi; saat 16:00'da geri gelecek. Şimdilik özür dileriz.";

    #[test]
    fn shift_capacities_follow_from_the_header_size() {
        assert_eq!(SHIFT_HEADER_OCTETS, 4);
        assert_eq!(SHIFT_CONCAT_HEADER_OCTETS, 9);
        assert_eq!(GSM7_SHIFT_SINGLE_MAX, 155);
        assert_eq!(GSM7_SHIFT_PART_MAX, 149);
        // The same rule gives the concatenation-only header's 153 (6 octets, 7 septets).
        assert_eq!(septets_after_header(6), GSM7_PART_MAX);
    }

    #[test]
    fn language_identifiers() {
        assert_eq!(Language::Turkish.id(), 1);
        assert_eq!(Language::Spanish.id(), 2);
        assert_eq!(Language::Portuguese.id(), 3);
        for language in Language::ALL {
            assert_eq!(Language::from_id(language.id()), Some(language));
        }
        assert_eq!(Language::from_id(0), None);
        assert_eq!(Language::from_id(4), None);
    }

    #[test]
    fn shift_tables_are_well_formed() {
        for language in Language::ALL {
            let table = language.single_shift_table();
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0), "{language:?}: codes in order");
            for &(code, c) in table {
                assert!(code < 0x80 && code != 0x1B && code != 0x0D, "{language:?}: {code:#04x}");
                assert_eq!(table.iter().filter(|&&(_, t)| t == c).count(), 1, "{language:?}: {c:?}");
            }
            // Every table repeats the default extension table at the same codes.
            for (code, c) in [
                (0x0A, '\u{000C}'),
                (0x14, '^'),
                (0x28, '{'),
                (0x29, '}'),
                (0x2F, '\\'),
                (0x3C, '['),
                (0x3D, '~'),
                (0x3E, ']'),
                (0x40, '|'),
                (0x65, '€'),
            ] {
                assert!(table.contains(&(code, c)), "{language:?}: {c:?} at {code:#04x}");
            }
        }
        assert_eq!(Language::Turkish.single_shift_table().len(), 17);
        assert_eq!(Language::Spanish.single_shift_table().len(), 19);
        assert_eq!(Language::Portuguese.single_shift_table().len(), 37);
    }

    #[test]
    fn shift_table_code_values() {
        let code = |language: Language, c: char| {
            language.single_shift_table().iter().find(|&&(_, t)| t == c).map(|&(code, _)| code)
        };
        use Language::*;
        assert_eq!(code(Turkish, 'Ğ'), Some(0x47));
        assert_eq!(code(Turkish, 'İ'), Some(0x49));
        assert_eq!(code(Turkish, 'Ş'), Some(0x53));
        assert_eq!(code(Turkish, 'ç'), Some(0x63));
        assert_eq!(code(Turkish, 'ğ'), Some(0x67));
        assert_eq!(code(Turkish, 'ı'), Some(0x69));
        assert_eq!(code(Turkish, 'ş'), Some(0x73));
        assert_eq!(code(Spanish, 'ç'), Some(0x09));
        assert_eq!(code(Spanish, 'Á'), Some(0x41));
        assert_eq!(code(Spanish, 'á'), Some(0x61));
        assert_eq!(code(Spanish, 'í'), Some(0x69));
        assert_eq!(code(Spanish, 'ó'), Some(0x6F));
        assert_eq!(code(Spanish, 'ú'), Some(0x75));
        assert_eq!(code(Portuguese, 'ç'), Some(0x09));
        assert_eq!(code(Portuguese, 'á'), Some(0x0F));
        assert_eq!(code(Portuguese, 'À'), Some(0x41));
        assert_eq!(code(Portuguese, 'ã'), Some(0x7B));
        assert_eq!(code(Portuguese, 'õ'), Some(0x7C));
        assert_eq!(code(Portuguese, 'â'), Some(0x7F));
        // Not in the tables: ñ and é are basic; Spanish has no ã, Portuguese no à (basic).
        assert_eq!(code(Spanish, 'ñ'), None);
        assert_eq!(code(Spanish, 'ã'), None);
        assert_eq!(code(Portuguese, 'à'), None);
        assert_eq!(code(Turkish, 'á'), None);
    }

    #[test]
    fn shift_septets_per_character() {
        use Language::*;
        assert_eq!(gsm7_shift_septets('a', Spanish), Some(1));
        assert_eq!(gsm7_shift_septets('é', Spanish), Some(1)); // basic
        assert_eq!(gsm7_shift_septets('á', Spanish), Some(2));
        assert_eq!(gsm7_shift_septets('€', Spanish), Some(2));
        assert_eq!(gsm7_shift_septets('á', Turkish), None);
        assert_eq!(gsm7_shift_septets('Σ', Portuguese), Some(1)); // basic before shift
        assert_eq!(gsm7_shift_septets('à', Portuguese), Some(1)); // basic
        assert_eq!(gsm7_shift_septets('ã', Portuguese), Some(2));
        assert_eq!(gsm7_shift_septets('ş', Turkish), Some(2));
        assert_eq!(gsm7_shift_septets('😀', Turkish), None);
    }

    #[test]
    fn spanish_keeps_its_accents_in_one_gsm7_segment() {
        // 50 characters, of which á twice: 52 septets.
        check_with(SPANISH, &[Language::Spanish], Encoding::Gsm7Shift(Language::Spanish), 52, 1);
        check_with(SPANISH, &[], Encoding::Ucs2, 50, 1);
        check(SPANISH, Encoding::Ucs2, 50, 1);
        // The Portuguese table has á too; Turkish does not.
        check_with(SPANISH, &[Language::Turkish], Encoding::Ucs2, 50, 1);
        check_with(
            SPANISH,
            &[Language::Turkish, Language::Portuguese, Language::Spanish],
            Encoding::Gsm7Shift(Language::Portuguese),
            52,
            1,
        );
    }

    #[test]
    fn portuguese_needs_the_portuguese_table() {
        // ã, á, ç, á from the table (2 septets each); à from the basic table: 31 + 4 = 35.
        check_with(PORTUGUESE, &[Language::Portuguese], Encoding::Gsm7Shift(Language::Portuguese), 35, 1);
        // The Spanish table has no ã: UCS-2.
        check_with(PORTUGUESE, &[Language::Spanish], Encoding::Ucs2, 31, 1);
        check_with(PORTUGUESE, &[], Encoding::Ucs2, 31, 1);
    }

    #[test]
    fn turkish_keeps_its_letters_in_gsm7() {
        // 70 characters; ö and ü are basic, Ş is in the table: 71 septets.
        check_with(TURKISH, &[Language::Turkish], Encoding::Gsm7Shift(Language::Turkish), 71, 1);
        check_with(TURKISH, &[Language::Spanish, Language::Portuguese], Encoding::Ucs2, 70, 1);
        check_with(&TURKISH.repeat(3), &[Language::Turkish], Encoding::Gsm7Shift(Language::Turkish), 213, 2);
        check_with(&TURKISH.repeat(3), &[], Encoding::Ucs2, 210, 4);
    }

    #[test]
    fn default_alphabet_text_needs_no_shift_table() {
        for text in ["", "Service restored.", "Crédit de 12,50 € appliqué", "{[~]}"] {
            assert_eq!(segments_with(text, &Language::ALL), segments(text), "{text:?}");
        }
        check_with("", &Language::ALL, Encoding::Gsm7, 0, 0);
        check_with(&"a".repeat(160), &Language::ALL, Encoding::Gsm7, 160, 1);
    }

    #[test]
    fn shift_single_part_boundary() {
        let spanish = &[Language::Spanish];
        let shift = Encoding::Gsm7Shift(Language::Spanish);
        check_with(&format!("{}á", "a".repeat(153)), spanish, shift, 155, 1);
        check_with(&format!("{}á", "a".repeat(154)), spanish, shift, 156, 2);
        check_with(&"á".repeat(77), spanish, shift, 154, 1);
        check_with(&"á".repeat(78), spanish, shift, 156, 2);
        // Where UCS-2 already needs two parts.
        check_with(&"á".repeat(71), &[], Encoding::Ucs2, 71, 2);
        check_with(&"á".repeat(71), spanish, shift, 142, 1);
    }

    #[test]
    fn shift_parts_hold_149_septets() {
        let spanish = &[Language::Spanish];
        let shift = Encoding::Gsm7Shift(Language::Spanish);
        check_with(&format!("á{}", "a".repeat(296)), spanish, shift, 298, 2);
        check_with(&format!("á{}", "a".repeat(297)), spanish, shift, 299, 3);
        check_with(&format!("á{}", "a".repeat(445)), spanish, shift, 447, 3);
        check_with(&format!("á{}", "a".repeat(446)), spanish, shift, 448, 4);
    }

    #[test]
    fn a_shift_escape_pair_is_not_split_across_parts() {
        let spanish = &[Language::Spanish];
        let shift = Encoding::Gsm7Shift(Language::Spanish);
        // 148 septets, then "á" (2): the pair cannot end part 1, so part 1 holds 148.
        // Unsplit, 298 septets would fit 2 parts of 149; kept whole they take 3.
        check_with(&format!("{}á{}", "a".repeat(148), "a".repeat(148)), spanish, shift, 298, 3);
        check_with(&format!("{}á{}", "a".repeat(148), "a".repeat(147)), spanish, shift, 297, 2);
        check_with(&format!("{}á{}", "a".repeat(147), "a".repeat(149)), spanish, shift, 298, 2);
    }

    #[test]
    fn a_text_needing_two_tables_is_ucs2() {
        // á is only in the Spanish and Portuguese tables, Ş only in the Turkish one.
        let text = "Está cortado. Şimdilik.";
        check_with(text, &Language::ALL, Encoding::Ucs2, 23, 1);
        // ã (Portuguese only) with ı (Turkish only).
        check_with("ã ı", &Language::ALL, Encoding::Ucs2, 3, 1);
        // A character in no table at all.
        check_with("está, Zoë", &Language::ALL, Encoding::Ucs2, 9, 1);
        check_with("está 😀", &Language::ALL, Encoding::Ucs2, 7, 1);
    }

    #[test]
    fn the_first_covering_language_is_chosen() {
        use Language::*;
        check_with("ç", &[Portuguese, Spanish], Encoding::Gsm7Shift(Portuguese), 2, 1);
        check_with("ç", &[Spanish, Portuguese], Encoding::Gsm7Shift(Spanish), 2, 1);
        check_with("ç", &[Turkish, Spanish], Encoding::Gsm7Shift(Turkish), 2, 1);
        check_with("ã", &[Spanish, Portuguese], Encoding::Gsm7Shift(Portuguese), 2, 1);
    }

    /// Texts mixing basic, extension, shift-table-only (of each language, and shared),
    /// non-GSM BMP and astral characters.
    fn shift_text() -> impl Strategy<Value = String> {
        let alphabet = prop::sample::select(vec![
            'a', ' ', 'é', 'à', '€', '{', 'á', 'ó', 'Ú', 'ç', 'ã', 'ê', 'ş', 'İ', 'ğ', 'ë', '日', '😀',
        ]);
        prop::collection::vec(alphabet, 0..400).prop_map(|chars| chars.into_iter().collect())
    }

    /// Texts covered by the Spanish table, often long enough to span parts.
    fn spanish_text() -> impl Strategy<Value = String> {
        let alphabet = prop::sample::select(vec!['a', ' ', 'ñ', '€', 'á', 'í', 'ó', 'ú', 'Á', 'ç']);
        prop::collection::vec(alphabet, 0..600).prop_map(|chars| chars.into_iter().collect())
    }

    fn shifts() -> impl Strategy<Value = Vec<Language>> {
        prop::collection::vec(prop::sample::select(Language::ALL.to_vec()), 0..4)
    }

    proptest! {
        #[test]
        fn no_shift_table_is_segments(text in shift_text()) {
            prop_assert_eq!(segments_with(&text, &[]), segments(&text));
        }

        #[test]
        fn no_shift_table_is_segments_for_any_string(text in any::<String>()) {
            prop_assert_eq!(segments_with(&text, &[]), segments(&text));
        }

        #[test]
        fn shift_tables_never_add_segments(text in shift_text(), shifts in shifts()) {
            prop_assert!(segments_with(&text, &shifts).segments <= segments(&text).segments);
        }

        #[test]
        fn shift_tables_never_add_segments_to_covered_text(text in spanish_text(), shifts in shifts()) {
            let with = segments_with(&text, &shifts);
            prop_assert!(with.segments <= segments(&text).segments);
            if shifts.contains(&Language::Spanish) {
                prop_assert_ne!(with.encoding, Encoding::Ucs2);
            }
        }

        #[test]
        fn shift_encoding_counts_escapes_and_bounds_parts(text in spanish_text()) {
            let counted = segments_with(&text, &[Language::Spanish]);
            if counted.encoding == Encoding::Gsm7Shift(Language::Spanish) {
                let escapes = text.chars().filter(|&c| !BASIC.contains(c)).count();
                prop_assert_eq!(counted.units as usize, text.chars().count() + escapes);
                if counted.units <= GSM7_SHIFT_SINGLE_MAX {
                    prop_assert_eq!(counted.segments, 1);
                } else {
                    prop_assert!(counted.segments >= counted.units.div_ceil(GSM7_SHIFT_PART_MAX));
                    prop_assert!(counted.segments <= counted.units.div_ceil(GSM7_SHIFT_PART_MAX - 1));
                }
            } else {
                prop_assert_eq!(counted, segments(&text));
                prop_assert_eq!(counted.encoding, Encoding::Gsm7);
            }
        }

        #[test]
        fn the_chosen_table_covers_the_text_and_earlier_ones_do_not(text in shift_text(), shifts in shifts()) {
            let counted = segments_with(&text, &shifts);
            match counted.encoding {
                Encoding::Gsm7Shift(language) => {
                    let position = shifts.iter().position(|&l| l == language);
                    prop_assert!(position.is_some());
                    let covers = |l: Language| text.chars().all(|c| gsm7_shift_septets(c, l).is_some());
                    prop_assert!(covers(language));
                    prop_assert!(!shifts[..position.unwrap_or(0)].iter().any(|&l| covers(l)));
                    prop_assert_eq!(segments(&text).encoding, Encoding::Ucs2);
                }
                _ => prop_assert_eq!(counted, segments(&text)),
            }
        }
    }
}
