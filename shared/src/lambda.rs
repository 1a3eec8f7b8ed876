//! The adapter between Lambda function URL requests (lambda_http) and [`crate::api`].

use crate::api::{self, Route};
use crate::app::App;
use bytes::Bytes;

/// Answer one function URL request on `route`.
pub async fn respond(app: &App, route: Route, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    let (parts, body) = req.into_parts();
    // lambda_http has already decoded a base64-encoded body into `Binary`.
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(raw) => Bytes::from(raw),
        _ => Bytes::new(),
    };
    let response = api::handle(app, route, http::Request::from_parts(parts, bytes)).await;
    let (parts, body) = response.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => lambda_http::Body::Empty,
        Ok(text) => lambda_http::Body::Text(text),
        Err(raw) => lambda_http::Body::Binary(raw.into_bytes()),
    };
    lambda_http::Response::from_parts(parts, body)
}
