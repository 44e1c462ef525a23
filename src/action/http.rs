//! What the HTTP actions (webhook, AbuseIPDB) share: the client (rustls with the ring
//! provider and the system's CA store) and how an answer is classified.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::ActionError;
use crate::outbox::DeliveryError;

/// A client with this timeout for a whole request.
pub fn client(timeout: Duration) -> Result<reqwest::Client, ActionError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("f2b/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ActionError::Http(e.without_url().to_string()))
}

/// How long a 429 or 503 asks to wait: `Retry-After` in seconds (an HTTP date counts as a
/// minute); a minute when absent.
fn retry_after(headers: &HeaderMap) -> Duration {
    let secs = (headers.get(RETRY_AFTER))
        .and_then(|v| v.to_str().ok())
        .map_or(60, |v| v.trim().parse::<u64>().unwrap_or(60));
    Duration::from_secs(secs.clamp(1, 86_400))
}

/// A failed request: a timeout or connection error is worth a retry. The URL is left out of
/// the text (webhook URLs often hold a token).
fn send_error(e: reqwest::Error) -> DeliveryError {
    let e = e.without_url();
    let mut why = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        why.push_str(&format!(": {s}"));
        src = s.source();
    }
    if e.is_builder() {
        DeliveryError::Permanent(why)
    } else {
        DeliveryError::Transient(why)
    }
}

/// An answer that is not a success: 429 (and 503 with Retry-After) later; 408 and 5xx
/// again; other codes will not work however often they are tried. `body` is its start.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> DeliveryError {
    let text: String = body.chars().take(200).collect();
    let why = format!("HTTP {status}: {}", text.replace(['\n', '\r'], " ").trim());
    match status {
        StatusCode::TOO_MANY_REQUESTS => DeliveryError::Later(why, retry_after(headers)),
        StatusCode::SERVICE_UNAVAILABLE if headers.contains_key(RETRY_AFTER) => {
            DeliveryError::Later(why, retry_after(headers))
        }
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            DeliveryError::Transient(why)
        }
        _ => DeliveryError::Permanent(why),
    }
}

/// Send `req`; a 2xx answer is a delivery, anything else is classified.
pub async fn exchange(req: reqwest::RequestBuilder) -> Result<(), DeliveryError> {
    let resp = req.send().await.map_err(send_error)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let headers = resp.headers().clone();
    // What went wrong is usually said in the first bytes.
    let body = resp.text().await.unwrap_or_default();
    Err(classify(status, &headers, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let mut h = HeaderMap::new();
        let later = |e| matches!(e, DeliveryError::Later(_, d) if d == Duration::from_secs(120));
        h.insert(RETRY_AFTER, "120".parse().unwrap());
        assert!(later(classify(StatusCode::TOO_MANY_REQUESTS, &h, "")));
        assert!(later(classify(StatusCode::SERVICE_UNAVAILABLE, &h, "")));
        let none = HeaderMap::new();
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &none, "down"),
            DeliveryError::Transient(w) if w == "HTTP 502 Bad Gateway: down"
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &none, "{\"errors\":[]}\n"),
            DeliveryError::Permanent(_)
        ));
    }
}
