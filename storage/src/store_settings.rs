//! The object store settings of a session, and building a store for one
//! bucket (container, host) from them and the environment.
//!
//! Each store starts from its builder's `from_env()` (the `AWS_*`,
//! `GOOGLE_*` and `AZURE_*` variables of this process), then the session's
//! `minispark.s3.*`, `minispark.gcs.*` and `minispark.azure.*` settings
//! override what they set. Settings travel with every task, environment
//! variables do not: a cluster whose executors run elsewhere needs the
//! settings (or the variables on every host).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, Result};
use minispark_planner::config::{REDACTED, Secret, minispark_config};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::{ClientOptions, ObjectStoreScheme};
use url::Url;

/// The object store settings of one session. Two sessions with equal
/// settings share their stores (see [`crate::object_store_registry`]).
/// `Debug` shows secrets as `********`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StoreSettings {
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: Secret,
    pub s3_session_token: Secret,
    pub s3_allow_http: Option<bool>,
    pub gcs_service_account_path: String,
    pub gcs_service_account_key: Secret,
    pub azure_account_name: String,
    pub azure_access_key: Secret,
    pub azure_sas_token: Secret,
    pub azure_endpoint: String,
    pub azure_allow_http: Option<bool>,
}

impl StoreSettings {
    /// The object store settings among a session's options.
    pub fn from_options(options: &ConfigOptions) -> Self {
        let c = minispark_config(options);
        Self {
            s3_endpoint: c.s3_endpoint,
            s3_region: c.s3_region,
            s3_access_key_id: c.s3_access_key_id,
            s3_secret_access_key: c.s3_secret_access_key,
            s3_session_token: c.s3_session_token,
            s3_allow_http: c.s3_allow_http,
            gcs_service_account_path: c.gcs_service_account_path,
            gcs_service_account_key: c.gcs_service_account_key,
            azure_account_name: c.azure_account_name,
            azure_access_key: c.azure_access_key,
            azure_sas_token: c.azure_sas_token,
            azure_endpoint: c.azure_endpoint,
            azure_allow_http: c.azure_allow_http,
        }
    }

    fn secrets(&self) -> [&Secret; 5] {
        [
            &self.s3_secret_access_key,
            &self.s3_session_token,
            &self.gcs_service_account_key,
            &self.azure_access_key,
            &self.azure_sas_token,
        ]
    }

    /// `text` with every secret of these settings replaced by `********`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in self.secrets() {
            if !secret.is_empty() {
                text = text.replace(secret.expose(), REDACTED);
            }
        }
        text
    }
}

/// The root of the store serving `url`: `scheme://authority` (a bucket, a
/// container, a host and port). Stores are built and cached per root.
pub fn store_root(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

/// The schemes [`build_store`] serves, for error messages.
pub const SCHEMES: &str = "s3:// (or s3a://), gs://, az:// (or azure://, abfs://, abfss://, adl://), \
                           http:// and https://";

/// A new store for the bucket (container, host) of `url`.
pub fn build_store(url: &Url, settings: &StoreSettings) -> Result<Arc<dyn ObjectStore>> {
    let root = store_root(url);
    let parsed = Url::parse(&root).map_err(|e| {
        DataFusionError::Configuration(format!("invalid object store location '{root}': {e}"))
    })?;
    let scheme = match parsed.scheme() {
        // Plain web servers; ObjectStoreScheme would route some hosts
        // (*.amazonaws.com, ...) to the cloud clients, whose paths differ.
        "http" | "https" => ObjectStoreScheme::Http,
        _ => ObjectStoreScheme::parse(&parsed)
            .map(|(scheme, _)| scheme)
            .map_err(|_| {
                DataFusionError::Configuration(format!(
                    "no object store for '{root}': minispark reads local paths, file://, {SCHEMES}"
                ))
            })?,
    };
    let built: object_store::Result<Arc<dyn ObjectStore>> = match scheme {
        ObjectStoreScheme::AmazonS3 => s3(&root, settings).build().map(|s| Arc::new(s) as _),
        ObjectStoreScheme::GoogleCloudStorage => {
            gcs(&root, settings).build().map(|s| Arc::new(s) as _)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            azure(&root, settings).build().map(|s| Arc::new(s) as _)
        }
        ObjectStoreScheme::Http => HttpBuilder::new()
            .with_url(&root)
            .with_client_options(ClientOptions::new().with_allow_http(parsed.scheme() == "http"))
            .build()
            .map(|s| Arc::new(s) as _),
        _ => {
            return Err(DataFusionError::Configuration(format!(
                "no object store for '{root}': minispark reads local paths, file://, {SCHEMES}"
            )));
        }
    };
    built.map_err(|e| {
        DataFusionError::Configuration(format!(
            "cannot use the object store at '{root}': {}",
            settings.redact(&e.to_string())
        ))
    })
}

fn s3(root: &str, s: &StoreSettings) -> AmazonS3Builder {
    let mut b = AmazonS3Builder::from_env().with_url(root);
    if !s.s3_endpoint.is_empty() {
        b = b.with_endpoint(&s.s3_endpoint);
    }
    if !s.s3_region.is_empty() {
        b = b.with_region(&s.s3_region);
    }
    if !s.s3_access_key_id.is_empty() {
        b = b.with_access_key_id(&s.s3_access_key_id);
    }
    if !s.s3_secret_access_key.is_empty() {
        b = b.with_secret_access_key(s.s3_secret_access_key.expose());
    }
    if !s.s3_session_token.is_empty() {
        b = b.with_token(s.s3_session_token.expose());
    }
    if let Some(allow) = s.s3_allow_http {
        b = b.with_allow_http(allow);
    }
    b
}

fn gcs(root: &str, s: &StoreSettings) -> GoogleCloudStorageBuilder {
    let mut b = GoogleCloudStorageBuilder::from_env().with_url(root);
    if !s.gcs_service_account_path.is_empty() {
        b = b.with_service_account_path(&s.gcs_service_account_path);
    }
    if !s.gcs_service_account_key.is_empty() {
        b = b.with_service_account_key(s.gcs_service_account_key.expose());
    }
    b
}

fn azure(root: &str, s: &StoreSettings) -> MicrosoftAzureBuilder {
    let mut b = MicrosoftAzureBuilder::from_env().with_url(root);
    if !s.azure_account_name.is_empty() {
        b = b.with_account(&s.azure_account_name);
    }
    if !s.azure_access_key.is_empty() {
        b = b.with_access_key(s.azure_access_key.expose());
    }
    if !s.azure_sas_token.is_empty() {
        b = b.with_config(AzureConfigKey::SasKey, s.azure_sas_token.expose());
    }
    if !s.azure_endpoint.is_empty() {
        b = b.with_endpoint(s.azure_endpoint.clone());
    }
    if let Some(allow) = s.azure_allow_http {
        b = b.with_allow_http(allow);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn roots_are_scheme_and_authority() {
        assert_eq!(store_root(&url("s3://bucket/a/b.parquet")), "s3://bucket");
        assert_eq!(
            store_root(&url("http://host:8080/data/x.csv")),
            "http://host:8080"
        );
    }

    #[test]
    fn every_scheme_builds_a_store_without_a_network() {
        let settings = StoreSettings {
            s3_endpoint: "http://127.0.0.1:9".into(),
            s3_region: "eu-west-1".into(),
            s3_access_key_id: "AKID".into(),
            s3_secret_access_key: Secret::new("s3cr3t"),
            s3_allow_http: Some(true),
            azure_account_name: "account".into(),
            azure_access_key: Secret::new("YWNjZXNzIGtleQ=="),
            ..Default::default()
        };
        for location in [
            "s3://bucket/x",
            "s3a://bucket/x",
            "az://container/x",
            "azure://container/x",
            "abfss://container/x",
            "http://127.0.0.1:9/x",
            "https://example.com/x",
        ] {
            build_store(&url(location), &settings).unwrap_or_else(|e| panic!("{location}: {e}"));
        }
    }

    #[test]
    fn unknown_schemes_are_named() {
        let err = build_store(&url("hdfs://nn:8020/x"), &StoreSettings::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hdfs://nn:8020") && err.contains("s3://"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_redacted_from_text_and_debug() {
        let settings = StoreSettings {
            s3_secret_access_key: Secret::new("very-secret"),
            ..Default::default()
        };
        assert_eq!(
            settings.redact("key very-secret failed"),
            "key ******** failed"
        );
        assert!(!format!("{settings:?}").contains("very-secret"));
    }
}
