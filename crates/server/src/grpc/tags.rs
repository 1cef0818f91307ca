//! `StreamingQuerier/SearchTags`, `SearchTagsV2`, `SearchTagValues` and
//! `SearchTagValuesV2`: the HTTP API's tag names and values (`routes::tags`), sent as
//! one message.

use axum::extract::{Request, State};
use axum::response::Response;
use traceql_format::value::Value;

use super::messages::{
    MetadataMetrics, SearchTagValuesRequest, SearchTagValuesResponse, SearchTagValuesV2Response,
    SearchTagsRequest, SearchTagsResponse, SearchTagsV2Response, SearchTagsV2Scope, TagValue,
};
use super::{Call, Shared, seconds_range, stream};
use crate::error::ApiError;
use crate::routes::tags::{scopes, tag_names, v1_tag, value_type, values};

/// `SearchTagsV2`: tag names by scope.
pub(super) async fn tags_v2(State(shared): State<Shared>, request: Request) -> Response {
    stream(
        shared,
        request,
        |request: SearchTagsRequest, call: Call<SearchTagsV2Response>| async move {
            seconds_range(request.start, request.end)?;
            let scopes = scopes(&call.engine, Some(&request.scope))?
                .into_iter()
                .map(|(name, tags)| SearchTagsV2Scope {
                    name: name.to_string(),
                    tags,
                })
                .collect();
            call.send(SearchTagsV2Response {
                scopes,
                metrics: Some(done(0)),
            })?;
            Ok(())
        },
    )
    .await
}

/// `SearchTags`: every attribute key.
pub(super) async fn tags_v1(State(shared): State<Shared>, request: Request) -> Response {
    stream(
        shared,
        request,
        |request: SearchTagsRequest, call: Call<SearchTagsResponse>| async move {
            seconds_range(request.start, request.end)?;
            call.send(SearchTagsResponse {
                tag_names: tag_names(&call.engine),
                metrics: Some(done(0)),
            })?;
            Ok(())
        },
    )
    .await
}

/// The values of the request's tag (as `tag` spells it) among the spans of its query.
async fn tag_values<M>(
    call: &Call<M>,
    request: &SearchTagValuesRequest,
    tag: &str,
) -> Result<(Vec<Value>, u64), ApiError> {
    let range = seconds_range(request.start, request.end)?;
    let limit = (request.max_tag_values > 0).then_some(request.max_tag_values as usize);
    values(
        &call.engine,
        &call.counters,
        tag,
        &request.query,
        range,
        limit,
    )
    .await
}

/// `SearchTagValuesV2`: typed values.
pub(super) async fn values_v2(State(shared): State<Shared>, request: Request) -> Response {
    stream(
        shared,
        request,
        |request: SearchTagValuesRequest, call: Call<SearchTagValuesV2Response>| async move {
            let tag = request.tag_name.clone();
            let (values, bytes) = tag_values(&call, &request, &tag).await?;
            call.send(SearchTagValuesV2Response {
                tag_values: values
                    .iter()
                    .map(|v| TagValue {
                        r#type: value_type(&tag, v).to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                metrics: Some(done(bytes)),
            })?;
            Ok(())
        },
    )
    .await
}

/// `SearchTagValues`: values as text; a bare key is looked up in every scope.
pub(super) async fn values_v1(State(shared): State<Shared>, request: Request) -> Response {
    stream(
        shared,
        request,
        |request: SearchTagValuesRequest, call: Call<SearchTagValuesResponse>| async move {
            let tag = v1_tag(request.tag_name.clone());
            let (values, bytes) = tag_values(&call, &request, &tag).await?;
            call.send(SearchTagValuesResponse {
                tag_values: values.iter().map(Value::to_string).collect(),
                metrics: Some(done(bytes)),
            })?;
            Ok(())
        },
    )
    .await
}

/// The metrics of a finished tag search that read `bytes`.
fn done(bytes: u64) -> MetadataMetrics {
    MetadataMetrics {
        inspected_bytes: bytes,
        completed_jobs: 1,
        total_jobs: 1,
        ..MetadataMetrics::default()
    }
}
