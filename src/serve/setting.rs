//! A problem with one setting of the web configuration, before the file's path is attached:
//! what [`super::tls`] and [`super::basic_auth`] report, and [`super::web_config`] words.

/// A problem with one setting.
#[derive(Debug)]
pub(crate) struct SettingError {
    /// The setting, as a dotted path (`tls_server_config.cert_file`).
    pub(crate) key: String,
    /// What is wrong with it.
    pub(crate) message: String,
}

impl SettingError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SettingError {
            key: key.into(),
            message: message.into(),
        }
    }
}
