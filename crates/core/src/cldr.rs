//! Dates, times and numbers written a customer's way, from CLDR (the Unicode locale data)
//! through ICU4X, whose data is compiled into the crate: no tables of our own. en-US reads
//! "Monday, November 23 at 4:00 PM EST" (CLDR puts a narrow no-break space before "PM";
//! an SMS turns it into a plain one), en-GB "Monday 23 November at 16:00 GMT", es-ES
//! "lunes, 23 de noviembre a las 22:00 CET", fr-CA "lundi 23 novembre à 16 h 00 HNE".
//!
//! A customer whose language has no shipped templates reads English notices, so their
//! dates are written the English way too ([`written_in`]): CLDR's root locale would write
//! "M11 23, Mon 19:00 UTC", which nobody reads. Formatters are built once per locale and
//! thread: a fan-out to a million customers builds a handful. An instant written once is
//! kept by its locale, zone and minute ([`instant`]): a customer's page lists a dozen, a
//! fan-out writes the same estimate for every customer of a zone, and ICU4X takes some
//! microseconds for each.

use crate::locale::Locale;
use icu_datetime::fieldsets::{self, zone::SpecificShort};
use icu_datetime::options::TimePrecision;
use icu_datetime::{DateTimeFormatter, fieldsets::Combo};
use icu_decimal::DecimalFormatter;
use icu_decimal::input::Decimal;
use icu_time::zone::models::AtTime;
use icu_time::{TimeZoneInfo, ZonedDateTime};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff_icu::ConvertFrom as _;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

/// Languages whose customers read notices in their own language (the shipped templates).
pub const WRITTEN_LANGUAGES: [&str; 5] = ["en", "es", "fr", "de", "pt"];

/// The locale a customer's dates and numbers are written in: theirs, when notices are
/// written in their language; English otherwise.
pub fn written_in(locale: &Locale) -> icu_locale_core::Locale {
    let tag = if WRITTEN_LANGUAGES.contains(&locale.language()) { locale.as_str() } else { "en" };
    tag.parse().unwrap_or(icu_locale_core::locale!("en"))
}

type InstantFormatter = DateTimeFormatter<Combo<fieldsets::MDET, SpecificShort>>;
type TimeFormatter = DateTimeFormatter<Combo<fieldsets::T, SpecificShort>>;
type DateFormatter = DateTimeFormatter<fieldsets::YMD>;
type WeekdayTimeFormatter = DateTimeFormatter<Combo<fieldsets::ET, SpecificShort>>;
type ZonelessFormatter = DateTimeFormatter<fieldsets::MDET>;

thread_local! {
    static INSTANTS: RefCell<HashMap<String, Rc<InstantFormatter>>> = RefCell::new(HashMap::new());
    static TIMES: RefCell<HashMap<String, Rc<TimeFormatter>>> = RefCell::new(HashMap::new());
    static DATES: RefCell<HashMap<String, Rc<DateFormatter>>> = RefCell::new(HashMap::new());
    static WEEKDAY_TIMES: RefCell<HashMap<String, Rc<WeekdayTimeFormatter>>> = RefCell::new(HashMap::new());
    static ZONELESS_LONG: RefCell<HashMap<String, Rc<ZonelessFormatter>>> = RefCell::new(HashMap::new());
    static ZONELESS_SHORT: RefCell<HashMap<String, Rc<ZonelessFormatter>>> = RefCell::new(HashMap::new());
    static DECIMALS: RefCell<HashMap<String, Rc<DecimalFormatter>>> = RefCell::new(HashMap::new());
}

/// The formatter of `cache` for `locale`, built on first use.
fn cached<F>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<String, Rc<F>>>>,
    locale: &Locale,
    build: impl FnOnce(icu_locale_core::Locale) -> F,
) -> Rc<F> {
    cache.with(|map| {
        if let Some(formatter) = map.borrow().get(locale.as_str()) {
            return formatter.clone();
        }
        let formatter = Rc::new(build(written_in(locale)));
        map.borrow_mut().insert(locale.as_str().to_string(), formatter.clone());
        formatter
    })
}

fn zoned(t: Timestamp, zone: &TimeZone) -> ZonedDateTime<icu_calendar::Iso, TimeZoneInfo<AtTime>> {
    ZonedDateTime::convert_from(&t.to_zoned(zone.clone()))
}

/// An instant with its day, to the minute, in `zone`: "Monday, November 23 at 4:00 PM
/// EST". The zone's short name where the language has one, its offset otherwise
/// ("UTC+1" in French).
pub fn instant(t: Timestamp, zone: &TimeZone, locale: &Locale) -> String {
    // Written to the minute: the same minute in the same zone and locale reads the same,
    // and a page or a fan-out writes the same few minutes again and again. Only a named
    // zone after 1970 is kept (a minute is then the seconds divided down, exactly).
    let (Some(name), false) = (zone.iana_name(), t.as_second() < 0) else {
        return write_instant(t, zone, locale);
    };
    let minute = t.as_second() / 60;
    INSTANT_TEXTS.with(|cell| {
        let (key, texts) = &mut *cell.borrow_mut();
        key.clear();
        key.push_str(locale.as_str());
        key.push('|');
        key.push_str(name);
        let _ = write!(key, "|{minute}");
        if let Some(text) = texts.get(key.as_str()) {
            return text.clone();
        }
        let text = write_instant(t, zone, locale);
        if texts.len() >= INSTANT_TEXTS_MAX {
            texts.clear();
        }
        texts.insert(key.clone(), text.clone());
        text
    })
}

/// Instants kept written by each thread at most (see [`instant`]); when full, all are
/// dropped.
const INSTANT_TEXTS_MAX: usize = 4096;

thread_local! {
    /// [`instant`]'s texts by locale, zone and minute, with the key being looked up.
    static INSTANT_TEXTS: RefCell<(String, HashMap<String, String>)> = RefCell::default();
}

/// [`instant`], written by ICU4X every time.
fn write_instant(t: Timestamp, zone: &TimeZone, locale: &Locale) -> String {
    let formatter = cached(&INSTANTS, locale, |l| {
        let fields = fieldsets::MDET::long().with_time_precision(TimePrecision::Minute);
        DateTimeFormatter::try_new(l.into(), fields.with_zone(SpecificShort))
            .expect("compiled CLDR data covers every locale, falling back to root")
    });
    formatter.format(&zoned(t, zone)).to_string()
}

/// The time of day alone, to the minute, with the zone: "4:00 PM EST" (for a text that
/// says the day another way, or an SMS that must stay short).
pub fn time(t: Timestamp, zone: &TimeZone, locale: &Locale) -> String {
    let formatter = cached(&TIMES, locale, |l| {
        let fields = fieldsets::T::short().with_time_precision(TimePrecision::Minute);
        DateTimeFormatter::try_new(l.into(), fields.with_zone(SpecificShort))
            .expect("compiled CLDR data covers every locale, falling back to root")
    });
    formatter.format(&zoned(t, zone)).to_string()
}

/// An instant as an SMS says it, short: its weekday and time, "Mon 4:00 PM EST", "lun
/// 22:00 CET", when it is less than six days from `now` (so the weekday cannot be read as
/// another week's); [`instant`] otherwise. An SMS fits one segment only if every word
/// counts.
pub fn instant_short(t: Timestamp, now: Timestamp, zone: &TimeZone, locale: &Locale) -> String {
    if (t.as_second() - now.as_second()).abs() >= 6 * 86_400 {
        return instant(t, zone, locale);
    }
    let formatter = cached(&WEEKDAY_TIMES, locale, |l| {
        let fields = fieldsets::ET::short().with_time_precision(TimePrecision::Minute);
        DateTimeFormatter::try_new(l.into(), fields.with_zone(SpecificShort))
            .expect("compiled CLDR data covers every locale, falling back to root")
    });
    formatter.format(&zoned(t, zone)).to_string()
}

/// A span of time, such as a visit's window: its start's day and time, then CLDR's
/// interval separator " – " and its end, with the zone said once: "Monday, December 7 at
/// 8:00 AM – 12:00 PM GMT". A span over midnight says both days.
pub fn window(start: Timestamp, end: Timestamp, zone: &TimeZone, locale: &Locale) -> String {
    if !same_day(start, end, zone) {
        return format!("{} – {}", instant(start, zone, locale), instant(end, zone, locale));
    }
    let start = zoneless(&ZONELESS_LONG, fieldsets::MDET::long(), start, zone, locale);
    format!("{start} – {}", time(end, zone, locale))
}

/// [`window`] as an SMS says it: "Mon, Dec 7, 8:00 AM – 12:00 PM GMT", "lun. 7 déc.,
/// 09:00 – 13:00 UTC+1". A span over midnight is written as [`window`] writes it.
pub fn window_short(start: Timestamp, end: Timestamp, zone: &TimeZone, locale: &Locale) -> String {
    if !same_day(start, end, zone) {
        return window(start, end, zone, locale);
    }
    let start = zoneless(&ZONELESS_SHORT, fieldsets::MDET::medium(), start, zone, locale);
    format!("{start} – {}", time(end, zone, locale))
}

fn same_day(start: Timestamp, end: Timestamp, zone: &TimeZone) -> bool {
    start.to_zoned(zone.clone()).date() == end.to_zoned(zone.clone()).date()
}

/// A day and time without the zone, for a span that says its zone once, at its end.
fn zoneless(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<String, Rc<ZonelessFormatter>>>>,
    fields: fieldsets::MDET,
    t: Timestamp,
    zone: &TimeZone,
    locale: &Locale,
) -> String {
    let formatter = cached(cache, locale, |l| {
        DateTimeFormatter::try_new(l.into(), fields.with_time_precision(TimePrecision::Minute))
            .expect("compiled CLDR data covers every locale, falling back to root")
    });
    let civil = icu_time::DateTime::<icu_calendar::Iso>::convert_from(t.to_zoned(zone.clone()).datetime());
    formatter.format(&civil).to_string()
}

/// A calendar date with its year: "December 1, 2026", "1 December 2026", "1 de
/// diciembre de 2026".
pub fn date(d: Date, locale: &Locale) -> String {
    let formatter = cached(&DATES, locale, |l| {
        DateTimeFormatter::try_new(l.into(), fieldsets::YMD::long())
            .expect("compiled CLDR data covers every locale, falling back to root")
    });
    formatter.format(&icu_calendar::Date::<icu_calendar::Iso>::convert_from(d)).to_string()
}

/// A date as the ledger keeps it (`2026-12-01`), written the locale's way; anything that
/// is not such a date is returned as it is.
pub fn date_text(iso: &str, locale: &Locale) -> String {
    iso.parse::<Date>().map_or_else(|_| iso.to_string(), |d| date(d, locale))
}

/// `minor` units with `exponent` decimal places, grouped and pointed the locale's way:
/// 123456 with 2 is "1,234.56", "1.234,56" or "1 234,56". No sign, no currency.
pub fn decimal(minor: u64, exponent: u8, locale: &Locale) -> String {
    let formatter = cached(&DECIMALS, locale, |l| {
        DecimalFormatter::try_new(l.into(), Default::default())
            .expect("compiled CLDR data covers every locale, falling back to root")
    });
    let mut number = Decimal::from(minor);
    number.multiply_pow10(-i16::from(exponent));
    number.pad_end(-i16::from(exponent));
    formatter.format(&number).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn locale(tag: &str) -> Locale {
        Locale::parse(tag).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn an_instant_kept_reads_as_one_written_afresh(
            second in -86_400i64 * 400..86_400 * 365 * 80,
            again in 0i64..180,
            zone in proptest::sample::select(vec!["America/New_York", "Europe/Madrid", "Asia/Kolkata", "UTC"]),
            tag in proptest::sample::select(vec!["en-US", "es-ES", "fr-CA", "de-DE", "pt-BR", "ja-JP"]),
        ) {
            let (zone, tag) = (tz(zone), locale(tag));
            for t in [second, second + again, second - again] {
                let t = Timestamp::from_second(t).unwrap();
                proptest::prop_assert_eq!(instant(t, &zone, &tag), write_instant(t, &zone, &tag), "{}", t);
            }
        }
    }

    #[test]
    fn an_instant_is_kept_apart_by_zone_and_locale() {
        let t = at("2026-11-23T21:00:30Z");
        for zone in ["America/New_York", "Europe/Madrid", "Asia/Kolkata", "UTC"] {
            for tag in ["en-US", "en-GB", "es-ES", "fr-CA", "de-DE", "pt-BR"] {
                let (zone, tag) = (tz(zone), locale(tag));
                assert_eq!(instant(t, &zone, &tag), write_instant(t, &zone, &tag), "{zone:?} {tag}");
            }
        }
    }

    #[test]
    fn short_instants_say_the_weekday_within_the_week_only() {
        let (t, now) = (at("2026-11-23T21:00:00Z"), at("2026-11-23T15:00:00Z"));
        let got: Vec<String> = [
            ("en-US", "America/New_York"),
            ("en-GB", "Europe/London"),
            ("es-ES", "Europe/Madrid"),
            ("fr-FR", "Europe/Paris"),
            ("de-DE", "Europe/Berlin"),
            ("pt-BR", "America/Sao_Paulo"),
        ]
        .iter()
        .map(|(l, z)| instant_short(t, now, &tz(z), &locale(l)))
        .collect();
        assert_eq!(
            got,
            [
                "Mon, 4:00\u{202f}PM EST",
                "Mon, 21:00 GMT",
                "lun, 22:00 CET",
                "lun. 22:00 UTC+1",
                "Mo, 22:00 MEZ",
                "seg., 18:00 BRT"
            ]
        );
        // Six days or more away, a weekday could be read as this week's: the whole instant.
        let far = at("2026-11-29T15:00:00Z");
        assert_eq!(
            instant_short(far, now, &tz("UTC"), &locale("en-GB")),
            instant(far, &tz("UTC"), &locale("en-GB"))
        );
    }

    #[test]
    fn instants_read_each_locale_s_way() {
        let t = at("2026-11-23T21:00:00Z");
        let cases = [
            ("en-US", "America/New_York", "Monday, November 23 at 4:00\u{202f}PM EST"),
            ("en-GB", "Europe/London", "Monday 23 November at 21:00 GMT"),
            ("es-ES", "Europe/Madrid", "lunes, 23 de noviembre a las 22:00 CET"),
            ("fr-FR", "Europe/Paris", "lundi 23 novembre à 22:00 UTC+1"),
            ("fr-CA", "America/Toronto", "lundi 23 novembre à 16 h 00 HNE"),
            ("de-DE", "Europe/Berlin", "Montag, 23. November um 22:00 MEZ"),
            ("pt-BR", "America/Sao_Paulo", "segunda-feira, 23 de novembro às 18:00 BRT"),
            // No shipped templates: English notices, English dates.
            ("nl", "UTC", "Monday, November 23 at 9:00\u{202f}PM UTC"),
        ];
        for (tag, zone, want) in cases {
            assert_eq!(instant(t, &tz(zone), &locale(tag)), want, "{tag}");
        }
        // Summer time, and the time alone.
        let august = at("2026-08-02T07:05:00Z");
        assert_eq!(instant(august, &tz("Europe/London"), &locale("en-GB")), "Sunday 2 August at 08:05 BST");
        assert_eq!(time(august, &tz("America/New_York"), &locale("en-US")), "3:05\u{202f}AM EDT");
        assert_eq!(time(august, &tz("Europe/Madrid"), &locale("es")), "09:05 CEST");
        let visit = |start, end| window(at(start), at(end), &tz("Europe/London"), &locale("en-GB"));
        assert_eq!(
            visit("2026-12-07T08:00:00Z", "2026-12-07T12:00:00Z"),
            "Monday 7 December at 08:00 – 12:00 GMT"
        );
        assert_eq!(
            visit("2026-12-07T20:00:00Z", "2026-12-08T01:00:00Z"),
            "Monday 7 December at 20:00 GMT – Tuesday 8 December at 01:00 GMT"
        );
        let short = |tag, zone| {
            window_short(at("2026-12-07T08:00:00Z"), at("2026-12-07T12:00:00Z"), &tz(zone), &locale(tag))
        };
        assert_eq!(short("en-US", "America/New_York"), "Mon, Dec 7, 3:00\u{202f}AM – 7:00\u{202f}AM EST");
        assert_eq!(short("fr-FR", "Europe/Paris"), "lun. 7 déc., 09:00 – 13:00 UTC+1");
        assert_eq!(short("es-ES", "Europe/Madrid"), "lun, 7 dic, 09:00 – 13:00 CET");
    }

    #[test]
    fn dates_and_numbers_too() {
        let d: Date = "2026-12-01".parse().unwrap();
        assert_eq!(date(d, &locale("en-US")), "December 1, 2026");
        assert_eq!(date(d, &locale("en-GB")), "1 December 2026");
        assert_eq!(date(d, &locale("es")), "1 de diciembre de 2026");
        assert_eq!(date(d, &locale("fr-CA")), "1 décembre 2026");
        assert_eq!(date_text("2026-12-01", &locale("es-MX")), "1 de diciembre de 2026");
        assert_eq!(date_text("next month", &locale("es-MX")), "next month");
        assert_eq!(decimal(123_456, 2, &locale("en-US")), "1,234.56");
        assert_eq!(decimal(123_456, 2, &locale("es-ES")), "1234,56");
        assert_eq!(decimal(12_345_600, 2, &locale("es-ES")), "123.456,00");
        assert_eq!(decimal(123_456, 2, &locale("fr-FR")), "1\u{202f}234,56");
        assert_eq!(decimal(5, 2, &locale("en-GB")), "0.05");
        assert_eq!(decimal(1500, 0, &locale("en-US")), "1,500");
    }
}
