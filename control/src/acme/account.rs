//! The deployment's ACME account: created at the CA on first use, its
//! credentials (account URL and private key) sealed in `acme_accounts`.

use super::Acme;
use super::seal::account_purpose;
use anyhow::Context as _;
use instant_acme::{Account, AccountBuilder, AccountCredentials, NewAccount};

/// An account builder on the system's roots, or on `ca_root` alone when the
/// configuration names one (a test CA).
fn builder(acme: &Acme) -> anyhow::Result<AccountBuilder> {
    Ok(match &acme.ca_root {
        Some(root) => Account::builder_with_root(root)
            .with_context(|| format!("reading the ACME CA root {}", root.display()))?,
        None => Account::builder().context("loading the system's root certificates")?,
    })
}

/// The stored account of `acme.directory`, or a new one (stored before use).
pub async fn load_or_create(acme: &Acme) -> anyhow::Result<Account> {
    let purpose = account_purpose(&acme.directory);
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT credentials_sealed FROM acme_accounts WHERE directory_url = $1")
            .bind(&acme.directory)
            .fetch_optional(&acme.db)
            .await?;
    if let Some(sealed) = stored {
        let json = acme.sealer.open(&purpose, &sealed)?;
        let credentials: AccountCredentials =
            serde_json::from_slice(&json).context("stored ACME account credentials")?;
        let account = builder(acme)?
            .from_credentials(credentials)
            .await
            .context("restoring the ACME account")?;
        tracing::info!(
            directory = acme.directory,
            account = account.id(),
            "ACME account loaded"
        );
        return Ok(account);
    }
    let contact: Vec<&str> = acme.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder(acme)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.directory.clone(),
            None,
        )
        .await
        .with_context(|| format!("creating an ACME account at {}", acme.directory))?;
    let json = serde_json::to_vec(&credentials).expect("credentials serialize");
    // One renewal task per deployment makes a race unlikely; should two
    // controls create accounts at once, the first stored wins for both.
    let inserted = sqlx::query(
        "INSERT INTO acme_accounts (directory_url, credentials_sealed) VALUES ($1, $2)
         ON CONFLICT (directory_url) DO NOTHING",
    )
    .bind(&acme.directory)
    .bind(acme.sealer.seal(&purpose, &json))
    .execute(&acme.db)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Box::pin(load_or_create(acme)).await;
    }
    tracing::info!(
        directory = acme.directory,
        account = account.id(),
        "ACME account created"
    );
    Ok(account)
}
