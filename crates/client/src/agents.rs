//! The agent endpoints: a send (synchronous, as a job, streamed), following a job, and the
//! sessions of a sandbox.

use reqwest::Method;

use crate::{decode, encode_path_segment, AgentEventStream, Client, ClientError, NO_BODY};

impl Client {
    /// `POST /sandboxes/{id}/agent-send`: sends a message to the agent in the sandbox and waits
    /// for its reply. An agent failure is a reply with `is_error`, not an `Err`, except an
    /// authentication failure: [`ClientError::Api`] with code `agent_auth_failed`.
    pub async fn agent_send(
        &self,
        id_or_name: &str,
        req: &amika_types::AgentSendRequest,
    ) -> Result<amika_types::AgentSendResponse, ClientError> {
        let url = self.api_url(&format!(
            "/sandboxes/{}/agent-send",
            encode_path_segment(id_or_name)
        ));
        // No client-side timeout: an agent may work for many minutes; the server's deadline
        // (and the request's `timeout_secs`) bound it and stop the agent.
        let builder = self.request(Method::POST, &url).json(req);
        let response = self.send(builder, &url).await?;
        decode(response, &url).await
    }

    /// `POST /sandboxes/{id}/agent-send/stream`: sends a message and streams the agent's
    /// progress. Errors before the agent starts are an `Err` here; dropping the stream stops the
    /// agent.
    pub async fn agent_send_stream(
        &self,
        id_or_name: &str,
        req: &amika_types::AgentSendRequest,
    ) -> Result<AgentEventStream, ClientError> {
        let url = self.api_url(&format!(
            "/sandboxes/{}/agent-send/stream",
            encode_path_segment(id_or_name)
        ));
        // No overall timeout, as for `agent_send`.
        let builder = self.request(Method::POST, &url).json(req);
        let response = self.send(builder, &url).await?;
        Ok(AgentEventStream::new(response, url))
    }

    /// `GET /sandboxes/{id}/agent-send-jobs/{job_id}/events`: follows a send to its end.
    /// Dropping the stream leaves the send running.
    pub async fn follow_agent_send_job(
        &self,
        id_or_name: &str,
        job_id: &str,
    ) -> Result<AgentEventStream, ClientError> {
        let url = self.api_url(&format!(
            "/sandboxes/{}/agent-send-jobs/{}/events",
            encode_path_segment(id_or_name),
            encode_path_segment(job_id)
        ));
        let builder = self.request(Method::GET, &url);
        let response = self.send(builder, &url).await?;
        Ok(AgentEventStream::new(response, url))
    }

    /// `POST /sandboxes/{id}/agent-send-jobs` → 202: the send runs in the background.
    pub async fn create_agent_send_job(
        &self,
        id_or_name: &str,
        req: &amika_types::AgentSendRequest,
    ) -> Result<amika_types::AgentSendJobResponse, ClientError> {
        let path = format!(
            "/sandboxes/{}/agent-send-jobs",
            encode_path_segment(id_or_name)
        );
        self.call(Method::POST, &path, Some(req)).await
    }

    /// `GET /sandboxes/{id}/agent-send-jobs/{job_id}`.
    pub async fn get_agent_send_job(
        &self,
        id_or_name: &str,
        job_id: &str,
    ) -> Result<amika_types::AgentSendJobResponse, ClientError> {
        let path = format!(
            "/sandboxes/{}/agent-send-jobs/{}",
            encode_path_segment(id_or_name),
            encode_path_segment(job_id)
        );
        self.call(Method::GET, &path, NO_BODY).await
    }

    /// `GET /sandboxes/{id}/sessions`: the sandbox's agent sessions, most recently used first.
    pub async fn list_agent_sessions(
        &self,
        id_or_name: &str,
    ) -> Result<amika_types::AgentSessionsList, ClientError> {
        let path = format!("/sandboxes/{}/sessions", encode_path_segment(id_or_name));
        self.call(Method::GET, &path, NO_BODY).await
    }

    /// `GET /sandboxes/{id}/sessions/{session_id}`: one session with its transcript.
    pub async fn get_agent_session(
        &self,
        id_or_name: &str,
        session_id: &str,
    ) -> Result<amika_types::AgentSession, ClientError> {
        let path = format!(
            "/sandboxes/{}/sessions/{}",
            encode_path_segment(id_or_name),
            encode_path_segment(session_id)
        );
        self.call(Method::GET, &path, NO_BODY).await
    }
}
