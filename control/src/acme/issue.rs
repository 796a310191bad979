//! One order: HTTP-01 through the engines, a fresh P-256 key, the chain.
//!
//! Every answer published for the order is removed again before this
//! returns, whether the order succeeded or not.

use super::Acme;
use super::publish::{self, CHALLENGE_PREFIX};
use super::seal::certificate_key_purpose;
use super::store::Issued;
use anyhow::{Context as _, bail};
use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus, RetryPolicy,
};
use snapshots::domain::WellKnown;
use std::time::Duration;
use time::OffsetDateTime;

/// How long the CA gets to validate, and then to issue.
const CA_TIMEOUT: Duration = Duration::from_secs(90);

/// Orders a certificate for `domain` (the verified domain `domain_id`).
pub async fn issue(acme: &Acme, domain: &str, domain_id: i64) -> anyhow::Result<Issued> {
    let account = acme.account().await?;
    let identifiers = [Identifier::Dns(domain.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .context("placing the order")?;
    let mut published = Vec::new();
    let result = answer_and_finalize(acme, &mut order, domain, domain_id, &mut published).await;
    for answer in &published {
        if let Err(e) = publish::remove(&acme.db, &answer.host, &answer.path).await {
            tracing::warn!(
                domain,
                path = answer.path,
                error = format!("{e:#}"),
                "removing a challenge answer"
            );
        }
    }
    result
}

async fn answer_and_finalize(
    acme: &Acme,
    order: &mut Order,
    domain: &str,
    domain_id: i64,
    published: &mut Vec<WellKnown>,
) -> anyhow::Result<Issued> {
    // Publish every pending authorization's answer, then wait once for the
    // engines, then tell the CA.
    let mut last_seq = None;
    let mut challenge_urls = Vec::new();
    {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.context("reading an authorization")?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => bail!("the authorization for {domain} is {other:?}"),
            }
            let challenge = authz
                .challenge(ChallengeType::Http01)
                .context("the CA offers no http-01 challenge")?;
            let answer = WellKnown {
                host: domain.to_owned(),
                path: format!("{CHALLENGE_PREFIX}{}", challenge.token),
                body: challenge.key_authorization().as_str().to_owned(),
            };
            last_seq = Some(publish::publish(&acme.db, &answer, domain_id).await?);
            published.push(answer);
            challenge_urls.push(challenge.url.clone());
        }
    }
    if let Some(seq) = last_seq {
        publish::wait_applied(&acme.engines, seq, acme.publish_timeout).await?;
    }
    {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.context("reading an authorization")?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .context("the CA offers no http-01 challenge")?;
            challenge
                .set_ready()
                .await
                .context("asking the CA to validate")?;
        }
    }
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(CA_TIMEOUT);
    match order.poll_ready(&retries).await {
        Ok(OrderStatus::Ready) => {}
        // Invalid, or an order that carries the CA's problem: say why.
        Ok(_) | Err(instant_acme::Error::Api(_)) => {
            bail!("{}", validation_failure(order, domain).await)
        }
        Err(e) => return Err(e).context("waiting for validation"),
    }

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating the certificate key")?;
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_owned()]).context("certificate names")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).context("making the CSR")?;
    order
        .finalize_csr(csr.der())
        .await
        .context("finalizing the order")?;
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .context("fetching the certificate")?;
    let (not_before, not_after) = validity(&chain_pem)?;
    let key_pem = key.serialize_pem();
    Ok(Issued {
        key_pem_sealed: acme
            .sealer
            .seal(&certificate_key_purpose(domain), key_pem.as_bytes()),
        chain_pem,
        not_before,
        not_after,
    })
}

/// Why validation failed, as the CA says it (the challenge's error).
async fn validation_failure(order: &mut Order, domain: &str) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let Ok(mut authz) = authz else { continue };
        let _ = authz.refresh().await;
        for challenge in &authz.challenges {
            if let Some(problem) = &challenge.error {
                reasons.push(
                    problem
                        .detail
                        .clone()
                        .unwrap_or_else(|| problem.to_string()),
                );
            }
        }
    }
    match reasons.is_empty() {
        true => format!("the CA did not validate {domain}"),
        false => format!("the CA could not validate {domain}: {}", reasons.join("; ")),
    }
}

/// The leaf's validity period.
pub fn validity(chain_pem: &str) -> anyhow::Result<(OffsetDateTime, OffsetDateTime)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("the issued chain is not PEM: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("the issued leaf does not parse: {e}"))?;
    let v = cert.validity();
    Ok((v.not_before.to_datetime(), v.not_after.to_datetime()))
}
