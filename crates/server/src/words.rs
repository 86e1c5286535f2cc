//! The languages of the customer-facing pages, decided in one place: the pages are written
//! in every language notices are shipped in ([`Lang`]), so a customer who reads their
//! notices in German or Portuguese reads their pages in it too.
//!
//! - [`page_language`]: a customer's page, from their locale (`de-AT` reads German; a
//!   language the pages are not written in reads English).
//! - [`reader_language`]: a page for a reader the server does not know (the status page,
//!   a link that does not work, a survey, an unsubscribe): `?lang=`, then the first of
//!   `Accept-Language` the pages are written in, by preference, then English.
//! - [`pick`]: the words of a page, one array per phrase in the order of [`Lang::ALL`], so
//!   a phrase cannot be added without all five.
//!
//! The words more than one page uses (an incident's state and labels, a topic, a channel,
//! a link that does not work) are here too, so each is written once.

use amends_core::incident::IncidentState;
use amends_core::preferences::{Channel, Topic};
use axum::http::{HeaderMap, header};
use std::cmp::Reverse;
use std::fmt;
use std::sync::OnceLock;

/// A language the pages are written in: the languages of the shipped notice templates
/// (`amends_core::cldr::WRITTEN_LANGUAGES`, which a test holds these to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Es,
    Fr,
    De,
    Pt,
}

impl Lang {
    /// Every language, in the order [`pick`] takes the words.
    pub const ALL: [Lang; 5] = [Lang::En, Lang::Es, Lang::Fr, Lang::De, Lang::Pt];

    /// The language's tag, as `?lang=` and `<html lang>` write it.
    pub fn tag(self) -> &'static str {
        pick(self, ["en", "es", "fr", "de", "pt"])
    }

    /// The language as its own readers name it, for the pages' language links.
    pub fn name(self) -> &'static str {
        pick(self, ["English", "Español", "Français", "Deutsch", "Português"])
    }

    /// The language of a tag (`de`, `de-AT`, `PT_br`) by its primary subtag, when the pages
    /// are written in it.
    pub fn of(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        Lang::ALL.into_iter().find(|l| primary.eq_ignore_ascii_case(l.tag()))
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A page's context holds the tag (`lang` in a template is `de`).
impl From<Lang> for minijinja::Value {
    fn from(lang: Lang) -> Self {
        minijinja::Value::from(lang.tag())
    }
}

/// The language a customer's pages are written in, from their locale; English for a
/// language the pages are not written in (as their notices are).
pub fn page_language(locale: &str) -> Lang {
    Lang::of(locale).unwrap_or(Lang::En)
}

/// The language ranges of `Accept-Language` read; the rest of a longer header is not.
pub const ACCEPT_LANGUAGE_RANGES_MAX: usize = 32;

/// The language of a page for a reader the server does not know: `asked` (`?lang=`) when
/// the pages are written in it, else the first language of `Accept-Language` they are
/// written in (by its q-value, then its place; `q=0` means "not this one"), else English.
/// English listed first is chosen like any other language.
pub fn reader_language(asked: Option<&str>, headers: &HeaderMap) -> Lang {
    asked.and_then(Lang::of).or_else(|| accepted(headers)).unwrap_or(Lang::En)
}

/// The preferred language of `Accept-Language` the pages are written in.
fn accepted(headers: &HeaderMap) -> Option<Lang> {
    let header = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    header
        .split(',')
        .take(ACCEPT_LANGUAGE_RANGES_MAX)
        .filter_map(|range| {
            let mut parts = range.split(';');
            let lang = Lang::of(parts.next()?)?;
            let quality = match parts.find_map(|p| p.trim().strip_prefix("q=")) {
                Some(q) => quality_per_mille(q)?,
                None => 1000,
            };
            (quality > 0).then_some((quality, lang))
        })
        // The first of the most preferred: `min_by_key` keeps the first of equals.
        .min_by_key(|&(quality, _)| Reverse(quality))
        .map(|(_, lang)| lang)
}

/// A q-value (`0.8`) in thousandths; none for one that is not a number from 0 to 1.
fn quality_per_mille(q: &str) -> Option<u16> {
    let q: f32 = q.trim().parse().ok()?;
    (0.0..=1.0).contains(&q).then(|| (q * 1000.0).round() as u16)
}

/// `make(lang)`, made the first time it is asked for in any language, for every
/// language, and kept in `cell`: what a page writes alike for every reader of a language.
pub fn once_per_language<T>(
    cell: &'static OnceLock<[T; 5]>,
    lang: Lang,
    make: impl Fn(Lang) -> T,
) -> &'static T {
    pick(lang, cell.get_or_init(|| Lang::ALL.map(make)).each_ref())
}

/// The words of `lang` from one phrase written in every language, in [`Lang::ALL`]'s order.
pub fn pick<T>(lang: Lang, [en, es, fr, de, pt]: [T; 5]) -> T {
    match lang {
        Lang::En => en,
        Lang::Es => es,
        Lang::Fr => fr,
        Lang::De => de,
        Lang::Pt => pt,
    }
}

/// Every language for a page's language links: its tag, its name, and whether the page is
/// in it. The links themselves are written by each page's template (each keeps its own
/// query: the status page its zone, a customer's page its token).
pub fn languages(current: Lang) -> Vec<minijinja::Value> {
    Lang::ALL
        .into_iter()
        .map(|l| minijinja::context! { tag => l, name => l.name(), current => l == current })
        .collect()
}

/// The label of the language links.
pub const LANGUAGE: [&str; 5] = ["Language", "Idioma", "Langue", "Sprache", "Idioma"];

/// The title of a page for a signed link that has expired.
pub const LINK_EXPIRED: [&str; 5] = [
    "This link has expired",
    "Este enlace ha caducado",
    "Ce lien a expiré",
    "Dieser Link ist abgelaufen",
    "Este link expirou",
];

/// The title of a page for a signed link that is forged, altered or cut short.
pub const LINK_BROKEN: [&str; 5] = [
    "This link does not work",
    "Este enlace no funciona",
    "Ce lien ne fonctionne pas",
    "Dieser Link funktioniert nicht",
    "Este link não funciona",
];

/// What to do about a link that does not work.
pub const LINK_AS_SENT: [&str; 5] = [
    "Open the link from your message as it came, without changing it.",
    "Abra el enlace de su mensaje tal como llegó, sin cambiarlo.",
    "Ouvrez le lien de votre message tel quel, sans le modifier.",
    "Öffnen Sie den Link aus Ihrer Nachricht so, wie er angekommen ist, ohne ihn zu ändern.",
    "Abra o link da sua mensagem tal como chegou, sem fazer alterações.",
];

/// "Started", as the status page and a customer's page label an incident's start.
pub const STARTED: [&str; 5] = ["Started", "Empezó", "Début", "Beginn", "Início"];

/// "Expected back by", as the status page and a customer's page label an estimate.
pub const ETR: [&str; 5] = [
    "Expected back by",
    "Esperamos que vuelva antes del",
    "Retour prévu d'ici le",
    "Voraussichtlich wieder verfügbar bis",
    "Esperamos que volte até",
];

/// "Next update by", on the status page and a customer's page.
pub const NEXT_UPDATE: [&str; 5] = [
    "Next update by",
    "Próxima actualización antes del",
    "Prochaine mise à jour d'ici le",
    "Nächstes Update spätestens",
    "Próxima atualização até",
];

/// "Times in" before a time zone's name, on the status page and a customer's page.
pub const TIMES_IN: [&str; 5] = ["Times in", "Horas en", "Heures en", "Uhrzeiten in", "Horas em"];

/// An incident's state in the reader's language; a new state fails to compile until it has
/// its words.
pub fn state_word(lang: Lang, state: IncidentState) -> &'static str {
    use IncidentState::*;
    match state {
        Detected => pick(lang, ["Detected", "Detectada", "Détectée", "Erkannt", "Detectada"]),
        Acknowledged => pick(lang, ["Acknowledged", "Confirmada", "Confirmée", "Bestätigt", "Confirmada"]),
        Identified => pick(
            lang,
            [
                "Cause identified",
                "Causa identificada",
                "Cause identifiée",
                "Ursache gefunden",
                "Causa identificada",
            ],
        ),
        Monitoring => pick(
            lang,
            ["Monitoring", "En observación", "Sous surveillance", "Unter Beobachtung", "Em observação"],
        ),
        Resolved => pick(lang, ["Resolved", "Resuelta", "Résolue", "Behoben", "Resolvida"]),
    }
}

/// A channel as a customer calls it.
pub fn channel_word(lang: Lang, channel: Channel) -> &'static str {
    match channel {
        Channel::Email => pick(lang, ["Email", "Correo", "E-mail", "E-Mail", "E-mail"]),
        Channel::Sms => "SMS",
        Channel::Webhook => {
            pick(lang, ["Our app", "Nuestra app", "Notre appli", "Unsere App", "A nossa app"])
        }
    }
}

/// A topic of messages as a customer reads it.
pub fn topic_word(lang: Lang, topic: Topic) -> &'static str {
    match topic {
        Topic::Acknowledgement => pick(
            lang,
            [
                "An outage affects you",
                "Una avería le afecta",
                "Une panne vous touche",
                "Eine Störung betrifft Sie",
                "Falha no seu serviço",
            ],
        ),
        Topic::Update => pick(lang, ["Updates", "Novedades", "Mises à jour", "Neuigkeiten", "Novidades"]),
        Topic::EtrChange => pick(
            lang,
            [
                "New estimates",
                "Nuevas estimaciones",
                "Nouvelles estimations",
                "Neue Schätzungen",
                "Novas previsões",
            ],
        ),
        Topic::Restored => pick(
            lang,
            [
                "Service back",
                "Servicio restablecido",
                "Service rétabli",
                "Dienst läuft wieder",
                "Serviço restabelecido",
            ],
        ),
        Topic::Credit => pick(lang, ["Credits", "Créditos", "Crédits", "Gutschriften", "Créditos"]),
        Topic::StillDown => pick(
            lang,
            [
                "Still offline",
                "Sigue sin servicio",
                "Toujours sans service",
                "Immer noch offline",
                "Ainda sem serviço",
            ],
        ),
        Topic::Case => pick(lang, ["Your cases", "Sus casos", "Vos dossiers", "Ihre Fälle", "Os seus casos"]),
        Topic::Appointment => pick(lang, ["Visits", "Visitas", "Visites", "Termine", "Visitas"]),
        Topic::Account => {
            pick(lang, ["Your account", "Su cuenta", "Votre compte", "Ihr Konto", "A sua conta"])
        }
        Topic::Survey => pick(lang, ["Surveys", "Encuestas", "Enquêtes", "Umfragen", "Questionários"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// The reader's language for `?lang=` `asked` and `Accept-Language` `accepted`.
    fn check(asked: Option<&str>, accepted: Option<&'static str>, expected: Lang) {
        let mut headers = HeaderMap::new();
        if let Some(accepted) = accepted {
            headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(accepted));
        }
        assert_eq!(
            reader_language(asked, &headers),
            expected,
            "?lang={asked:?}, Accept-Language: {accepted:?}"
        );
    }

    #[test]
    fn the_reader_s_language_is_the_query_s_then_the_browser_s_first_written_then_english() {
        use Lang::*;
        // Nothing asked: English.
        check(None, None, En);
        check(None, Some(""), En);
        // The first listed that the pages are written in, English included.
        check(None, Some("en, de"), En);
        check(None, Some("en-US,en;q=0.9,de;q=0.8"), En);
        check(None, Some("de-DE,de;q=0.9,en;q=0.5"), De);
        check(None, Some("pt-BR"), Pt);
        check(None, Some("PT_pt"), Pt);
        check(None, Some("nl-NL,pt;q=0.7,en;q=0.3"), Pt);
        // q-values rank before the order; q=0 is "not this one"; a bad q-value is skipped.
        check(None, Some("en;q=0.5, de;q=0.9"), De);
        check(None, Some("fr;q=0.8, es;q=0.8, en;q=0.1"), Fr);
        check(None, Some("de;q=0, fr;q=0.2"), Fr);
        check(None, Some("de;q=2, es;q=abc, pt;q=0.3"), Pt);
        check(None, Some("de; q=0.4 ,es;q=0.6"), Es);
        // Unknown languages and the wildcard: the next known one, else English.
        check(None, Some("tlh, nl, *"), En);
        check(None, Some("tlh, nl, fr-CA"), Fr);
        // `?lang=` wins when the pages are written in it; otherwise the header decides.
        check(Some("pt"), Some("de-DE,en;q=0.5"), Pt);
        check(Some("DE"), None, De);
        check(Some("en"), Some("de"), En);
        check(Some("tlh"), Some("es-MX"), Es);
        check(Some(""), None, En);
    }

    #[test]
    fn a_header_of_endless_ranges_is_read_only_so_far() {
        let mut long = "xx, ".repeat(ACCEPT_LANGUAGE_RANGES_MAX);
        long.push_str("de");
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(&long).unwrap());
        assert_eq!(reader_language(None, &headers), Lang::En);
    }

    #[test]
    fn a_customer_s_page_is_in_their_locale_s_language_else_english() {
        for (locale, expected) in [
            ("en-US", Lang::En),
            ("es-MX", Lang::Es),
            ("fr-CA", Lang::Fr),
            ("de-DE", Lang::De),
            ("de-AT", Lang::De),
            ("pt-BR", Lang::Pt),
            ("pt", Lang::Pt),
            ("nl-NL", Lang::En),
            ("", Lang::En),
        ] {
            assert_eq!(page_language(locale), expected, "{locale}");
        }
    }

    #[test]
    fn the_pages_are_written_in_every_language_notices_are_shipped_in() {
        let tags: Vec<&str> = Lang::ALL.iter().map(|l| l.tag()).collect();
        assert_eq!(tags, amends_core::cldr::WRITTEN_LANGUAGES);
        for l in Lang::ALL {
            assert_eq!(Lang::of(l.tag()), Some(l));
            assert_eq!(pick(l, Lang::ALL), l, "pick takes the words in Lang::ALL's order");
        }
    }
}
