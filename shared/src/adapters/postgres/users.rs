//! API users: names and argon2id hashes.

use async_trait::async_trait;

use crate::ports::{StoreError, UserStore, UserSummary};

use super::PostgresStore;

#[async_trait]
impl UserStore for PostgresStore {
    async fn add_user(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        let inserted = self
            .run(
                "add_user",
                &(username, password_hash),
                |client, (username, hash)| {
                    Box::pin(async move {
                        client
                            .execute(
                                "INSERT INTO users (username, password_hash, created_at) \
                                 VALUES ($1, $2, now()) ON CONFLICT (username) DO NOTHING",
                                &[username, hash],
                            )
                            .await
                    })
                },
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict("the user exists already".to_string()));
        }
        Ok(())
    }

    async fn password_hash(&self, username: &str) -> Result<Option<String>, StoreError> {
        self.run("password_hash", username, |client, username| {
            Box::pin(async move {
                client
                    .query_opt(
                        "SELECT password_hash FROM users WHERE username = $1",
                        &[&username],
                    )
                    .await?
                    .map(|row| row.try_get::<_, String>(0))
                    .transpose()
            })
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<UserSummary>, StoreError> {
        self.run("list_users", &(), |client, _| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT username, created_at FROM users ORDER BY username",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(UserSummary {
                            username: row.try_get(0)?,
                            created_at: row.try_get(1)?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn remove_user(&self, username: &str) -> Result<bool, StoreError> {
        self.run("remove_user", username, |client, username| {
            Box::pin(async move {
                client
                    .execute("DELETE FROM users WHERE username = $1", &[&username])
                    .await
                    .map(|n| n > 0)
            })
        })
        .await
    }
}
