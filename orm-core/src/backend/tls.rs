//! PostgreSQL over TLS: the `sslmode` of a connection URL as libpq spells it (`disable`,
//! `prefer`, `require`, `verify-ca`, `verify-full`) with `sslrootcert`, through rustls.
//!
//! - `require`: the connection is encrypted, the server's certificate is not checked (what
//!   libpq does without a root certificate).
//! - `verify-ca`: the certificate must chain to a trusted root; `verify-full`: and name the
//!   host connected to.
//! - Trusted roots: the PEM file `sslrootcert=/path/root.crt` names, else the Mozilla roots
//!   (webpki-roots).
//!
//! Without these modes (or with `disable`/`prefer`), the connection is made without TLS, as
//! it was before the `tls` feature.

use crate::error::{Error, Result};

/// What the URL asks of TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsParams {
    /// `sslmode`, if it needs TLS.
    pub(crate) mode: Option<Mode>,
    /// `sslrootcert`.
    pub(crate) root_cert: Option<String>,
}

/// A `sslmode` that needs TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Require,
    VerifyCa,
    VerifyFull,
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres://..?sslmode=..`) or a
/// `key=value` connection string: the string the driver is given (with `sslmode=require`
/// where TLS is needed, the modes it does not know otherwise), and what TLS needs.
pub(crate) fn split(url: &str) -> Result<(String, TlsParams)> {
    let mut params = TlsParams {
        mode: None,
        root_cert: None,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(&mut params, k, &percent_decode(v))? {
                kept.push(pair);
            }
        }
        join_url(base, &kept)
    } else {
        // The other pairs stay exactly as written (quoted values, their spaces).
        let mut rest = String::with_capacity(url.len());
        let mut at = 0;
        for (range, key, value) in conninfo_pairs(url) {
            if take(&mut params, key, &value)? {
                rest.push_str(&url[at..range.start]);
                at = range.end;
            }
        }
        rest.push_str(&url[at..]);
        rest
    };
    settle(&mut params)?;
    Ok((rest, params))
}

/// Notes `sslmode` or `sslrootcert` (true), or leaves a key to the driver (false).
fn take(params: &mut TlsParams, key: &str, value: &str) -> Result<bool> {
    match key {
        "sslmode" => {
            params.mode = match value {
                "disable" | "allow" | "prefer" => None,
                "require" => Some(Mode::Require),
                "verify-ca" => Some(Mode::VerifyCa),
                "verify-full" => Some(Mode::VerifyFull),
                other => {
                    return Err(connect_error(format!(
                        "unknown sslmode `{other}`; expected disable, prefer, require, verify-ca or verify-full"
                    )))
                }
            };
            Ok(true)
        }
        "sslrootcert" => {
            params.root_cert = Some(value.to_owned());
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// libpq's rules between the two keys: `require` with a root certificate checks the chain
/// (`verify-ca`); `sslrootcert=system` means the public roots, with `verify-full` (the
/// default then) and nothing weaker.
fn settle(params: &mut TlsParams) -> Result<()> {
    if params.root_cert.as_deref() == Some("system") {
        params.root_cert = None;
        match params.mode {
            None | Some(Mode::VerifyFull) => params.mode = Some(Mode::VerifyFull),
            Some(_) => {
                return Err(connect_error(
                    "sslrootcert=system needs sslmode=verify-full (or no sslmode)".to_owned(),
                ))
            }
        }
    } else if params.root_cert.is_some() && params.mode == Some(Mode::Require) {
        params.mode = Some(Mode::VerifyCa);
    }
    Ok(())
}

/// The `key = value` pairs of a libpq connection string: where each is (spaces around it
/// left out), its key, and its value (quotes and backslash escapes undone).
fn conninfo_pairs(s: &str) -> Vec<(std::ops::Range<usize>, &str, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_space(i);
        if i >= b.len() {
            return out;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[start..i];
        i = skip_space(i);
        if i < b.len() && b[i] == b'=' {
            i = skip_space(i + 1);
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
        }
        let end = i.min(b.len());
        out.push((
            start..end,
            key,
            String::from_utf8_lossy(&value).into_owned(),
        ));
    }
}

/// `base` with the query `pairs` (none: no `?`).
fn join_url(base: &str, pairs: &[&str]) -> String {
    if pairs.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", pairs.join("&"))
    }
}

/// `%xx` escapes of a URL's query value decoded (a path in `sslrootcert`).
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn connect_error(message: String) -> Error {
    Error::Connect {
        source: message.clone().into(),
        message,
    }
}

/// Connects with TLS as `params` ask (`url` without the TLS keys).
#[cfg(feature = "tls")]
pub(crate) fn connect(url: &str, mode: Mode, params: &TlsParams) -> Result<postgres::Client> {
    let config = client_config(mode, params.root_cert.as_deref())?;
    let url = with_require(url);
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    postgres::Client::connect(&url, tls).map_err(|e| Error::Connect {
        message: format!("{}: {}", super::redact_password(&url), with_causes(&e)),
        source: Box::new(e),
    })
}

/// An error's message and those of its causes (the driver's "error performing TLS
/// handshake" says why only in its source).
#[cfg(feature = "tls")]
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The driver's own `sslmode=require` added back, so that it insists on TLS.
#[cfg(feature = "tls")]
fn with_require(url: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode=require")
    } else {
        format!("{url} sslmode=require")
    }
}

#[cfg(feature = "tls")]
fn client_config(mode: Mode, root_cert: Option<&str>) -> Result<rustls::ClientConfig> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| connect_error(format!("TLS setup: {e}")))?;
    let config = match mode {
        Mode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verify::Unchecked(provider)))
            .with_no_client_auth(),
        Mode::VerifyFull => builder
            .with_root_certificates(roots(root_cert)?)
            .with_no_client_auth(),
        Mode::VerifyCa => {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root_cert)?),
                provider,
            )
            .build()
            .map_err(|e| connect_error(format!("TLS setup: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verify::AnyName(inner)))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// The roots certificates must chain to: the PEM file `sslrootcert` names, else Mozilla's.
#[cfg(feature = "tls")]
fn roots(root_cert: Option<&str>) -> Result<rustls::RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    let Some(path) = root_cert else {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    };
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| connect_error(format!("sslrootcert `{path}`: {e}")))?;
    for cert in certs {
        let cert = cert.map_err(|e| connect_error(format!("sslrootcert `{path}`: {e}")))?;
        store
            .add(cert)
            .map_err(|e| connect_error(format!("sslrootcert `{path}`: {e}")))?;
    }
    if store.is_empty() {
        return Err(connect_error(format!(
            "sslrootcert `{path}` holds no certificate"
        )));
    }
    Ok(store)
}

/// The certificate verifiers libpq's weaker modes need.
#[cfg(feature = "tls")]
mod verify {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use std::sync::Arc;

    /// `require`: any certificate (the handshake's signatures are still checked).
    #[derive(Debug)]
    pub(super) struct Unchecked(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for Unchecked {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// `verify-ca`: a certificate that chains to a trusted root, whatever host it names.
    #[derive(Debug)]
    pub(super) struct AnyName(pub(super) Arc<rustls::client::WebPkiServerVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self
                .0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_keys_come_out_of_urls_and_connection_strings() {
        let (rest, p) = split(
            "postgres://u@h/db?options=-c%20x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h/db?options=-c%20x");
        assert_eq!(p.mode, Some(Mode::VerifyFull));
        assert_eq!(p.root_cert.as_deref(), Some("/tmp/ca.pem"));
        let (rest, p) = split("postgres://u@h/db?sslmode=prefer").unwrap();
        assert_eq!((rest.as_str(), p.mode), ("postgres://u@h/db", None));
        let (rest, p) = split("host=h user=u sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), p.mode),
            ("host=h user=u ", Some(Mode::Require))
        );
        // Other values stay as written; quoted ones are read whole.
        let conninfo = "host=h application_name='a  b' sslrootcert = '/x y/ca.pem' sslmode=require";
        let (rest, p) = split(conninfo).unwrap();
        assert_eq!(rest, "host=h application_name='a  b'  ");
        assert_eq!(p.root_cert.as_deref(), Some("/x y/ca.pem"));
        assert_eq!(
            p.mode,
            Some(Mode::VerifyCa),
            "require with a root checks the chain"
        );
        let (_, p) = split("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!((p.mode, p.root_cert), (Some(Mode::VerifyFull), None));
        assert!(split("postgres://h/db?sslrootcert=system&sslmode=require").is_err());
        assert!(split("postgres://h/db?sslmode=maybe").is_err());
    }
}
