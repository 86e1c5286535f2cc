//! Bearer tokens: who may call what.
//!
//! Each group of routes sits behind a [`Gate`] naming the scope it needs. The gate runs
//! before the handler and before the body is read, so an unauthenticated caller can make
//! the server neither parse nor buffer anything. Tokens are looked up by their SHA-256
//! (see [`crate::tokens`]); the token itself is never logged.

use super::error::ApiError;
use crate::tokens::{Scope, agent_of, scope_of};
use amends_store::Store;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The scope a group of routes needs, and where to look tokens up.
#[derive(Clone)]
pub struct Gate {
    pub store: Arc<dyn Store>,
    pub needed: Scope,
}

/// Middleware: lets the request through when its token's scope allows `gate.needed`.
pub async fn require_scope(State(gate): State<Gate>, req: Request, next: Next) -> Result<Response, ApiError> {
    let Some(token) = bearer_token(req.headers()) else {
        return Err(ApiError::unauthorized("an Authorization: Bearer <token> header is required", "Bearer"));
    };
    let scope = scope_of(gate.store.as_ref(), token).await.map_err(|e| ApiError::internal(&e))?;
    match scope {
        None => {
            Err(ApiError::unauthorized("the bearer token is not known", r#"Bearer error="invalid_token""#))
        }
        Some(scope) if !scope.allows(gate.needed) => Err(ApiError::forbidden(format!(
            "this route needs a token of scope {} or above; this token has scope {}",
            gate.needed.as_str(),
            scope.as_str()
        ))),
        Some(_) => Ok(next.run(req).await),
    }
}

/// Middleware for the case routes: lets the request through when its token speaks for an
/// active agent, and hands the handler that person (as an `Extension<Actor>`).
pub async fn require_agent(
    State(gate): State<AgentGate>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = bearer_token(req.headers()) else {
        return Err(ApiError::unauthorized("an Authorization: Bearer <token> header is required", "Bearer"));
    };
    let engine = &gate.engine;
    let agent = agent_of(engine.store.as_ref(), token).await.map_err(|e| ApiError::internal(&e))?;
    let Some(agent) = agent else {
        let scope = scope_of(engine.store.as_ref(), token).await.map_err(|e| ApiError::internal(&e))?;
        return Err(match scope {
            None => {
                ApiError::unauthorized("the bearer token is not known", r#"Bearer error="invalid_token""#)
            }
            Some(scope) => ApiError::forbidden(format!(
                "this route needs an agent's token (scope agent); this token has scope {}",
                scope.as_str()
            )),
        });
    };
    let actor = engine.actor(&agent).await.map_err(|e| ApiError::internal(&e))?;
    let Some(actor) = actor else {
        return Err(ApiError::forbidden(format!("agent {agent} is not active")));
    };
    req.extensions_mut().insert(actor);
    Ok(next.run(req).await)
}

/// Where [`require_agent`] looks tokens and agents up.
#[derive(Clone)]
pub struct AgentGate {
    pub engine: Arc<crate::recovery::Engine>,
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive,
/// RFC 7235), if there is one.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).expect("a header value"));
        bearer_token(&headers).map(str::to_string)
    }

    #[test]
    fn only_bearer_tokens_are_taken() {
        assert_eq!(token("Bearer abc"), Some("abc".into()));
        assert_eq!(token("bearer  abc "), Some("abc".into()));
        assert_eq!(token("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(token("Bearer "), None);
        assert_eq!(token("Bearer"), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
