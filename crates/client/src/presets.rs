//! The presets endpoints: list, install (its NDJSON progress read as it arrives), remove.

use amika_types::{Preset, PresetInstallEvent, PresetInstallEventKind, PresetList, PresetRemoval};
use futures::StreamExt;
use reqwest::Method;

use crate::{encode_path_segment, Client, ClientError};

impl Client {
    /// `GET /presets`.
    pub async fn list_presets(&self) -> Result<PresetList, ClientError> {
        self.call(Method::GET, "/presets", None::<&()>).await
    }

    /// `POST /presets/{name}/install`: installs the pinned version (admins), calling
    /// `on_event` for every progress line; returns the preset from the final `done` line. An
    /// `error` line becomes [`ClientError::Api`] (503, `provider_unavailable`) with its message.
    pub async fn install_preset(
        &self,
        name: &str,
        mut on_event: impl FnMut(&PresetInstallEvent),
    ) -> Result<Preset, ClientError> {
        let url = self.api_url(&format!("/presets/{}/install", encode_path_segment(name)));
        // No overall timeout: npm may download hundreds of megabytes; the server bounds it.
        let builder = self.request(Method::POST, &url);
        let response = self.send(builder, &url).await?;
        let mut bytes = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        let decode = |reason: String| ClientError::Decode {
            url: url.clone(),
            reason,
        };
        loop {
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let event: PresetInstallEvent = serde_json::from_slice(&line)
                    .map_err(|e| decode(format!("not an install event: {e}")))?;
                match event.event {
                    PresetInstallEventKind::Done => {
                        return event
                            .preset
                            .ok_or_else(|| decode("a `done` line without its preset".into()))
                    }
                    PresetInstallEventKind::Error => {
                        return Err(ClientError::Api {
                            status: 503,
                            code: "provider_unavailable".into(),
                            message: event.message,
                            trace_id: None,
                            details: Vec::new(),
                        })
                    }
                    PresetInstallEventKind::Progress => on_event(&event),
                }
            }
            match bytes.next().await {
                Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(self.transport_error(&url, e)),
                None => {
                    return Err(decode(
                        "the install answer ended before its last line".into(),
                    ))
                }
            }
        }
    }

    /// `DELETE /presets/{name}[?version=ID]` (admins): removes the versions no sandbox uses.
    pub async fn remove_preset(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<PresetRemoval, ClientError> {
        let mut path = format!("/presets/{}", encode_path_segment(name));
        if let Some(v) = version {
            path.push_str(&format!("?version={}", encode_path_segment(v)));
        }
        self.call(Method::DELETE, &path, None::<&()>).await
    }
}
