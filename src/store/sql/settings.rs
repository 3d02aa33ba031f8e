//! Reading a setting and replacing it only if nobody else did first: the generated key ring,
//! which `latchkey keys rotate` steps forward while instances read it. Inserting a setting once
//! is `maintenance::setting_or_insert`.

use super::Engine;
use crate::store::StoreError;
use crate::store::seam::Seam;

pub(super) async fn setting(store: &Engine, key: &str) -> Result<Option<String>, StoreError> {
    let value = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(store.pool())
        .await?;
    Ok(value)
}

pub(super) async fn replace_setting(
    store: &Engine,
    key: &str,
    expected: &str,
    value: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let replaced = sqlx::query("UPDATE settings SET value = $3 WHERE key = $1 AND value = $2")
        .bind(key)
        .bind(expected)
        .bind(value)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    tx.commit().await?;
    Ok(replaced)
}
