//! Getting a feed's body: HTTP(S) GET with conditional requests (ETag/If-None-Match,
//! Last-Modified/If-Modified-Since), a timeout and a size limit enforced while the body
//! arrives; or a local file, "not modified" while its size and mtime stay.

use std::time::Duration;

use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::StatusCode;

use super::FeedError;
use crate::config::FeedSource;

/// Connecting to a feed server may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole fetch (headers and body) may take this long.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// What identifies a version of the body: sent back to ask "changed since?".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a fetch brought.
#[derive(Debug)]
pub enum Fetched {
    /// The server (or the file) says the copy we have is current.
    NotModified,
    Body {
        bytes: Vec<u8>,
        validators: Validators,
    },
}

/// The HTTP client all feeds share (rustls, the system's CA certificates).
pub fn client() -> Result<reqwest::Client, FeedError> {
    reqwest::Client::builder()
        .user_agent(concat!("f2b/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| FeedError::Http(error_text(&e)))
}

/// Fetches `source` unless `prev` says our copy is current.
pub async fn fetch(
    client: &reqwest::Client,
    source: &FeedSource,
    max_size: u64,
    prev: &Validators,
) -> Result<Fetched, FeedError> {
    match source {
        FeedSource::Url(url) => get(client, url, max_size, prev).await,
        FeedSource::Path(path) => {
            let (path, prev) = (path.clone(), prev.clone());
            tokio::task::spawn_blocking(move || read_file(&path, max_size, &prev))
                .await
                .map_err(|e| FeedError::Http(e.to_string()))?
        }
    }
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    max_size: u64,
    prev: &Validators,
) -> Result<Fetched, FeedError> {
    let mut req = client.get(url);
    if let Some(etag) = &prev.etag {
        req = req.header(IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &prev.last_modified {
        req = req.header(IF_MODIFIED_SINCE, lm);
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| FeedError::Http(error_text(&e)))?;
    let status = resp.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(FeedError::Status(status.to_string()));
    }
    if resp.content_length().is_some_and(|n| n > max_size) {
        return Err(FeedError::TooLarge { max: max_size });
    }
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(ETAG),
        last_modified: header(LAST_MODIFIED),
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| FeedError::Http(error_text(&e)))?
    {
        if (bytes.len() + chunk.len()) as u64 > max_size {
            return Err(FeedError::TooLarge { max: max_size });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body { bytes, validators })
}

/// A local file: its size and mtime stand for an ETag.
fn read_file(
    path: &std::path::Path,
    max_size: u64,
    prev: &Validators,
) -> Result<Fetched, FeedError> {
    use std::io::Read;
    let io = |error| FeedError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    let tag = format!(
        "{}-{}.{:09}",
        meta.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    );
    if prev.etag.as_deref() == Some(tag.as_str()) {
        return Ok(Fetched::NotModified);
    }
    if meta.len() > max_size {
        return Err(FeedError::TooLarge { max: max_size });
    }
    let mut bytes = Vec::new();
    (&mut file)
        .take(max_size + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_size {
        return Err(FeedError::TooLarge { max: max_size });
    }
    Ok(Fetched::Body {
        bytes,
        validators: Validators {
            etag: Some(tag),
            last_modified: None,
        },
    })
}

/// A reqwest error with its causes ("error sending request: … : connection refused").
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_file_is_not_modified_while_size_and_mtime_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list");
        std::fs::write(&path, "192.0.2.1\n").unwrap();
        let Ok(Fetched::Body { bytes, validators }) = read_file(&path, 100, &Validators::default())
        else {
            panic!("a body")
        };
        assert_eq!(bytes, b"192.0.2.1\n");
        assert!(matches!(
            read_file(&path, 100, &validators),
            Ok(Fetched::NotModified)
        ));
        std::fs::write(&path, "192.0.2.1\n192.0.2.2\n").unwrap();
        assert!(matches!(
            read_file(&path, 100, &validators),
            Ok(Fetched::Body { .. })
        ));
        assert!(matches!(
            read_file(&path, 5, &Validators::default()),
            Err(FeedError::TooLarge { max: 5 })
        ));
        let e = read_file(&dir.path().join("gone"), 5, &Validators::default()).unwrap_err();
        assert!(e.to_string().contains("gone"), "{e}");
    }
}
