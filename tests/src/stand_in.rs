//! Loopback HTTP servers standing in for api.github.com, slack.com and SQS, as strict about
//! HTTP/1.1 framing as the real fronts: a POST, PUT or PATCH that says neither
//! `Content-Length` nor `Transfer-Encoding` is answered 411 Length Required, as GitHub
//! answers it (octocrab#463 met it on the installation-token endpoint). A stand-in that took
//! such a request would hide the bug from every test that uses it.

use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// A stand-in server; mount its routes as on any wiremock server.
pub async fn start() -> MockServer {
    let server = MockServer::start().await;
    refuse_unframed(&server).await;
    server
}

/// Make `server` answer 411 to a request with a method that carries a body but no framing,
/// before any route it has sees it.
pub async fn refuse_unframed(server: &MockServer) {
    Mock::given(Unframed)
        .respond_with(ResponseTemplate::new(411).set_body_string("Length Required"))
        .with_priority(1)
        .mount(server)
        .await;
}

struct Unframed;

impl Match for Unframed {
    fn matches(&self, req: &Request) -> bool {
        matches!(req.method.as_str(), "POST" | "PUT" | "PATCH")
            && !req.headers.contains_key("content-length")
            && !req.headers.contains_key("transfer-encoding")
    }
}
