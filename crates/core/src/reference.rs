//! References a person reads out and types back: `APT-4715-2093`.
//!
//! A reference names one record of a sequence the store allocates (the core has no store
//! and no randomness, and a number from the store is unique by construction). Shown as
//! it is, the number reads as a count: `APT-00000013` looked like the provider's 13th
//! booking. So the number is first scrambled by a fixed bijection over its width, then a
//! Damm check digit is appended (it catches every single wrong digit and every swap of two
//! adjacent digits, the usual mistakes of a reference read over the phone), and the digits
//! are shown in groups of four.
//!
//! References of the earlier form (`APT-00000013`: the number itself, zero-padded, then
//! its check digit) are still read, so a visit booked before is still found.

/// Digits of a reference's scrambled number, before its check digit, at least: ten
/// million references before they grow a digit.
pub const DIGITS_MIN: usize = 7;
/// Digits shown between two dashes.
const GROUP: usize = 4;
/// The scrambling is `x -> (MULTIPLIER * x + OFFSET) mod 10^width`, then the digits
/// reversed, then the same again: a bijection, as the multiplier is prime to 10.
const MULTIPLIER: u128 = 7_391_589_277;
const OFFSET: u128 = 4_106_283_559;

/// The Damm algorithm's quasigroup.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// Where the check digit of a scrambled reference starts (the earlier form's starts at
/// 0). From two different starts the interim digits differ at every step, so no string of
/// digits is valid in both forms: a scrambled reference typed without its dashes is
/// refused, never read as another visit's reference of the earlier form.
const SCRAMBLED_START: u8 = 5;

/// The Damm check of ASCII digits from interim `start`: 0 when the last of them is the
/// check digit of the others.
fn damm_from(start: u8, digits: &[u8]) -> u8 {
    digits.iter().fold(start, |interim, d| DAMM[usize::from(interim)][usize::from(d - b'0')])
}

/// The Damm check of ASCII digits, as the earlier form computed it.
pub(crate) fn damm(digits: &[u8]) -> u8 {
    damm_from(0, digits)
}

/// The reference of record `sequence`: `prefix`, then its scrambled number and check
/// digit in groups of four (`APT-4715-2093`).
pub fn format(prefix: &str, sequence: u64) -> String {
    let width = width_of(sequence);
    let mut digits = format!("{:0width$}", scramble(u128::from(sequence), width));
    digits.push(char::from(b'0' + damm_from(SCRAMBLED_START, digits.as_bytes())));
    let groups: Vec<&str> =
        digits.as_bytes().chunks(GROUP).map(|g| std::str::from_utf8(g).unwrap_or("")).collect();
    format!("{prefix}{}", groups.join("-"))
}

/// The sequence number of a reference made by [`format`] (or of the earlier form);
/// `None` for anything else, a wrong check digit or another spelling of the same number
/// among them.
pub fn parse(prefix: &str, s: &str) -> Option<u64> {
    let rest = s.strip_prefix(prefix)?;
    let digits: String = rest.chars().filter(|&c| c != '-').collect();
    if digits.len() < DIGITS_MIN + 1 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scrambled = rest.contains('-');
    if damm_from(if scrambled { SCRAMBLED_START } else { 0 }, digits.as_bytes()) != 0 {
        return None;
    }
    let body = &digits[..digits.len() - 1];
    let sequence = if scrambled {
        u64::try_from(unscramble(body.parse().ok()?, body.len())?).ok()?
    } else {
        body.parse().ok()?
    };
    let canonical = if scrambled { format(prefix, sequence) } else { earlier_form(prefix, sequence) };
    (canonical == s).then_some(sequence)
}

/// `APT-00000013`: how references were written before they were scrambled.
fn earlier_form(prefix: &str, sequence: u64) -> String {
    let digits = format!("{sequence:0width$}", width = DIGITS_MIN);
    format!("{prefix}{digits}{}", damm(digits.as_bytes()))
}

fn width_of(sequence: u64) -> usize {
    sequence.checked_ilog10().map_or(1, |l| l as usize + 1).max(DIGITS_MIN)
}

fn modulus(width: usize) -> u128 {
    10u128.pow(width as u32)
}

fn scramble(x: u128, width: usize) -> u128 {
    let m = modulus(width);
    let round = |x: u128| (mul_mod(MULTIPLIER, x, m) + OFFSET) % m;
    round(reverse(round(x), width))
}

/// The inverse of [`scramble`]; `None` for a number wider than `width` digits.
fn unscramble(y: u128, width: usize) -> Option<u128> {
    let m = modulus(width);
    if y >= m || width > 20 {
        return None;
    }
    let inverse = inverse_mod(MULTIPLIER % m, m)?;
    let back = |y: u128| mul_mod((y + m - OFFSET % m) % m, inverse, m);
    Some(back(reverse(back(y), width)))
}

/// `a * b mod m` without overflow (`m` is at most 10^20, so a doubling fits in a u128).
fn mul_mod(a: u128, mut b: u128, m: u128) -> u128 {
    let (mut a, mut product) = (a % m, 0);
    while b > 0 {
        if b & 1 == 1 {
            product = (product + a) % m;
        }
        a = (a + a) % m;
        b >>= 1;
    }
    product
}

/// `x`'s `width` digits (zero-padded) in reverse order.
fn reverse(mut x: u128, width: usize) -> u128 {
    let mut out = 0;
    for _ in 0..width {
        out = out * 10 + x % 10;
        x /= 10;
    }
    out
}

/// `a`'s inverse modulo `m`, when they are coprime.
fn inverse_mod(a: u128, m: u128) -> Option<u128> {
    let (mut r0, mut r1) = (i128::try_from(m).ok()?, i128::try_from(a).ok()?);
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    (r0 == 1).then(|| u128::try_from(t0.rem_euclid(i128::try_from(m).ok()?)).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_check_digit_is_damms() {
        assert_eq!(damm(b"572"), 4);
        assert_eq!(damm(b"5724"), 0);
    }

    #[test]
    fn references_do_not_read_as_counts() {
        let first: Vec<String> = (1..=5).map(|n| format("APT-", n)).collect();
        assert_eq!(
            first,
            ["APT-2858-5588", "APT-7748-3325", "APT-9398-3361", "APT-2349-5337", "APT-9504-6075"]
        );
        let numbers: Vec<u64> =
            (1..=100).map(|n| format("APT-", n)[4..].replace('-', "").parse().unwrap()).collect();
        assert!(!numbers.is_sorted(), "{numbers:?}");
        assert!(numbers.iter().all(|&n| n >= 1_000_000), "no run of zeros as padding: {numbers:?}");
    }

    #[test]
    fn the_earlier_form_is_still_read_and_one_spelling_per_number() {
        assert_eq!(parse("APT-", "APT-00000013"), Some(1));
        assert_eq!(parse("APT-", "APT-00000427"), Some(42));
        assert_eq!(parse("APT-", "APT-123456786"), Some(12_345_678));
        assert_eq!(parse("APT-", &format("APT-", u64::MAX)), Some(u64::MAX));
        assert_eq!(parse("APT-", &format("APT-", 0)), Some(0));
        let one = format("APT-", 1);
        for bad in [
            "",
            "APT-",
            "APT-0000001",
            "APT-00000014",
            "apt-00000017",
            "APT-000000013",
            "APT-0000001x3",
            "APT-+0000013",
            &one.replace('-', ""),
            &format!("APT-{}", one[4..].replace('-', "")),
            &format!("{one}-"),
            &one.replacen("APT-", "APT--", 1),
            &one.replacen("APT-", "CXL-", 1),
        ] {
            assert_eq!(parse("APT-", bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn references_read_back_and_catch_one_typo(seq in any::<u64>(), pos in 0usize..32, by in 1u8..10) {
            let r = format("APT-", seq);
            prop_assert_eq!(parse("APT-", &r), Some(seq));
            // Without its dashes it is no reference of the earlier form either.
            prop_assert_eq!(parse("APT-", &format!("APT-{}", r[4..].replace('-', ""))), None);
            let digits: Vec<usize> = (4..r.len()).filter(|&i| r.as_bytes()[i].is_ascii_digit()).collect();
            let i = digits[pos % digits.len()];
            // One wrong digit.
            let mut wrong = r.clone().into_bytes();
            wrong[i] = b'0' + (wrong[i] - b'0' + by) % 10;
            prop_assert_eq!(parse("APT-", std::str::from_utf8(&wrong).unwrap()), None);
            // Two adjacent digits swapped, across a dash too.
            let next = digits.iter().copied().find(|&j| j > i);
            if let Some(j) = next && r.as_bytes()[i] != r.as_bytes()[j] {
                let mut swapped = r.clone().into_bytes();
                swapped.swap(i, j);
                prop_assert_eq!(parse("APT-", std::str::from_utf8(&swapped).unwrap()), None);
            }
        }

        #[test]
        fn the_scrambling_is_a_bijection(x in any::<u64>()) {
            let width = width_of(x);
            prop_assert_eq!(unscramble(scramble(u128::from(x), width), width), Some(u128::from(x)));
        }
    }
}
