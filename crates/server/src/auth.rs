//! Bearer tokens: who may call what.
//!
//! Each group of routes sits behind a [`Gate`] naming the scope it needs. The gate runs
//! before the handler and before the body is read, so an unauthenticated caller can make
//! the server neither parse nor buffer anything. Tokens are looked up by their SHA-256
//! (see [`amends_recovery::tokens`]); the token itself is never logged. An unknown, expired or
//! revoked token gets a 401 saying which; a token let through has its use recorded, at
//! most once a minute per token ([`amends_recovery::tokens::LAST_USE_RESOLUTION`]).

use super::error::ApiError;
use amends_recovery::clock::Clock;
use amends_recovery::tokens::{self, Presented, Scope};
use amends_store::{AccessStore, TokenRow};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The scope a group of routes needs, where to look tokens up, and the clock they expire
/// by.
#[derive(Clone)]
pub struct Gate {
    pub store: Arc<dyn AccessStore>,
    pub clock: Arc<dyn Clock>,
    pub needed: Scope,
}

/// The token a request presents, if it is good now: its record and scope. Otherwise the
/// 401 to answer: no token, or one unknown, revoked or expired (each said so).
async fn authenticate(
    store: &dyn AccessStore,
    clock: &dyn Clock,
    headers: &HeaderMap,
) -> Result<(TokenRow, Scope), ApiError> {
    let Some(token) = bearer_token(headers) else {
        return Err(ApiError::unauthorized("an Authorization: Bearer <token> header is required", "Bearer"));
    };
    let presented = tokens::check(store, token, clock.now()).await.map_err(|e| ApiError::internal(&e))?;
    match presented {
        Presented::Valid { row, scope } => Ok((row, scope)),
        refused => Err(ApiError::unauthorized(
            refused.refusal().unwrap_or_default(),
            r#"Bearer error="invalid_token""#,
        )),
    }
}

/// Middleware: lets the request through when its token is good now and its scope allows
/// `gate.needed`, and records the use (at most once a minute per token).
pub async fn require_scope(State(gate): State<Gate>, req: Request, next: Next) -> Result<Response, ApiError> {
    let (row, scope) = authenticate(gate.store.as_ref(), gate.clock.as_ref(), req.headers()).await?;
    if !scope.allows(gate.needed) {
        return Err(ApiError::forbidden(format!(
            "this route needs a token of scope {} or above; this token has scope {}",
            gate.needed.as_str(),
            scope.as_str()
        )));
    }
    tokens::record_use(gate.store.as_ref(), &row, gate.clock.now()).await;
    Ok(next.run(req).await)
}

/// Middleware for the case routes: lets the request through when its token is good now
/// and speaks for an active agent, hands the handler that person (as an
/// `Extension<Actor>`), and records the use as [`require_scope`] does.
pub async fn require_agent(
    State(gate): State<AgentGate>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let engine = &gate.engine;
    let (row, scope) = authenticate(engine.store().as_ref(), engine.clock().as_ref(), req.headers()).await?;
    let agent = match (scope, &row.agent_id) {
        (Scope::Agent, Some(agent)) => agent.clone(),
        _ => {
            return Err(ApiError::forbidden(format!(
                "this route needs an agent's token (scope agent); this token has scope {}",
                scope.as_str()
            )));
        }
    };
    let actor = engine.actor(&agent).await.map_err(|e| ApiError::internal(&e))?;
    let Some(actor) = actor else {
        return Err(ApiError::forbidden(format!("agent {agent} is not active")));
    };
    tokens::record_use(engine.store().as_ref(), &row, engine.clock().now()).await;
    req.extensions_mut().insert(actor);
    Ok(next.run(req).await)
}

/// Where [`require_agent`] looks tokens and agents up.
#[derive(Clone)]
pub struct AgentGate {
    pub engine: Arc<amends_recovery::Engine>,
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
