//! Secrets kept out of what is shown: logs, errors and `Debug` output.

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`: a database URL as it
/// may be shown in a log, an error or `Debug` output.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}
