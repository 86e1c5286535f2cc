//! Typed ids: a customer's id, an incident's and a case's are all text, and a place that
//! holds one must not be handed another.
//!
//! Each is a newtype over the `String` it is stored and sent as (`#[serde(transparent)]`,
//! so the API, the files and the database see the same text as before). It reads as a
//! `&str` wherever one is asked for (`Deref`), so only the places that *hold* an id, or
//! take one as a typed parameter, say which id they mean; mixing two up there does not
//! compile. Ids come from outside (the provider's CSV, a URL) or from the store (which
//! assigns incident and case ids), so none is checked here beyond being text: the book's
//! import checks the provider's ids (`book::parse_id`).

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                $name(id.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

id!(
    /// A customer, as the provider's book names them (`C-0000001`, an account number).
    CustomerId
);
id!(
    /// An incident, as the store assigns it (`INC-000001`, ...).
    IncidentId
);
id!(
    /// An individual recovery case, as the store assigns it (`CASE-000001`, ...).
    CaseId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_text_on_the_wire_and_in_a_map() {
        let id = CustomerId::new("C-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""C-1""#);
        assert_eq!(serde_json::from_str::<CustomerId>(r#""C-1""#).unwrap(), id);
        assert_eq!(id, "C-1");
        assert_eq!(id.to_string(), "C-1");
        let map: std::collections::HashMap<CustomerId, u8> = [(id.clone(), 1)].into();
        assert_eq!(map.get("C-1"), Some(&1), "looked up by &str through Borrow");
        assert!(id.starts_with("C-"), "reads as a &str");
    }
}
