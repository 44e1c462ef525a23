//! The webhook action: an HTTP request (POST by default) per event, with a JSON body of every
//! field or a body template (Slack, Matrix, Mattermost, ticketing, SIEM), headers (secret
//! ones from a file), a timeout, TLS through rustls.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use super::{http, ActionError};
use crate::config::{parse_header_lines, ActionConfig, ActionKind};
use crate::outbox::{Delivery, Escape, Notice, Sink, Template};

pub struct Webhook {
    name: String,
    client: reqwest::Client,
    url: reqwest::Url,
    method: reqwest::Method,
    headers: HeaderMap,
    json: bool,
    body: Option<Template>,
}

/// The default body: every field of the notice, and its time as RFC 3339 text.
pub fn json_body(n: &Notice) -> String {
    let mut v = serde_json::to_value(n).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("time".into(), crate::clock::rfc3339(n.time_us).into());
    }
    v.to_string()
}

impl Webhook {
    pub fn new(cfg: &ActionConfig) -> Result<Webhook, ActionError> {
        let ActionKind::Webhook {
            url,
            method,
            headers,
            secret_headers,
            content_type,
            body,
        } = &cfg.kind
        else {
            return Err(ActionError::Kind(cfg.name.clone()));
        };
        let bad = |what: String| ActionError::Invalid(cfg.name.clone(), what);
        let mut map = HeaderMap::new();
        let secret = match secret_headers {
            Some(s) => parse_header_lines(s.expose())
                .map_err(|line| bad(format!("{}: line {line}", s.path.display())))?,
            None => Vec::new(),
        };
        for (k, v) in headers.iter().chain(&secret) {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad(k.clone()))?;
            let mut value = HeaderValue::from_str(v).map_err(|_| bad(k.clone()))?;
            value.set_sensitive(true);
            map.append(name, value);
        }
        if !map.contains_key(CONTENT_TYPE) {
            let ct = HeaderValue::from_str(content_type).map_err(|_| bad(content_type.clone()))?;
            map.insert(CONTENT_TYPE, ct);
        }
        Ok(Webhook {
            name: cfg.name.clone(),
            client: http::client(cfg.timeout)?,
            url: url.parse().map_err(|_| bad("url".into()))?,
            method: method.parse().map_err(|_| bad(method.clone()))?,
            headers: map,
            json: content_type.contains("json"),
            body: body.clone(),
        })
    }

    fn body(&self, n: &Notice) -> String {
        match &self.body {
            Some(t) => t.render(
                n,
                if self.json {
                    Escape::Json
                } else {
                    Escape::None
                },
                &[],
            ),
            None => json_body(n),
        }
    }
}

impl Sink for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, n: &'a Notice) -> Delivery<'a> {
        Box::pin(async move {
            let req = (self.client.request(self.method.clone(), self.url.clone()))
                .headers(self.headers.clone())
                .body(self.body(n));
            let t = std::time::Instant::now();
            let r = http::exchange(req).await;
            if r.is_ok() {
                tracing::debug!(F2B_ACTION = %self.name, F2B_JAIL = %n.jail, F2B_ADDRESS = %n.address,
                    elapsed_ms = t.elapsed().as_millis() as u64, "webhook {} delivered", self.name);
            }
            r
        })
    }
}
