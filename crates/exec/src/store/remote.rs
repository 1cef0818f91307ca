//! Object stores in the cloud: S3 and S3-compatible servers (`s3://bucket/prefix`),
//! Google Cloud Storage (`gs://bucket/prefix`) and Azure Blob Storage
//! (`az://container/prefix`, `abfs[s]://container@account.dfs.core.windows.net/prefix`).
//!
//! Each is configured from its provider's standard environment variables (and, for S3,
//! the AWS shared profile files), with bounded retries and timeouts so a bad endpoint
//! or a wrong credential fails in seconds, and a cap on requests in flight.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::limit::LimitStore;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use url::Url;

use super::aws_profile;

/// How remote stores are reached. The defaults suit both AWS and a test server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// The endpoint of an S3-compatible server (`http://127.0.0.1:9000`); overrides
    /// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT`. A plain `http://` endpoint is allowed
    /// without also setting `AWS_ALLOW_HTTP`.
    pub s3_endpoint: Option<String>,
    /// The time limit of one request, and of all retries of it together.
    pub timeout: Duration,
    /// How often a failed request is retried (with exponential backoff).
    pub retries: usize,
    /// Requests in flight at most.
    pub max_concurrent_requests: usize,
    /// Further settings as object_store names them (`aws_access_key_id`,
    /// `google_service_account`, `azure_storage_account_name`, …), applied after the
    /// environment: how an embedding application passes credentials it holds.
    pub config: Vec<(String, String)>,
}

impl StoreOptions {
    /// Options for the S3-compatible server at `endpoint` (`http://127.0.0.1:9000`), with
    /// further object_store settings such as credentials and region.
    pub fn s3_compatible(endpoint: impl Into<String>, config: Vec<(String, String)>) -> Self {
        StoreOptions {
            s3_endpoint: Some(endpoint.into()),
            config,
            ..StoreOptions::default()
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            s3_endpoint: None,
            timeout: Duration::from_secs(30),
            retries: 3,
            max_concurrent_requests: 32,
            config: Vec::new(),
        }
    }
}

impl StoreOptions {
    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: self.retries,
            retry_timeout: self.timeout,
        }
    }

    /// `(key, value)` client settings: the request and connect timeouts.
    fn client_settings(&self) -> [(ClientConfigKey, String); 2] {
        let connect = self.timeout.min(Duration::from_secs(5));
        [
            (
                ClientConfigKey::Timeout,
                format!("{}ms", self.timeout.as_millis()),
            ),
            (
                ClientConfigKey::ConnectTimeout,
                format!("{}ms", connect.as_millis()),
            ),
        ]
    }
}

/// The URL schemes served by [`open`].
pub(crate) const SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "azure", "abfs", "abfss"];

/// A remote object store for `url`, and a description of where it is (the endpoint of
/// an S3-compatible server, if one is set). Errors are one-line sentences.
pub(crate) fn open(
    url: &Url,
    options: &StoreOptions,
) -> Result<(Arc<dyn ObjectStore>, Option<String>), String> {
    let limit = options.max_concurrent_requests.max(1);
    let invalid = |e: object_store::Error| format!("invalid store {url}: {}", super::cause(&e));
    match url.scheme() {
        "s3" | "s3a" => {
            let (builder, endpoint) = s3_builder(url, options)?;
            let store = builder.build().map_err(invalid)?;
            Ok((Arc::new(LimitStore::new(store, limit)), endpoint))
        }
        "gs" => {
            let builder = configure(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(options.retry()),
                options,
                GoogleConfigKey::Client,
                |b, k, v| b.with_config(k, v),
            )?;
            let store = builder.build().map_err(invalid)?;
            Ok((Arc::new(LimitStore::new(store, limit)), None))
        }
        _ => {
            let builder = configure(
                MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(options.retry()),
                options,
                AzureConfigKey::Client,
                |b, k, v| b.with_config(k, v),
            )?;
            let store = builder.build().map_err(invalid)?;
            Ok((Arc::new(LimitStore::new(store, limit)), None))
        }
    }
}

/// The S3 builder for `url`: the environment, then the AWS profile where the
/// environment is silent, then `options`; and the endpoint it will use, if not AWS's.
fn s3_builder(
    url: &Url,
    options: &StoreOptions,
) -> Result<(AmazonS3Builder, Option<String>), String> {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "`{url}` names no bucket: write s3://BUCKET or s3://BUCKET/PREFIX"
        ));
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_url(url.as_str())
        .with_retry(options.retry());
    let profile = aws_profile::load(&env);
    if let Some(name) = env("AWS_PROFILE")
        && profile.is_none()
    {
        return Err(format!(
            "AWS profile `{name}` (AWS_PROFILE) is in neither ~/.aws/credentials nor ~/.aws/config"
        ));
    }
    if let Some(profile) = profile {
        let keys_in_env = env("AWS_ACCESS_KEY_ID").is_some();
        if !keys_in_env {
            if let Some(source) = &profile.unsupported_source
                && profile.access_key_id.is_none()
            {
                return Err(format!(
                    "AWS profile `{}` gets its credentials through `{source}`, which is not \
                     supported yet; export them with `aws configure export-credentials \
                     --profile {} --format env`",
                    profile.name, profile.name
                ));
            }
            let settings = [
                (AmazonS3ConfigKey::AccessKeyId, &profile.access_key_id),
                (
                    AmazonS3ConfigKey::SecretAccessKey,
                    &profile.secret_access_key,
                ),
                (AmazonS3ConfigKey::Token, &profile.session_token),
            ];
            for (key, value) in settings {
                if let Some(value) = value {
                    builder = builder.with_config(key, value);
                }
            }
        }
        if env("AWS_REGION").is_none()
            && env("AWS_DEFAULT_REGION").is_none()
            && let Some(region) = &profile.region
        {
            builder = builder.with_config(AmazonS3ConfigKey::Region, region);
        }
        if builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .is_none()
            && let Some(endpoint) = &profile.endpoint_url
        {
            builder = builder.with_endpoint(endpoint);
        }
    }
    builder = configure(builder, options, AmazonS3ConfigKey::Client, |b, k, v| {
        b.with_config(k, v)
    })?;
    if let Some(endpoint) = &options.s3_endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    if endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
    {
        builder = builder.with_allow_http(true);
    }
    Ok((builder, endpoint))
}

/// `builder` with the timeouts of `options` (client keys wrapped by `client`) and then
/// its extra settings, each applied with `with_config`, the provider's own setter.
fn configure<B, K: std::str::FromStr>(
    mut builder: B,
    options: &StoreOptions,
    client: fn(ClientConfigKey) -> K,
    with_config: fn(B, K, String) -> B,
) -> Result<B, String> {
    for (key, value) in options.client_settings() {
        builder = with_config(builder, client(key), value);
    }
    for (key, value) in &options.config {
        builder = with_config(builder, parse_key(key)?, value.clone());
    }
    Ok(builder)
}

/// A provider's configuration key, from its name.
fn parse_key<K: std::str::FromStr>(name: &str) -> Result<K, String> {
    name.to_ascii_lowercase()
        .parse()
        .map_err(|_| format!("unknown object store setting `{name}`"))
}
